"""BIND9 on the ``dns`` host: authoritative for ``draas.test.``, dynamic updates (RFC 2136)
accepted only when signed with the lab's TSIG key."""

from __future__ import annotations

from pathlib import Path

from draas.lab.engine import LabEngine
from draas.lab.readiness import DnsReady
from draas.lab.secrets import secret
from draas.lab.supervisor import ProcessSpec

ZONE = "draas.test."
SERVICE_NAME = f"keystone.{ZONE}"
TSIG_NAME = "draas-lab."
TSIG_ALGORITHM = "hmac-sha256"
HOST = "dns"


def conf_dir(lab: LabEngine) -> Path:
    d = lab.run.path / "bind"
    d.mkdir(parents=True, exist_ok=True)
    return d


def zone_text(
    lab: LabEngine, service_address: str, ttl_s: int, service_record: str | None = None
) -> str:
    """The lab's zone; ``service_record`` replaces the service name's A record (PowerDNS's
    LUA record)."""
    dns_addr = lab.topo.host(HOST).address
    lines = [
        f"$TTL {ttl_s}",
        f"@ IN SOA ns.{ZONE} hostmaster.{ZONE} 1 60 30 3600 {ttl_s}",
        f"@ IN NS ns.{ZONE}",
        f"ns IN A {dns_addr}",
        service_record or f"keystone IN A {service_address}",
    ]
    lines += [f"{h.name} IN A {h.address}" for h in lab.topo.hosts]
    return "\n".join(lines) + "\n"


def spec(lab: LabEngine, service_address: str, ttl_s: int) -> ProcessSpec:
    d = conf_dir(lab)
    key = secret(lab.run, "tsig", kind="tsig")
    addr = lab.topo.host(HOST).address
    (d / "draas.test.zone").write_text(zone_text(lab, service_address, ttl_s))
    (d / "draas.test.zone.jnl").unlink(missing_ok=True)
    conf = f"""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    listen-on port 53 {{ {addr}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{TSIG_NAME}" {{
    algorithm {TSIG_ALGORITHM};
    secret "{key}";
}};
zone "{ZONE}" {{
    type primary;
    file "{d}/draas.test.zone";
    allow-update {{ key "{TSIG_NAME}"; }};
}};
"""
    path = d / "named.conf"
    path.write_text(conf)
    path.chmod(0o600)  # it holds the TSIG secret
    return lab.spec(
        "named",
        HOST,
        ["named", "-g", "-u", "root", "-c", str(path)],
        ready=DnsReady(addr, SERVICE_NAME),
        ready_timeout_s=20,
    )
