"""Build the lab's network: one namespace per host, one switch namespace with a bridge, a veth
pair per host; plus link up/down and per-host packet filters (partitions, random loss).

Nothing is created in the root namespace: each veth is created directly with one end in the
host's namespace and the other in the switch's, so deleting the namespaces removes every link.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from draas.errors import LabError
from draas.lab import netns
from draas.lab.netns import run
from draas.lab.topology import DOMAIN, Topology

log = logging.getLogger(__name__)

SWITCH = "sw"
BRIDGE = "br0"
NETNS_ETC = Path("/etc/netns")


def ns_prefix(lab: str) -> str:
    return f"draas-{lab}-"


def ns_name(lab: str, host: str) -> str:
    return f"{ns_prefix(lab)}{host}"


def switch_port(host: str) -> str:
    return f"v-{host}"


class LabNetwork:
    """The namespaces, bridge and links of one lab."""

    def __init__(self, lab: str, topo: Topology) -> None:
        self.lab = lab
        self.topo = topo

    def ns(self, host: str) -> str:
        if host != SWITCH:
            self.topo.host(host)  # raises a clear error for an unknown host
        return ns_name(self.lab, host)

    @property
    def switch_ns(self) -> str:
        return ns_name(self.lab, SWITCH)

    # -- build -----------------------------------------------------------------------------
    def _add_ns(self, ns: str) -> None:
        if not netns.exists(ns):
            run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # IPv4 only: no IPv6 autoconfiguration chatter on the lab's links.
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])

    def build_switch(self) -> None:
        sw = self.switch_ns
        self._add_ns(sw)
        if run(["ip", "-n", sw, "link", "show", BRIDGE], check=False).returncode != 0:
            run(["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", BRIDGE, "up"])

    def build_host(self, host: str) -> None:
        spec = self.topo.host(host)
        ns, sw = self.ns(host), self.switch_ns
        self._write_etc(ns)
        self._add_ns(ns)
        if run(["ip", "-n", ns, "link", "show", "eth0"], check=False).returncode != 0:
            run(
                [
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    switch_port(host),
                    "netns",
                    sw,
                ]
            )
        run(
            [
                "ip",
                "-n",
                ns,
                "addr",
                "replace",
                f"{spec.address}/{self.topo.prefix_len}",
                "dev",
                "eth0",
            ]
        )
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", sw, "link", "set", switch_port(host), "master", BRIDGE, "up"])
        self.apply_filters(host, [])

    def _write_etc(self, ns: str) -> None:
        """Per-namespace /etc/hosts and resolv.conf (``ip netns exec`` bind-mounts them)."""
        d = NETNS_ETC / ns
        d.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"]
        lines += [f"{h.address} {h.name}.{DOMAIN} {h.name}" for h in self.topo.hosts]
        (d / "hosts").write_text("\n".join(lines) + "\n")
        # The client's resolver (Unbound) serves every host; never a resolver outside the lab.
        client = self.topo.host("client").address if "client" in self.topo.host_names() else None
        resolv = f"nameserver {client}\n" if client else ""
        (d / "resolv.conf").write_text(resolv + f"search {DOMAIN}\noptions timeout:1 attempts:2\n")

    def build(self) -> None:
        self.build_switch()
        for h in self.topo.host_names():
            self.build_host(h)

    # -- links -----------------------------------------------------------------------------
    def set_link(self, host: str, up: bool) -> None:
        """Take a host's cable out (down) or put it back (up), at the switch side."""
        self.ns(host)
        run(["ip", "-n", self.switch_ns, "link", "set", switch_port(host), "up" if up else "down"])

    def link_state(self, host: str) -> str:
        proc = run(
            ["ip", "-n", self.switch_ns, "-o", "link", "show", switch_port(host)], check=False
        )
        if proc.returncode != 0:
            return "missing"
        flags = (
            proc.stdout.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in proc.stdout else []
        )
        return "up" if "UP" in flags else "down"

    # -- filters ---------------------------------------------------------------------------
    def addresses(self, hosts: Iterable[str]) -> list[str]:
        return [self.topo.host(h).address for h in hosts]

    def filter_rules(
        self, host: str, impairments: list[dict[str, Any]]
    ) -> tuple[list[str], list[str]]:
        """nft rules (input, output) that carry out the active impairments on one host."""
        rules_in: list[str] = []
        rules_out: list[str] = []
        for imp in impairments:
            tag = f'comment "{imp["id"]}"'
            if imp["kind"] == "partition":
                for mine, theirs in ((imp["a"], imp["b"]), (imp["b"], imp["a"])):
                    if host in mine:
                        peers = ", ".join(self.addresses(theirs))
                        rules_in.append(f"ip saddr {{ {peers} }} drop {tag}")
                        rules_out.append(f"ip daddr {{ {peers} }} drop {tag}")
            elif imp["kind"] == "port-block":  # one TCP port between the two groups
                port = int(imp["port"])
                for mine, theirs in ((imp["a"], imp["b"]), (imp["b"], imp["a"])):
                    if host in mine:
                        peers = ", ".join(self.addresses(theirs))
                        for d in ("sport", "dport"):
                            rules_in.append(f"ip saddr {{ {peers} }} tcp {d} {port} drop {tag}")
                            rules_out.append(f"ip daddr {{ {peers} }} tcp {d} {port} drop {tag}")
            elif imp["kind"] == "loss" and host in imp["hosts"]:
                n = round(float(imp["percent"]) * 100)
                rules_in.append(f'iif != "lo" numgen random mod 10000 < {n} drop {tag}')
                rules_out.append(f'oif != "lo" numgen random mod 10000 < {n} drop {tag}')
        return rules_in, rules_out

    def apply_filters(self, host: str, impairments: list[dict[str, Any]]) -> None:
        """Replace the host's ``inet draas`` table, atomically, with the active impairments."""
        rules_in, rules_out = self.filter_rules(host, impairments)
        body = [
            "add table inet draas",
            "delete table inet draas",
            "table inet draas {",
            "  chain input {",
            "    type filter hook input priority 0; policy accept;",
            *(f"    {r}" for r in rules_in),
            "  }",
            "  chain output {",
            "    type filter hook output priority 0; policy accept;",
            *(f"    {r}" for r in rules_out),
            "  }",
            "}",
        ]
        run(netns.in_ns(self.ns(host), ["nft", "-f", "-"]), input="\n".join(body) + "\n")

    # -- teardown --------------------------------------------------------------------------
    @staticmethod
    def remove_namespace(ns: str) -> None:
        if netns.exists(ns):
            run(["ip", "netns", "del", ns], check=False)
        d = NETNS_ETC / ns
        for name in ("hosts", "resolv.conf"):
            (d / name).unlink(missing_ok=True)
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LabError(f"cannot remove {d}: {exc}") from exc
