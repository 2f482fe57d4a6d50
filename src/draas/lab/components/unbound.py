"""Unbound on the ``client`` host: the caching resolver every lab host uses. It sends
``draas.test.`` to BIND, honours TTLs, refuses every other name (nothing leaves the lab)."""

from __future__ import annotations

from draas.lab.components.bind9 import SERVICE_NAME, ZONE
from draas.lab.engine import LabEngine
from draas.lab.readiness import DnsReady
from draas.lab.supervisor import ProcessSpec

HOST = "client"


def spec(lab: LabEngine) -> ProcessSpec:
    d = lab.run.path / "unbound"
    d.mkdir(parents=True, exist_ok=True)
    addr = lab.topo.host(HOST).address
    bind_addr = lab.topo.host("dns").address
    conf = f"""
server:
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    interface: {addr}
    interface: 127.0.0.1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    access-control: 198.18.0.0/15 allow
    module-config: "iterator"
    local-zone: "test." nodefault
    local-zone: "." refuse
    local-zone: "{ZONE}" transparent
    domain-insecure: "{ZONE}"
    prefetch: no
    serve-expired: no
stub-zone:
    name: "{ZONE}"
    stub-addr: {bind_addr}
"""
    path = d / "unbound.conf"
    path.write_text(conf)
    return lab.spec(
        "unbound",
        HOST,
        ["unbound", "-d", "-c", str(path)],
        ready=DnsReady(addr, SERVICE_NAME),
        ready_timeout_s=20,
    )
