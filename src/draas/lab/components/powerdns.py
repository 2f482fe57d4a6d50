"""PowerDNS Authoritative on the ``dns`` host in place of BIND9, for the experiments'
health-checked-DNS baseline: ``keystone.draas.test`` is a LUA record whose ``ifurlup`` checks
the sites' Keystone API from inside the DNS server and answers with the primary while its check
passes, the DR site otherwise. No controller, no lease, no promotion: health-checked DNS."""

from __future__ import annotations

from pathlib import Path

from draas.lab.components import bind9
from draas.lab.components.bind9 import HOST, SERVICE_NAME, ZONE
from draas.lab.engine import LabEngine
from draas.lab.readiness import DnsReady
from draas.lab.supervisor import ProcessSpec

CHECK_INTERVAL_S = 1


def conf_dir(lab: LabEngine) -> Path:
    d = lab.run.path / "powerdns"
    d.mkdir(parents=True, exist_ok=True)
    return d


def zone_text(lab: LabEngine, ttl_s: int) -> str:
    primary, dr = lab.topo.host("primary").address, lab.topo.host("dr").address
    # The API's version document: a dead Keystone fails it even while the web page answers.
    lua = (
        f"ifurlup('http://{SERVICE_NAME.rstrip('.')}:5000/v3', {{{{'{primary}'}}, "
        f"{{'{dr}'}}}}, {{stringmatch='stable'}})"
    )
    return bind9.zone_text(lab, "", ttl_s, service_record=f'keystone IN LUA A "{lua}"')


def spec(lab: LabEngine, ttl_s: int = 5) -> ProcessSpec:
    d = conf_dir(lab)
    (d / "draas.test.zone").write_text(zone_text(lab, ttl_s))
    (d / "named.conf").write_text(
        f'zone "{ZONE}" {{ type master; file "{d}/draas.test.zone"; }};\n'
    )
    (d / "pdns.conf").write_text(
        "\n".join(
            [
                "launch=bind",
                f"bind-config={d}/named.conf",
                f"local-address={lab.topo.host(HOST).address}",
                "local-port=53",
                "enable-lua-records=yes",
                f"lua-health-checks-interval={CHECK_INTERVAL_S}",
                f"socket-dir={d}",
                "guardian=no",
                "daemon=no",
                "disable-syslog=yes",
                "write-pid=no",
                "loglevel=5",
            ]
        )
        + "\n"
    )
    return lab.spec(
        "pdns",
        HOST,
        ["pdns_server", f"--config-dir={d}"],
        ready=DnsReady(lab.topo.host(HOST).address, SERVICE_NAME),
        ready_timeout_s=20,
    )


def replace_bind(lab: LabEngine, ttl_s: int = 5) -> None:
    """Stop BIND on the dns host and serve the zone with PowerDNS instead."""
    lab.sup.stop("named")
    lab.sup.start(spec(lab, ttl_s))
