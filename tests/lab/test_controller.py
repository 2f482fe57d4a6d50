"""No single decider, both directions (hybrid scheme, semi-sync, every agent real):

- the DR site's agent killed (SIGKILL, not restarted), then the primary powered off: another
  agent holds the controller lease and runs the failover, 0 acknowledged writes lost; it keeps
  the DR site's record while that site's agent is down; the hybrid scheme's DNS move still
  works; the failback follows once the DR agent and the primary are back;
- a planned switchover to the DR site (whose key rotation now reaches home: the active site is
  the keys' source), then the DR site powered off: automatic failover to the home site, 0
  acknowledged writes lost, a token signed with the rotated key validates there; the returning
  DR site rejoins as its standby.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import (
    DR_URL,
    FAILBACK,
    FAILOVER,
    PRIMARY_URL,
    active,
    alert_events,
    authoritative,
    controller,
    done_steps,
    draas,
    events,
    in_sync_checksums,
    issue_token,
    keys_equal,
    new_lab_name,
    restart_agent,
    served_by,
    validate,
    wait_until,
    write_through_service,
)

from draas.lab.agents import start_agents, wait_eligible
from draas.lab.components import keystone
from draas.lab.disasters import PowerOff, ServiceCrash
from draas.lab.lab import Lab, LabSettings
from draas.lab.supervisor import ProcessSpec

pytestmark = pytest.mark.lab

DR_AGENT = "agent-site-dr"
ACKED: set[str] = set()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(scheme="hybrid"))
        start_agents(lab, preset="fast", replication="semi-sync")
        wait_until("a controller", lambda: controller(lab) is not None, 30)
        yield lab
    finally:
        lab.down()


def stored(lab: Lab, site: str) -> set[str]:
    """The projects the writers of this module made that ``site``'s database holds."""
    prefixes = {name.rsplit("-", 1)[0] for name in ACKED}
    return set().union(*(keystone.project_names(lab, site, p) for p in prefixes))


def run_nodes(lab: Lab, run_prefix: str) -> set[str]:
    """The agents that recorded the steps of the runs whose id starts with ``run_prefix``."""
    return {
        str(e.get("node"))
        for e in events(lab)
        if str(e.get("run", "")).startswith(run_prefix) and e.get("outcome") == "done"
    }


def test_with_the_dr_agent_dead_another_agent_fails_over_and_moves_dns(lab: Lab) -> None:
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 30)
    for attempt in range(3):  # a cold Keystone may answer no write in the first seconds
        ACKED.update(write_through_service(lab, f"wcb{attempt}", 3.0))
        if ACKED:
            break
    assert ACKED  # semi-sync: acknowledged means at dr too
    was = controller(lab)
    lab.sup.crash(DR_AGENT)  # SIGKILL: no release of any lease; not restarted
    took = wait_until(
        "a live agent holds the controller lease",
        lambda: controller(lab) not in (None, "site-dr"),
        20,
    )
    print(f"controller was {was}; {controller(lab)} holds the lease {took:.1f} s after the kill")
    if was == "site-dr":
        assert took > 1.0  # the dead holder's lease had to expire first
    # The hybrid scheme's DNS move works with the DR agent dead (three of the four voters on
    # fe-a are alive: the primary's agent, the witness, fe-b).
    fe_a, fe_b = (lab.topo.host(h).address for h in ("fe-a", "fe-b"))
    crash = ServiceCrash(lab, process="haproxy-fe-a")
    crash.inject()
    try:
        moved = wait_until("DNS on fe-b", lambda: authoritative(lab) == [fe_b], 30)
        print(f"fe-a crashed, the DR agent dead: DNS moved to fe-b after {moved:.1f} s")
        assert done_steps(lab, "frontend-dns-fe-b-") == ["move-dns"]
        wait_until("the client served through fe-b", lambda: served_by(lab) == "primary", 20)
    finally:
        crash.revert()
    wait_until("DNS back on fe-a", lambda: authoritative(lab) == [fe_a], 30)
    time.sleep(3)  # the DR agent's observation expires: a failover without its word
    off = PowerOff(lab, host="primary")
    t0 = time.monotonic()
    off.inject()
    try:
        rto = wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 40)
        print(f"power-off to the client served by dr, the DR agent dead: {rto:.1f} s")
        wait_until("the failover runbook", lambda: "detach" in done_steps(lab, "failover-"), 30)
        assert done_steps(lab, "failover-") == FAILOVER
        assert "site-dr" not in run_nodes(lab, "failover-")
        assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
        assert stored(lab, "dr") >= ACKED  # 0 acknowledged lost
        # Nobody at dr renews its record: the controller does (past the 5 s lease).
        time.sleep(7)
        assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
        assert [e for e in events(lab) if e.get("step") == "custody"]
        after = write_through_service(lab, "wcd", 3.0)
        assert after, "the DR site took no write through the service name"
        ACKED.update(after)
    finally:
        lab.sup.start(ProcessSpec.from_dict(lab.sup.record(DR_AGENT)["spec"]))
        off.revert()
    assert time.monotonic() - t0 < 180


def test_then_the_failback_brings_the_service_home(lab: Lab) -> None:
    lab.sup.wait_ready("mariadb-primary")
    took = wait_until("failback", lambda: "verify" in done_steps(lab, "failback-"), 90)
    print(f"primary powered on to failback done: {took:.1f} s")
    assert done_steps(lab, "failback-") == FAILBACK
    assert active(lab) == {"site": "primary", "epoch": 3, "holder": "site-primary"}
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 20)
    assert stored(lab, "primary") >= ACKED
    p, d = in_sync_checksums(lab)
    assert p == d


def test_switched_over_to_dr_a_dr_power_off_fails_over_to_the_home_site(lab: Lab) -> None:
    wait_eligible(lab, "dr")
    there = draas(lab, "switchover", "--to", "dr", "--yes")
    assert there.returncode == 0, there.stderr
    assert active(lab) == {"site": "dr", "epoch": 4, "holder": "site-dr"}
    wait_eligible(lab, "primary")  # protected in the new direction: home is its standby
    wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
    # The keys' source is the active site: a rotation at dr reaches home, and a token signed
    # with the new key validates there after the failover.
    rotate = ("--keystone-user", "root", "--keystone-group", "root")
    for _ in range(2):
        keystone.manage(lab, "dr", "fernet_rotate", *rotate)
    took = wait_until("home's keys equal dr's", lambda: keys_equal(lab), 15)
    print(f"rotated at dr (active after the switchover): home has the keys {took:.1f} s later")
    token = issue_token(lab, DR_URL)
    acked = write_through_service(lab, "wsd", 3.0)
    assert acked
    off = PowerOff(lab, host="dr")
    off.inject()
    try:
        rto = wait_until("the client is served by primary", lambda: served_by(lab) == "primary", 40)
        print(f"dr powered off after a switchover: the client served by primary in {rto:.1f} s")
        wait_until(
            "the failover runbook", lambda: "detach" in done_steps(lab, "failover-primary-"), 30
        )
        assert done_steps(lab, "failover-primary-") == FAILOVER
        assert active(lab) == {"site": "primary", "epoch": 5, "holder": "site-primary"}
        assert acked <= keystone.project_names(lab, "primary", "wsd")  # 0 acknowledged lost
        assert validate(lab, PRIMARY_URL, token) == 200
        time.sleep(3)  # home is active: no failback is due
        assert not done_steps(lab, "failback-primary-from-e5")
    finally:
        off.revert()
    lab.sup.wait_ready("mariadb-dr")
    took = wait_until("dr rejoins", lambda: "catch-up" in done_steps(lab, "rejoin-dr-from-e5"), 90)
    print(f"dr powered on to rejoined as the standby: {took:.1f} s")
    assert done_steps(lab, "rejoin-dr-from-e5") == ["rejoin", "catch-up"]
    assert active(lab) == {"site": "primary", "epoch": 5, "holder": "site-primary"}
    p, d = in_sync_checksums(lab)
    assert p == d
    wait_eligible(lab, "dr", timeout_s=60)  # fully protected again


def test_a_frontend_ten_minutes_fast_raises_an_alert_and_the_failover_keeps_its_time(
    lab: Lab,
) -> None:
    """A frontend's clock off (its agent routes and votes): an alert names it, nothing moves
    on its account, and a primary power-off is still served by dr in the usual time (its vote
    judged on receipt)."""
    restart_agent(lab, "fe-a", fast=True)
    took = wait_until(
        "the clock-skew alert names fe-a",
        lambda: any("fe-a +6" in str(e.get("detail")) for e in alert_events(lab, "clock-skew")),
        40,
    )
    print(f"fe-a ten minutes fast: the clock-skew alert {took:.1f} s after its restart")
    before = active(lab)
    assert before is not None and before["site"] == "primary"
    time.sleep(6)  # no false failover on its account
    assert active(lab) == before
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 20)
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        rto = wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 40)
        print(f"fe-a ten minutes fast: primary powered off, the client served by dr in {rto:.1f} s")
        assert rto < 3 * 0.5 + 2.0 + 15  # the bound of the DNS scheme's power-off test
        assert (active(lab) or {}).get("site") == "dr"
    finally:
        off.revert()
    restart_agent(lab, "fe-a", fast=False)
    lab.sup.wait_ready("mariadb-primary")
    wait_until("failback", lambda: (active(lab) or {}).get("site") == "primary", 120)
    wait_until(
        "the clock-skew alert cleared", lambda: bool(alert_events(lab, "clock-skew", "cleared")), 60
    )
