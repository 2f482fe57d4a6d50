"""Traffic switches against the lab's real BIND and HAProxy."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from draas.errors import TrafficError
from draas.lab import netns
from draas.lab.components import bind9, haproxy
from draas.lab.lab import Lab
from draas.lab.secrets import secret
from draas.traffic.dns.rfc2136 import Rfc2136Provider, read_tsig_key
from draas.traffic.frontend.haproxy import HaproxyEngine, admin_ready

pytestmark = pytest.mark.lab


def provider(lab: Lab, key: str | None = None, **kw: Any) -> Rfc2136Provider:
    return Rfc2136Provider(
        "rfc2136",
        zone=bind9.ZONE,
        record=bind9.SERVICE_NAME,
        ttl_s=5,
        server=lab.topo.host("dns").address,
        key_name=bind9.TSIG_NAME,
        key_algorithm="hmac-sha256",
        key_secret=key or secret(lab.run, "tsig", kind="tsig"),
        socket_factory=lambda: netns.socket_in(lab.ns("witness"), kind=socket.SOCK_DGRAM),
        backoff_s=0.05,
        **kw,
    )


def site_served(lab: Lab, url: str) -> str:
    proc = lab.exec("client", ["curl", "-s", "-m", "5", url], capture_output=True, text=True)
    return proc.stdout.split("site=")[1].split("<")[0] if "site=" in proc.stdout else ""


def test_rfc2136_signed_update_applies_and_reads_back(full_lab: Lab) -> None:
    p = provider(full_lab)
    assert p.check().ok
    assert p.current() == "198.18.1.20"
    try:
        r = p.point_to("198.18.2.20")
        assert r.changed and r.previous == "198.18.1.20"
        assert p.current() == "198.18.2.20"
        assert p.point_to("198.18.2.20").changed is False
    finally:
        p.point_to("198.18.1.20")


def test_rfc2136_wrong_key_is_refused_clearly_and_changes_nothing(full_lab: Lab) -> None:
    wrong = provider(full_lab, key="c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")
    with pytest.raises(TrafficError) as info:
        wrong.point_to("198.18.2.20")
    msg = str(info.value)
    assert "198.18.0.53:53" in msg and "draas.test" in msg
    assert "TSIG" in msg or "NOTAUTH" in msg
    assert not info.value.retryable
    assert wrong.check().ok is False
    assert provider(full_lab).current() == "198.18.1.20"


def test_rfc2136_a_skewed_clock_is_named_as_the_cause_not_the_key(
    full_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine 10 minutes fast (what faketime -f '+10m' does to an agent): BIND refuses
    the signature's time; the error says so, with the offset, and nothing changes."""
    import dns.message

    real = time.time
    fast = type("FastTime", (), {"time": staticmethod(lambda: real() + 600)})
    monkeypatch.setattr(dns.message, "time", fast)
    with pytest.raises(TrafficError) as info:
        provider(full_lab).point_to("198.18.2.20")
    msg = str(info.value)
    assert "rejects our signature's time (TSIG BADTIME)" in msg, msg
    offset = float(msg.split("clock is ")[1].split(" s off")[0])
    assert 590 <= offset <= 610 and "check the key" not in msg
    monkeypatch.undo()
    assert provider(full_lab).current() == "198.18.1.20"


def test_rfc2136_timeout_is_retryable_and_bounded(full_lab: Lab) -> None:
    p = Rfc2136Provider(
        "rfc2136",
        zone=bind9.ZONE,
        record=bind9.SERVICE_NAME,
        ttl_s=5,
        server="198.18.0.99",
        key_name=bind9.TSIG_NAME,
        key_algorithm="hmac-sha256",
        key_secret=secret(full_lab.run, "tsig", kind="tsig"),
        timeout_s=0.2,
        retries=1,
        backoff_s=0.01,
        socket_factory=lambda: netns.socket_in(full_lab.ns("witness"), kind=socket.SOCK_DGRAM),
    )
    with pytest.raises(TrafficError, match="no answer from server 198.18.0.99") as info:
        p.point_to("198.18.2.20")
    assert info.value.retryable


def test_tsig_key_file_formats(tmp_path: Path, full_lab: Lab) -> None:
    key = secret(full_lab.run, "tsig", kind="tsig")
    bind_file = tmp_path / "k.key"
    bind_file.write_text(
        f'key "{bind9.TSIG_NAME}" {{\n\talgorithm hmac-sha256;\n\tsecret "{key}";\n}};\n'
    )
    assert read_tsig_key(bind_file) == (bind9.TSIG_NAME, "hmac-sha256", key)
    short = tmp_path / "k.txt"
    short.write_text(f"{bind9.TSIG_NAME}:hmac-sha256:{key}\n")
    assert read_tsig_key(short) == (bind9.TSIG_NAME, "hmac-sha256", key)
    short.write_text("name:hmac-sha256:not base64!\n")
    with pytest.raises(TrafficError, match="not base64"):
        read_tsig_key(short)


def engine(lab: Lab, fe: str = "fe-a") -> HaproxyEngine:
    sites = {s: lab.topo.host(s).address for s in ("primary", "dr")}
    return HaproxyEngine(fe, admin_socket=str(haproxy.socket_path(lab, fe)), sites=sites)


def test_haproxy_switch_moves_the_next_requests_and_reads_back(full_lab: Lab) -> None:
    e = engine(full_lab)
    assert e.check().ok and e.current() == "primary"
    assert site_served(full_lab, "http://fe-a.draas.test/") == "primary"
    try:
        r = e.point_to("dr")
        assert r.changed and e.current() == "dr"
        served = [site_served(full_lab, "http://fe-a.draas.test/") for _ in range(5)]
        assert served == ["dr"] * 5
        states = {(s["be_name"], s["srv_name"]): s["srv_admin_state"] for s in e.servers()}
        assert not admin_ready(states[("web", "primary")]) and admin_ready(states[("web", "dr")])
    finally:
        e.point_to("primary")
    assert site_served(full_lab, "http://fe-a.draas.test/") == "primary"


def test_haproxy_bad_targets_change_nothing(full_lab: Lab) -> None:
    e = engine(full_lab)
    with pytest.raises(TrafficError, match="unknown site 'moon'.*nothing was changed"):
        e.point_to("moon")
    assert e.current() == "primary"
    gone = HaproxyEngine(
        "fe-x",
        admin_socket="/nonexistent/admin.sock",
        sites={"primary": "198.18.1.10"},
        retries=1,
        backoff_s=0.01,
    )
    with pytest.raises(TrafficError, match="runtime API /nonexistent/admin.sock"):
        gone.point_to("primary")
    assert gone.check().ok is False


def test_embedded_proxy_in_a_frontend_routes_real_traffic(full_lab: Lab) -> None:
    from draas.lab.embedded import proxy_in

    sites = {s: full_lab.topo.host(s).address for s in ("primary", "dr")}
    with proxy_in(full_lab, "fe-b", sites, {8080: 80, 8500: 5000}, target="primary") as engine:
        assert site_served(full_lab, "http://fe-b.draas.test:8080/") == "primary"
        # A Keystone token through the proxy: a POST body one way, headers back. (At the
        # primary: a read-only standby Keystone cannot issue a user's first token of the day,
        # it writes last_active_at.)
        body = (
            '{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": '
            f'"admin", "domain": {{"name": "Default"}}, "password": '
            f'"{secret(full_lab.run, "keystone-admin")}"}}}}}}}}}}'
        )
        proc = full_lab.exec(
            "client",
            [
                "curl",
                "-sv",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "10",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
                "http://fe-b.draas.test:8500/v3/auth/tokens",
            ],
            capture_output=True,
            text=True,
        )
        assert proc.stdout == "201", proc.stderr
        engine.point_to("dr")
        assert site_served(full_lab, "http://fe-b.draas.test:8080/") == "dr"
        assert site_served(full_lab, "http://fe-b.draas.test:8080/") == "dr"
        assert engine.served.get("dr", 0) >= 2


def test_autonomous_haproxy_routes_around_a_crashed_site_and_back(full_lab: Lab) -> None:
    """The baseline: HAProxy with a backup server fails over by its own health checks, and
    sends traffic back to the primary as soon as its checks pass again (unsafe for state)."""
    import time

    from draas.lab.disasters import ServiceCrash
    from draas.lab.readiness import UnixReady
    from draas.traffic.frontend.haproxy import config_text

    d = full_lab.run.path / "haproxy-auto"
    d.mkdir(exist_ok=True)
    sock = d / "admin.sock"
    sites = {s: full_lab.topo.host(s).address for s in ("primary", "dr")}
    cfg = d / "haproxy.cfg"
    cfg.write_text(
        config_text(
            full_lab.topo.host("fe-b").address,
            sites,
            "primary",
            str(sock),
            autonomous=True,
            listen={"api": 5001, "web": 8081},
        )
    )
    full_lab.sup.start(
        full_lab.spec(
            "haproxy-auto",
            "fe-b",
            ["haproxy", "-W", "-db", "-f", str(cfg)],
            ready=UnixReady(str(sock), "show info", "HAProxy"),
        )
    )
    url = "http://fe-b.draas.test:8081/"

    def wait_for(site: str, limit: float = 15) -> float:
        t0 = time.monotonic()
        while site_served(full_lab, url) != site:
            assert time.monotonic() - t0 < limit, f"never served by {site}"
            time.sleep(0.1)
        return time.monotonic() - t0

    try:
        wait_for("primary")
        with ServiceCrash(full_lab, process="web-primary"):
            took = wait_for("dr")
        back = wait_for("primary")
        print(
            f"autonomous HAProxy: on dr {took:.1f} s after the crash, back on the primary "
            f"{back:.1f} s after it restarted"
        )
    finally:
        full_lab.sup.stop("haproxy-auto")


REGISTER_DNS = """
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
pw = open(sys.argv[2]).read().strip()
auth = v3.Password(auth_url=sys.argv[1], username="admin", password=pw, project_name="admin",
                   user_domain_name="Default", project_domain_name="Default")
s = session.Session(auth=auth)
base = sys.argv[1]
svc = s.post(base + "/services", json={"service": {"type": "dns", "name": "designate"}}).json()
s.post(base + "/endpoints", json={"endpoint": {"service_id": svc["service"]["id"],
       "interface": "public", "url": sys.argv[3], "region_id": "RegionOne"}})
"""

USE_DESIGNATE = """
import json, sys
from draas.errors import TrafficError
from draas.traffic.dns.designate import DesignateProvider
p = DesignateProvider("designate", zone="draas.test.", record="keystone.draas.test.", ttl_s=5,
                      cloud="draas-lab", wait_s=10, backoff_s=0.1, retries=1)
out = {"check": p.check().ok}
try:
    out["before"] = p.current()
    r = p.point_to(sys.argv[1])
    out.update(changed=r.changed, after=p.current(), again=p.point_to(sys.argv[1]).changed)
except TrafficError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def test_designate_through_openstacksdk_with_the_labs_keystone(
    full_lab: Lab, tmp_path: Path
) -> None:
    import json
    import sys

    from draas.lab.components import keystone
    from draas.lab.readiness import TcpReady
    from draas.lab.secrets import secret_file

    url = "http://198.18.0.10:9001/"
    pw = str(secret_file(full_lab.run, "keystone-admin"))
    reg = full_lab.exec(
        "client",
        [sys.executable, "-c", REGISTER_DNS, keystone.AUTH_URL, pw, url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reg.returncode == 0, reg.stderr
    server = Path(__file__).parent / "fake_designate.py"
    full_lab.sup.start(
        full_lab.spec(
            "designate",
            "client",
            [
                sys.executable,
                str(server),
                "--bind",
                "198.18.0.10",
                "--port",
                "9001",
                "--keystone",
                "http://keystone.draas.test:5000",
                "--zone",
                "draas.test.",
                "--record",
                "keystone.draas.test.",
                "--address",
                "198.18.1.20",
            ],
            ready=TcpReady("198.18.0.10", 9001),
        )
    )
    clouds = full_lab.run.path / "clouds.yaml"

    def use(clouds_file: Path) -> dict[str, object]:
        proc = full_lab.exec(
            "client",
            [sys.executable, "-c", USE_DESIGNATE, "198.18.2.20"],
            env={"OS_CLIENT_CONFIG_FILE": str(clouds_file)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    try:
        got = use(clouds)
        assert got == {
            "check": True,
            "before": "198.18.1.20",
            "changed": True,
            "after": "198.18.2.20",
            "again": False,
        }, got
        log = full_lab.sup.log_path("designate").read_text()
        assert "PUT /v2/zones/" in log  # the update went through Designate's API
        bad = json.loads(clouds.read_text())
        bad["clouds"]["draas-lab"]["auth"]["password"] = "wrong"
        wrong = tmp_path / "clouds.yaml"
        wrong.write_text(json.dumps(bad))
        got = use(wrong)
        assert got["check"] is False and "authentication refused" in str(got.get("error"))
    finally:
        full_lab.sup.stop("designate")


def test_haproxy_reload_is_seamless(full_lab: Lab) -> None:
    """Requests sent back to back across a reload all succeed; the master keeps its PID."""
    import threading
    import time

    pid = full_lab.sup.record("haproxy-fe-a")["pid"]
    results: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(results) < 500:
            results.append(site_served(full_lab, "http://fe-a.draas.test/"))

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.5)
    haproxy.reload(full_lab, "fe-a")
    time.sleep(1.0)
    stop.set()
    t.join(30)
    assert len(results) >= 10 and set(results) == {"primary"}, results
    assert full_lab.sup.record("haproxy-fe-a")["pid"] == pid
    assert full_lab.sup.state("haproxy-fe-a") == "running"
    assert "reload" in full_lab.sup.log_path("haproxy-fe-a").read_text().lower()


def test_engines_are_chosen_by_name() -> None:
    from draas.traffic.frontend import make_engine
    from draas.traffic.frontend.haproxy import HaproxyEngine as H
    from draas.traffic.frontend.proxy import ProxyEngine

    sites = {"primary": "198.18.1.10", "dr": "198.18.2.10"}
    assert isinstance(make_engine("haproxy", "fe", sites, admin_socket="/x"), H)
    e = make_engine("redirect", "fe", sites, ports={80: 80})
    assert isinstance(e, ProxyEngine) and e.redirect
    with pytest.raises(TrafficError, match="'nginx' is not available"):
        make_engine("nginx", "fe", sites)
