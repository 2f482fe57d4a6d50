"""The lab's real services after ``up``: DNS through Unbound, Keystone tokens, the web page,
GTID replication, etcd, HAProxy's runtime API, TSIG-signed DNS updates and TTL caching."""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from draas.lab import netns
from draas.lab.components import bind9, etcd, haproxy, mariadb
from draas.lab.lab import Lab
from draas.lab.secrets import secret
from draas.lab.services import memory_rss_mb, resolve, resolve_with_ttl
from draas.traffic.frontend.haproxy import admin_ready
from draas.traffic.frontend.haproxy import runtime_command as unix_command

pytestmark = pytest.mark.lab

TOKEN_BODY = """{"auth": {"identity": {"methods": ["password"], "password": {"user":
  {"name": "admin", "domain": {"name": "Default"}, "password": "%s"}}},
  "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}"""


def curl(lab: Lab, host: str, *args: str) -> tuple[int, str]:
    proc = lab.exec(
        host,
        ["curl", "-s", "-m", "10", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body


def issue_token(lab: Lab, url: str) -> tuple[int, str]:
    body = TOKEN_BODY % secret(lab.run, "keystone-admin")
    return curl(
        lab,
        "client",
        "-D",
        "-",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        f"{url}/v3/auth/tokens",
    )


def test_up_is_fast_and_reports_memory(full_lab: Lab) -> None:
    result = full_lab.run.load()["test_up_result"]
    mem = memory_rss_mb(full_lab)
    print(f"lab up: {result['total_s']} s {result.get('services_s')}; memory {mem:.0f} MiB RSS")
    assert result["total_s"] < 60
    assert mem < 2048


def test_service_name_resolves_through_unbound(full_lab: Lab) -> None:
    proc = full_lab.exec(
        "client",
        ["getent", "hosts", "keystone.draas.test"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.stdout.split()[0] == "198.18.1.20"  # hybrid: the name points at fe-a
    log = full_lab.sup.log_path("unbound").read_text()
    assert "start of service" in log
    # Names outside the lab are refused at once, never sent anywhere.
    ask = dns.message.make_query("example.com.", "A")
    sock = netns.socket_in(full_lab.ns("client"), kind=socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        ans = dns.query.udp(ask, "198.18.0.10", timeout=2, sock=sock)
    finally:
        sock.close()
    assert ans.rcode() == dns.rcode.REFUSED


def test_token_issued_through_the_name_and_at_each_site(full_lab: Lab) -> None:
    code, out = issue_token(full_lab, "http://keystone.draas.test:5000")
    assert code == 201, out
    assert "x-subject-token:" in out.lower()
    for site in ("primary", "dr"):
        code, out = issue_token(full_lab, f"http://{site}.draas.test:5000")
        assert code == 201, f"{site}: {out}"


def test_web_page_says_which_site_served_it(full_lab: Lab) -> None:
    code, body = curl(full_lab, "client", "http://keystone.draas.test/")
    assert code == 200 and "site=primary" in body
    code, body = curl(full_lab, "client", "http://dr.draas.test/")
    assert code == 200 and "site=dr" in body


def test_dr_replicates_a_write_on_the_primary(full_lab: Lab) -> None:
    mariadb.sql(
        full_lab,
        "primary",
        "CREATE DATABASE IF NOT EXISTS probe",
        "CREATE TABLE IF NOT EXISTS probe.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "REPLACE INTO probe.t VALUES (1, 'from-primary')",
    )
    mariadb.wait_in_sync(full_lab, "dr", "primary", timeout_s=10)
    st = mariadb.replication_status(full_lab, "dr")
    assert st["role"] == "replica"
    assert st["io_running"] == "Yes" and st["sql_running"] == "Yes"
    assert st["lag_s"] == 0
    assert st["read_only"] is True
    rows = mariadb.sql(full_lab, "dr", "SELECT v FROM probe.t WHERE id = 1")
    assert rows == [{"v": "from-primary"}]
    assert mariadb.replication_status(full_lab, "primary")["role"] == "primary"


def test_etcd_cluster_is_healthy_on_all_members(full_lab: Lab) -> None:
    health = etcd.health(full_lab)
    assert sorted(health) == sorted(etcd.client_urls(full_lab))
    assert all(health.values())


def test_haproxy_runtime_api_answers(full_lab: Lab) -> None:
    for fe in haproxy.FRONTENDS:
        out = unix_command(str(haproxy.socket_path(full_lab, fe)), "show servers state")
        assert out.startswith("1\n# be_id be_name srv_id srv_name")
        state = {(s["be_name"], s["srv_name"]): s for s in haproxy.servers_state(full_lab, fe)}
        assert set(state) == {("api", "primary"), ("api", "dr"), ("web", "primary"), ("web", "dr")}
        assert state["api", "primary"]["srv_op_state"] == "2"  # running
        assert not admin_ready(state["api", "dr"]["srv_admin_state"])  # in maintenance
    # The frontends route to the primary, the DR server waits in maintenance.
    code, body = curl(full_lab, "client", "http://fe-b.draas.test/")
    assert code == 200 and "site=primary" in body


def _update(lab: Lab, target: str, key: str | None, from_host: str = "witness") -> int:
    kw: dict[str, Any] = {}
    if key is not None:
        kw = {
            "keyring": dns.tsigkeyring.from_text({bind9.TSIG_NAME: key}),
            "keyalgorithm": dns.tsig.HMAC_SHA256,
        }
    upd = dns.update.UpdateMessage(bind9.ZONE, **kw)
    upd.replace("keystone", 5, "A", target)
    sock = netns.socket_in(lab.ns(from_host), kind=socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        return dns.query.udp(upd, lab.topo.host("dns").address, timeout=3, sock=sock).rcode()
    except dns.tsig.PeerError:
        return -1  # the server answered with a TSIG error (BADSIG/BADKEY)
    finally:
        sock.close()


def _authoritative(lab: Lab) -> list[str]:
    ask = dns.message.make_query(bind9.SERVICE_NAME, "A")
    sock = netns.socket_in(lab.ns("witness"), kind=socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        ans = dns.query.udp(ask, lab.topo.host("dns").address, timeout=2, sock=sock)
    finally:
        sock.close()
    return [rr.to_text() for rrset in ans.answer for rr in rrset]


def test_unsigned_or_wrongly_signed_updates_are_refused(full_lab: Lab) -> None:
    assert _update(full_lab, "198.18.2.20", key=None) == dns.rcode.REFUSED
    wrong = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
    assert _update(full_lab, "198.18.2.20", key=wrong) in (dns.rcode.NOTAUTH, -1)
    assert _authoritative(full_lab) == ["198.18.1.20"]


def test_signed_update_applies_at_once_and_reaches_the_client_after_the_ttl(
    full_lab: Lab,
) -> None:
    ttl = full_lab.run.load()["dns_ttl_s"]
    key = secret(full_lab.run, "tsig", kind="tsig")
    # Start right after the resolver fetched the record afresh (its TTL is the full TTL).
    deadline = time.monotonic() + ttl + 5
    while resolve_with_ttl(full_lab, bind9.SERVICE_NAME) != (["198.18.1.20"], ttl):
        assert time.monotonic() < deadline, "the resolver never refreshed the record"
        time.sleep(0.05)
    t0 = time.monotonic()
    try:
        assert _update(full_lab, "198.18.2.20", key) == dns.rcode.NOERROR
        assert _authoritative(full_lab) == ["198.18.2.20"]  # at BIND: at once
        seen_old = resolve(full_lab, bind9.SERVICE_NAME) == ["198.18.1.20"]
        deadline = t0 + ttl + 5
        while time.monotonic() < deadline:
            if resolve(full_lab, bind9.SERVICE_NAME) == ["198.18.2.20"]:
                break
            time.sleep(0.1)
        took = time.monotonic() - t0
    finally:
        assert _update(full_lab, "198.18.1.20", key) == dns.rcode.NOERROR
    print(f"TTL {ttl} s: the client saw the new address {took:.2f} s after the update")
    assert seen_old, "the client's resolver should still serve the cached answer"
    assert ttl - 1.2 <= took <= ttl + 2


def test_clouds_yaml_authenticates_as_the_labs_admin(full_lab: Lab) -> None:
    clouds = full_lab.run.path / "clouds.yaml"
    assert oct(clouds.stat().st_mode & 0o777) == "0o600"
    cloud = json.loads(clouds.read_text())["clouds"]["draas-lab"]
    code = (
        "import json,sys\n"
        "from keystoneauth1.identity import v3\n"
        "from keystoneauth1 import session\n"
        "a = json.load(open(sys.argv[1]))['clouds']['draas-lab']['auth']\n"
        "s = session.Session(auth=v3.Password(**a))\n"
        "print(s.get_token()[:8], s.get_endpoint(service_type='identity', interface='public'))\n"
    )
    proc = full_lab.exec(
        "client",
        [sys.executable, "-c", code, str(clouds)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[1] == cloud["auth"]["auth_url"].removesuffix("/v3") + "/v3"


def test_dns_scheme_points_the_name_at_the_primary_and_runs_no_frontend(lab_name: str) -> None:
    from draas.lab.lab import LabSettings

    lab = Lab(lab_name)
    try:
        lab.up(LabSettings(scheme="dns"))
        assert resolve(lab, bind9.SERVICE_NAME) == ["198.18.1.10"]
        assert not [n for n in lab.sup.names() if n.startswith("haproxy")]
        code, body = curl(lab, "client", "http://keystone.draas.test/")
        assert code == 200 and "site=primary" in body
    finally:
        lab.down()


def _lead_away(lab: Lab, hosts: list[str]) -> str:
    """``EtcdStore.lead_away_from(hosts)`` run in the witness's namespace, as an agent would."""
    code = (
        "import json, sys; from draas.coordination.etcd import EtcdStore, Tls; "
        "s = EtcdStore(json.loads(sys.argv[1]), tls=Tls(*json.loads(sys.argv[3]))); "
        "print(s.lead_away_from(json.loads(sys.argv[2])))"
    )
    t = etcd.tls(lab)
    files = json.dumps([t.ca, t.cert, t.key])
    argv = [sys.executable, "-c", code, json.dumps(etcd.client_urls(lab)), json.dumps(hosts), files]
    proc = lab.exec("witness", argv, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout).strip()


def _leader_host(lab: Lab) -> str:
    st = etcd.status(lab)
    leader = {str(s["leader"]) for s in st}
    assert len(leader) == 1, st
    (url,) = [str(s["endpoint"]) for s in st if s["member"] == s["leader"]]
    return url.split("//")[1].split(":")[0]


def test_the_store_leader_is_moved_off_the_active_sites_hosts(full_lab: Lab) -> None:
    # The active site's agent asks this every few seconds: a disaster at the site holding the
    # leader would otherwise cost an election before the failover can write anything.
    before = _leader_host(full_lab)
    said = _lead_away(full_lab, [before])
    assert said.startswith("etcd leadership moved from https://" + before), said
    deadline = time.monotonic() + 10
    while (after := _leader_host(full_lab)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert after != before
    # Already off those hosts: nothing is done.
    assert _lead_away(full_lab, [before]) == ""


def test_the_stores_members_speak_tls_and_want_a_client_certificate(full_lab: Lab) -> None:
    url = etcd.client_urls(full_lab)[0] + "/version"
    p = etcd.pki(full_lab)

    def get(*flags: str) -> Any:
        argv = ["curl", "-sS", "-m", "5", *flags, url]
        return full_lab.exec("witness", argv, capture_output=True, text=True, timeout=15)

    ok = get("--cacert", str(p.ca), "--cert", str(p.client_cert), "--key", str(p.client_key))
    assert ok.returncode == 0 and "etcdserver" in ok.stdout, ok.stderr
    assert get("--cacert", str(p.ca)).returncode != 0  # no client certificate: refused
    assert get().returncode != 0  # the lab's CA is not a public one
    http = full_lab.exec(
        "witness",
        ["curl", "-sS", "-m", "5", url.replace("https:", "http:")],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert "etcdserver" not in http.stdout  # no plain HTTP answer
