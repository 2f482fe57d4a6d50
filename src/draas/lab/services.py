"""Bring up the lab's real services for a scheme, in parallel where they do not depend on each
other, and report their state.

    dns group       BIND9 on dns, Unbound on client
    etcd group      three members, then a health check of the cluster
    data group      MariaDB x2 -> accounts on primary -> DR replicates -> Keystone db_sync and
                    bootstrap on primary -> uWSGI Keystone x2; key setup in parallel
    edge group      HAProxy on the frontends the scheme needs; web pages on both sites
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from draas.lab import netns
from draas.lab.components import bind9, etcd, haproxy, keystone, mariadb, unbound
from draas.lab.engine import LabEngine, Progress
from draas.lab.secrets import secret
from draas.lab.state import write_json

log = logging.getLogger(__name__)

SCHEMES = ("dns", "frontend", "hybrid")


def frontends_for(scheme: str) -> tuple[str, ...]:
    return {"dns": (), "frontend": ("fe-a",), "hybrid": ("fe-a", "fe-b")}[scheme]


def initial_target(lab: LabEngine, scheme: str) -> str:
    """Where the service name points at first: the primary site, or the first frontend."""
    return lab.topo.host("primary" if scheme == "dns" else "fe-a").address


def _timed(name: str, fn: Callable[[], None], progress: Progress) -> float:
    t0 = time.monotonic()
    fn()
    took = time.monotonic() - t0
    progress(f"  {name} ready in {took:.1f} s")
    return took


def start_services(
    lab: LabEngine, scheme: str, dns_ttl_s: int, progress: Progress
) -> dict[str, float]:
    """Start everything the scheme needs; return each group's time to readiness."""
    sup = lab.sup

    def dns_group() -> None:
        sup.start_many([bind9.spec(lab, initial_target(lab, scheme), dns_ttl_s), unbound.spec(lab)])

    def etcd_group() -> None:
        sup.start_many([etcd.spec(lab, m) for m in etcd.MEMBERS])
        etcd.wait_healthy(lab)

    def data_group() -> None:
        for host in mariadb.SITES:
            mariadb.install(lab, host)
        sup.start_many([mariadb.spec(lab, h) for h in mariadb.SITES])
        mariadb.setup_primary(lab)
        mariadb.start_replica(lab, "dr", "primary")
        for host in keystone.SITES:
            keystone.write_conf(lab, host)
        with ThreadPoolExecutor(max_workers=2) as pool:
            keys = pool.submit(keystone.setup_keys, lab)
            keystone.db_sync_and_bootstrap(lab)
            keys.result()
        mariadb.wait_in_sync(lab, "dr", "primary")
        sup.start_many([keystone.spec(lab, h) for h in keystone.SITES])

    def edge_group() -> None:
        specs = [keystone.web_spec(lab, h) for h in keystone.SITES]
        specs += [haproxy.spec(lab, fe) for fe in frontends_for(scheme)]
        sup.start_many(specs)

    groups = {
        "dns": dns_group,
        "etcd": etcd_group,
        "mariadb+keystone": data_group,
        "frontends+web": edge_group,
    }
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = {n: pool.submit(_timed, n, fn, progress) for n, fn in groups.items()}
        took = {n: f.result() for n, f in futures.items()}
    for fe in frontends_for(scheme):  # the whole path works before up returns
        haproxy.wait_routing(lab, fe)
    write_clouds_yaml(lab)
    services = {
        "primary": "keystone-primary",
        "dr": "keystone-dr",
        "dns": "named",
        "client": "unbound",
        "witness": "etcd-witness",
    }
    services.update({fe: f"haproxy-{fe}" for fe in frontends_for(scheme)})
    lab.run.update(services=services, scheme=scheme, dns_ttl_s=dns_ttl_s)
    return took


def write_clouds_yaml(lab: LabEngine) -> None:
    """clouds.yaml with the cloud ``draas-lab`` (the lab's admin, through the service name)."""
    doc = {
        "clouds": {
            "draas-lab": {
                "auth": {
                    "auth_url": keystone.AUTH_URL,
                    "username": "admin",
                    "password": secret(lab.run, "keystone-admin"),
                    "project_name": "admin",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": keystone.REGION,
                "identity_api_version": 3,
                "interface": "public",
            }
        }
    }
    path = lab.run.path / "clouds.yaml"
    write_json(path, doc)  # JSON is valid YAML, and needs no YAML library
    path.chmod(0o600)


def resolve_with_ttl(lab: LabEngine, name: str, from_host: str = "client") -> tuple[list[str], int]:
    """A records for ``name`` as the lab's resolver (Unbound) answers them, with the TTL left."""
    server = lab.topo.host("client").address
    try:
        ans = netns.dns_udp(lab.ns(from_host), dns.message.make_query(name, "A"), server)
    except (OSError, dns.exception.DNSException):
        return [], 0
    if ans.rcode() != dns.rcode.NOERROR:
        return [], 0
    rrsets = [r for r in ans.answer if r.rdtype == dns.rdatatype.A]
    return [rr.to_text() for r in rrsets for rr in r], min((r.ttl for r in rrsets), default=0)


def resolve(lab: LabEngine, name: str, from_host: str = "client") -> list[str]:
    return resolve_with_ttl(lab, name, from_host)[0]


def service_status(lab: LabEngine) -> list[dict[str, Any]]:
    """One row per service: where it runs, its process state, role and replication lag."""
    rows: list[dict[str, Any]] = []
    names = set(lab.sup.names())
    for name in sorted(names):
        if name == "wan-delayer":
            continue
        rec = lab.sup.record(name)
        row: dict[str, Any] = {
            "service": name,
            "host": rec["spec"].get("host", ""),
            "state": lab.sup.state(name),
            "pid": rec["pid"],
        }
        if name.startswith("mariadb-") and row["state"] == "running":
            try:
                st = mariadb.replication_status(lab, row["host"])
                row["role"] = st["role"]
                row["lag_s"] = st.get("lag_s")
                row["detail"] = st
            except Exception as exc:  # status must report, not fail
                row["role"] = f"unreachable: {exc}"
        rows.append(row)
    return rows


def memory_rss_mb(lab: LabEngine) -> float:
    """Resident memory of every process in the lab's namespaces, in MiB."""
    total_kb = 0
    for ns in lab.our_namespaces():
        for pid in netns.pids_in(ns):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
    return total_kb / 1024


def services_overview(lab: LabEngine) -> dict[str, Any]:
    """What ``draas lab status`` shows of the services."""
    from draas.lab.components.bind9 import SERVICE_NAME

    return {
        "services": service_status(lab),
        "dns_answer": {"name": SERVICE_NAME, "client_gets": resolve(lab, SERVICE_NAME)},
        "etcd_health": etcd.health(lab),
        "memory_rss_mib": round(memory_rss_mb(lab), 1),
    }
