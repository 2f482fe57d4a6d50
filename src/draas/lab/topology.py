"""The lab's topology as data: hosts, the zones they sit in, and the WAN paths between zones.

Every host is a network namespace with one interface (``eth0``) on a shared bridge that lives
in a namespace of its own (the "switch"). Zones are address blocks: the WAN emulator delays
traffic between zones as configured (by default the two sites are 10 ms apart, one way).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from draas.errors import LabError

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
LAB_SUBNET = ipaddress.ip_network("198.18.0.0/16")
DOMAIN = "lab.draas.test"


@dataclass(frozen=True)
class Zone:
    name: str
    cidr: str


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    zone: str
    purpose: str


@dataclass(frozen=True)
class WanPath:
    """Emulated one-way delay (and jitter) for traffic between two zones, both directions."""

    a: str
    b: str
    delay_ms: float
    jitter_ms: float = 0.0


@dataclass(frozen=True)
class Topology:
    zones: tuple[Zone, ...]
    hosts: tuple[HostSpec, ...]
    wan: tuple[WanPath, ...] = field(default_factory=tuple)
    prefix_len: int = LAB_SUBNET.prefixlen

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"unknown lab host {name!r}; hosts: {', '.join(self.host_names())}")

    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones if z.name == name)

    def validate(self) -> None:
        """Refuse any address outside the lab range and any duplicate or inconsistent entry."""
        names = self.host_names()
        if len(set(names)) != len(names):
            raise LabError(f"duplicate host names in topology: {names}")
        zones = {z.name: ipaddress.ip_network(z.cidr) for z in self.zones}
        for z, net in zones.items():
            if not net.subnet_of(LAB_RANGE):  # type: ignore[arg-type]
                raise LabError(f"zone {z}: {net} is outside the lab range {LAB_RANGE}")
        for h in self.hosts:
            if len(h.name) > 12:
                raise LabError(f"host {h.name}: name longer than 12 characters")
            addr = ipaddress.ip_address(h.address)
            if h.zone not in zones or addr not in zones[h.zone]:
                raise LabError(f"host {h.name}: {addr} is not inside its zone {h.zone!r}")
        for p in self.wan:
            for z in (p.a, p.b):
                if z not in zones:
                    raise LabError(f"WAN path {p.a}<->{p.b}: unknown zone {z!r}")
            if p.delay_ms < 0 or p.jitter_ms < 0 or p.jitter_ms > p.delay_ms:
                raise LabError(
                    f"WAN path {p.a}<->{p.b}: delay {p.delay_ms} ms and jitter {p.jitter_ms} ms "
                    "must be >= 0 with jitter <= delay"
                )


def default_topology(delay_ms: float = 10.0, jitter_ms: float = 0.0) -> Topology:
    """DESIGN.md's lab: a shared zone (client, dns, witness) and two sites 10 ms apart."""
    topo = Topology(
        zones=(
            Zone("core", "198.18.0.0/24"),
            Zone("site-a", "198.18.1.0/24"),
            Zone("site-b", "198.18.2.0/24"),
        ),
        hosts=(
            HostSpec("client", "198.18.0.10", "core", "resolver, RTO meter, write checker"),
            HostSpec("dns", "198.18.0.53", "core", "BIND9 authoritative for draas.test."),
            HostSpec("witness", "198.18.0.30", "core", "etcd member, agent"),
            HostSpec("fe-a", "198.18.1.20", "site-a", "frontend of site A"),
            HostSpec("fe-b", "198.18.2.20", "site-b", "frontend of site B"),
            HostSpec("primary", "198.18.1.10", "site-a", "MariaDB, Keystone, agent, etcd"),
            HostSpec("dr", "198.18.2.10", "site-b", "MariaDB, Keystone, agent, etcd"),
        ),
        wan=(WanPath("site-a", "site-b", delay_ms, jitter_ms),) if delay_ms > 0 else (),
    )
    topo.validate()
    return topo
