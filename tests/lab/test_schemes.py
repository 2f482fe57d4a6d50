"""The frontend and hybrid schemes with every agent running against the real lab (etcd,
MariaDB, Keystone, BIND, Unbound, HAProxy on the frontends): a primary power-off moves the
service to the DR site through the frontends, in order, under a new epoch; writes made there
survive the failback that follows when the primary returns; in the hybrid scheme a crashed
frontend loses the DNS name to the other and gets it back when it returns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import (
    FAILBACK,
    FAILOVER,
    active,
    alert_events,
    authoritative,
    done_steps,
    in_sync_checksums,
    new_lab_name,
    served_by,
    wait_until,
    write_through_service,
)

from draas.lab.agents import start_agents
from draas.lab.components import haproxy, keystone
from draas.lab.disasters import PowerOff, ServiceCrash
from draas.lab.lab import Lab, LabSettings
from draas.lab.services import frontends_for

pytestmark = pytest.mark.lab

ACKED: dict[str, set[str]] = {}


@pytest.fixture(scope="module", params=["frontend", "hybrid"])
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(scheme=request.param))
        start_agents(lab, preset="fast")
        wait_until("the primary agent takes the record", lambda: active(lab) is not None, 30)
        yield lab
    finally:
        lab.down()


def routes(lab: Lab, fe: str) -> set[str]:
    """The sites HAProxy on ``fe`` routes to (servers not in maintenance)."""
    from draas.traffic.frontend.haproxy import admin_ready

    return {
        s["srv_name"] for s in haproxy.servers_state(lab, fe) if admin_ready(s["srv_admin_state"])
    }


def test_power_off_moves_the_service_to_dr_through_the_frontends(lab: Lab) -> None:
    scheme = lab.settings.scheme
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 20)
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        took = wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 40)
        print(f"{scheme}: power-off to the client served by dr: {took:.1f} s")
        assert took < 3 * 0.5 + 2.0 + 15  # detection + window, then one quick switch
        assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
        # the frontends follow the lease as soon as it moves; the runbook then finishes
        wait_until("the failover runbook", lambda: "detach" in done_steps(lab, "failover-"), 15)
        assert done_steps(lab, "failover-") == FAILOVER
        for fe in frontends_for(scheme):
            assert routes(lab, fe) == {"dr"}
        ACKED[scheme] = write_through_service(lab, f"w{scheme[:2]}", 3.0)
        assert ACKED[scheme], "the DR site took no write through the service name"
    finally:
        off.revert()


def test_the_primary_returns_and_failback_brings_the_service_home(lab: Lab) -> None:
    scheme = lab.settings.scheme
    lab.sup.wait_ready("mariadb-primary")
    took = wait_until("failback", lambda: "verify" in done_steps(lab, "failback-"), 60)
    print(f"{scheme}: primary powered on to failback done: {took:.1f} s")
    assert active(lab) == {"site": "primary", "epoch": 3, "holder": "site-primary"}
    assert done_steps(lab, "failback-") == FAILBACK
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 15)
    for fe in frontends_for(scheme):
        assert routes(lab, fe) == {"primary"}
    written = ACKED.get(scheme, set())
    assert written and written <= keystone.project_names(lab, "primary", f"w{scheme[:2]}")
    p, d = in_sync_checksums(lab)
    assert p == d


@pytest.mark.parametrize("lab", ["hybrid"], indirect=True)
def test_hybrid_a_crashed_frontend_loses_the_dns_name_and_gets_it_back(lab: Lab) -> None:
    fe_a, fe_b = (lab.topo.host(h).address for h in ("fe-a", "fe-b"))
    assert authoritative(lab) == [fe_a]
    crash = ServiceCrash(lab, process="haproxy-fe-a")
    t0 = time.monotonic()
    crash.inject()
    try:
        moved = wait_until("DNS on fe-b", lambda: authoritative(lab) == [fe_b], 30)
        wait_until("the client served again", lambda: served_by(lab) == "primary", 20)
        print(
            f"fe-a crash: DNS moved to fe-b after {moved:.1f} s; the client served again "
            f"after {time.monotonic() - t0:.1f} s"
        )
        assert done_steps(lab, "frontend-dns-fe-b-") == ["move-dns"]
        assert active(lab) == {"site": "primary", "epoch": 3, "holder": "site-primary"}
    finally:
        crash.revert()
    back = wait_until("DNS back on the preferred fe-a", lambda: authoritative(lab) == [fe_a], 30)
    print(f"fe-a restarted: DNS back on fe-a after {back:.1f} s")
    assert done_steps(lab, "frontend-dns-fe-a-") == ["move-dns"]
    wait_until("fe-a routes to the primary", lambda: routes(lab, "fe-a") == {"primary"}, 5)


@pytest.mark.parametrize("lab", ["hybrid"], indirect=True)
def test_hybrid_every_frontend_down_points_the_name_at_the_active_site_and_back(lab: Lab) -> None:
    """``frontend.direct_when_all_down`` (on by default): both HAProxies crashed, the name goes
    straight to the active site while the quorum sees no frontend up, and back to the
    preferred frontend once it is up again."""
    site = lab.topo.host("primary").address
    fe_a = lab.topo.host("fe-a").address
    crashes = [ServiceCrash(lab, process=f"haproxy-{fe}") for fe in ("fe-a", "fe-b")]
    t0 = time.monotonic()
    for crash in crashes:
        crash.inject()
    try:
        moved = wait_until("DNS on the primary site", lambda: authoritative(lab) == [site], 30)
        served = wait_until("the client served again", lambda: served_by(lab) == "primary", 20)
        print(
            f"both frontends crashed: DNS on the primary site after {moved:.1f} s; the client "
            f"served again after {time.monotonic() - t0:.1f} s"
        )
        assert served < 20 and done_steps(lab, "frontend-dns-primary-") == ["move-dns"]
        wait_until(
            "the all-frontends-down alert",
            lambda: bool(alert_events(lab, "all-frontends-down")),
            20,
        )
        print(f"no-working-path raised: {len(alert_events(lab, 'no-working-path'))} time(s)")
    finally:
        for crash in crashes:
            crash.revert()
    back = wait_until("DNS back on fe-a", lambda: authoritative(lab) == [fe_a], 30)
    print(f"frontends restarted: DNS back on fe-a after {back:.1f} s")
    wait_until("the client served through fe-a", lambda: served_by(lab) == "primary", 20)
    wait_until(
        "the all-frontends-down alert cleared",
        lambda: bool(alert_events(lab, "all-frontends-down", "cleared")),
        30,
    )
