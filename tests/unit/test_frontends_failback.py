"""Hybrid DNS between frontends, the failback trigger, finding an unfinished run to resume,
and the frontends as a traffic switch that waits for their agents to follow the lease."""

from __future__ import annotations

import pytest

from draas.clock import FakeClock
from draas.coordination import ActiveRecord, Event, Observation
from draas.coordination.memory import MemoryStore
from draas.errors import TrafficError
from draas.failover.frontends import pick_frontend, voters_for
from draas.failover.policy import View, failback_due
from draas.failover.runs import RunId, unfinished
from draas.testkit import event, observation

NOW = 1000.0
NODES = ["site-primary", "site-dr", "witness", "fe-a", "fe-b"]
FES = ["fe-a", "fe-b"]
DR_ACTIVE = ActiveRecord("dr", 2, "site-dr")


def obs(**targets: tuple[str, float]) -> Observation:
    return observation(**targets)


def view(observations: dict[str, Observation], active: ActiveRecord | None = None) -> View:
    return View(
        now=NOW,
        voters=["site-dr", "witness", "fe-a", "fe-b"],
        observations=observations,
        active=active,
        last_epoch=active.epoch if active else 1,
        site="primary",
        standby="dr",
        confirm_window_s=2.0,
    )


def everyone(**targets: tuple[str, float]) -> dict[str, Observation]:
    return {n: obs(**targets) for n in NODES}


def test_a_frontend_never_votes_on_itself() -> None:
    assert voters_for("fe-a", NODES) == ["site-primary", "site-dr", "witness", "fe-b"]


def test_dns_stays_on_a_healthy_preferred_frontend() -> None:
    v = view(everyone(**{"fe-a": ("up", 0), "fe-b": ("up", 0)}))
    assert pick_frontend(v, NODES, FES, "fe-a", "fe-a").action == "none"


def test_a_dead_frontend_confirmed_by_the_others_moves_dns() -> None:
    v = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("up", 0)}))
    d = pick_frontend(v, NODES, FES, "fe-a", "fe-a")
    assert (d.action, d.target) == ("move-dns", "fe-b")


def test_one_observer_alone_does_not_move_dns() -> None:
    o = everyone(**{"fe-a": ("up", 0), "fe-b": ("up", 0)})
    o["witness"] = obs(**{"fe-a": ("down", NOW - 30), "fe-b": ("up", 0)})
    assert pick_frontend(view(o), NODES, FES, "fe-a", "fe-a").action == "none"


def test_down_for_less_than_the_window_does_not_move_dns() -> None:
    v = view(everyone(**{"fe-a": ("down", NOW - 1), "fe-b": ("up", 0)}))
    assert pick_frontend(v, NODES, FES, "fe-a", "fe-a").action == "none"


def test_no_move_when_the_other_frontend_is_not_confirmed_up() -> None:
    v = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("down", NOW - 3)}))
    d = pick_frontend(v, NODES, FES, "fe-a", "fe-a")
    assert d.action == "none" and "no other frontend" in d.reason


def test_dns_goes_back_to_the_preferred_frontend_once_it_is_up_for_the_window() -> None:
    early = view(everyone(**{"fe-a": ("up", NOW - 1), "fe-b": ("up", 0)}))
    assert pick_frontend(early, NODES, FES, "fe-a", "fe-b").action == "none"
    later = view(everyone(**{"fe-a": ("up", NOW - 3), "fe-b": ("up", 0)}))
    d = pick_frontend(later, NODES, FES, "fe-a", "fe-b")
    assert (d.action, d.target) == ("move-dns", "fe-a")


def test_a_name_pointing_elsewhere_is_claimed_for_a_live_frontend() -> None:
    v = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("up", 0)}))
    d = pick_frontend(v, NODES, FES, "fe-a", None)
    assert (d.action, d.target) == ("move-dns", "fe-b")


def test_every_frontend_down_points_the_name_at_the_active_site_and_back() -> None:
    """Hybrid, ``frontend.direct_when_all_down``: with every frontend confirmed down the name
    points straight at the active site; it follows that site, and goes back to the first
    frontend confirmed up again. Without the option (or one frontend alone) nothing moves."""
    sites = ["primary", "dr"]
    both_down = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("down", NOW - 3)}))
    d = pick_frontend(both_down, NODES, FES, "fe-a", "fe-a", "primary", sites)
    assert (d.action, d.target) == ("move-dns", "primary") and "every frontend" in d.reason
    assert pick_frontend(both_down, NODES, FES, "fe-a", "fe-a", None, sites).action == "none"
    b_early = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("down", NOW - 1)}))
    assert pick_frontend(b_early, NODES, FES, "fe-a", "fe-a", "primary", sites).action == "none"
    # Pointing at the primary: nothing while no frontend is up; the active site moved: follow.
    assert pick_frontend(both_down, NODES, FES, "fe-a", "primary", "primary", sites).action == (
        "none"
    )
    d = pick_frontend(both_down, NODES, FES, "fe-a", "primary", "dr", sites)
    assert (d.action, d.target) == ("move-dns", "dr")
    b_back = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("up", NOW - 3)}))
    d = pick_frontend(b_back, NODES, FES, "fe-a", "dr", "dr", sites)
    assert (d.action, d.target) == ("move-dns", "fe-b") and "up again" in d.reason
    b_blip = view(everyone(**{"fe-a": ("down", NOW - 3), "fe-b": ("up", NOW - 1)}))
    assert pick_frontend(b_blip, NODES, FES, "fe-a", "dr", "dr", sites).action == "none"


def test_failback_waits_for_the_quorum_and_the_primary_agent() -> None:
    up = {n: obs(primary=("up", NOW - 3)) for n in ["site-dr", "witness", "fe-a", "fe-b"]}
    assert (
        failback_due(view(up, DR_ACTIVE), "primary", ["site-primary"], 2.0).action == "none"
    )  # no agent
    up["site-primary"] = obs(primary=("up", NOW - 3))
    d = failback_due(view(up, DR_ACTIVE), "primary", ["site-primary"], 2.0)
    assert (d.action, d.target, d.expected_epoch) == ("failback", "primary", 2)
    short = {n: obs(primary=("up", NOW - 1)) for n in NODES}
    assert failback_due(view(short, DR_ACTIVE), "primary", ["site-primary"], 2.0).action == "none"
    primary_active = ActiveRecord("primary", 3, "site-primary")
    assert failback_due(view(up, primary_active), "primary", ["site-primary"], 2.0).action == "none"


def test_a_flapping_primary_does_not_get_the_service_back_before_the_hold() -> None:
    """Up for 3 s (more than the 2 s window) after each blip: not enough for a 10 s hold."""
    blipped = {n: obs(primary=("up", NOW - 3)) for n in NODES}
    d = failback_due(view(blipped, DR_ACTIVE), "primary", ["site-primary"], 10.0)
    assert d.action == "none" and "up for 10 s by 0" in d.reason
    steady = {n: obs(primary=("up", NOW - 11)) for n in NODES}
    assert (
        failback_due(view(steady, DR_ACTIVE), "primary", ["site-primary"], 10.0).action
        == "failback"
    )


def ev(run: str, step: str, outcome: str) -> Event:
    return event(run, step, outcome)


def test_unfinished_finds_the_run_to_resume() -> None:
    run = RunId("failover", "dr", 1)
    fo = str(run)
    assert fo == "failover-dr-from-e1" and RunId.parse(fo) == run
    started = [
        ev(fo, "take-lease", "started"),
        ev(fo, "take-lease", "done"),
        ev(fo, "promote", "started"),
    ]
    assert unfinished(started) == run
    assert unfinished([*started, ev(fo, "verify", "done")]) == run  # detach is the last step
    assert unfinished([*started, ev(fo, "detach", "done")]) is None
    # a run that failed before doing anything is decided again, not resumed
    assert unfinished([ev(fo, "take-lease", "started"), ev(fo, "take-lease", "failed")]) is None
    assert unfinished([*started, ev(fo, "-", "abandoned")]) is None
    # ... unless the store applied the take and timed out before it answered: resumed
    timed_out = [ev(fo, "take-lease", "started"), ev(fo, "take-lease", "failed")]
    assert unfinished(timed_out, ActiveRecord("dr", 2, "site-dr")) == run
    assert unfinished(timed_out, ActiveRecord("dr", 3, "site-dr")) is None  # a later take
    assert unfinished(timed_out, ActiveRecord("primary", 2, "site-a")) is None
    # monitor events and hybrid DNS moves are not runbooks to resume
    assert (
        unfinished(
            [
                *started,
                ev(fo, "detach", "done"),
                ev("replication-dr", "r", "broken"),
                ev("frontend-dns-fe-b-1.0", "move-dns", "started"),
            ]
        )
        is None
    )


def test_frontends_switch_waits_for_every_live_frontend_agent() -> None:
    from draas.traffic.frontend.follower import FollowingFrontends

    store = MemoryStore(FakeClock())
    sw = FollowingFrontends(store, FES, wait_s=0.2)
    sw.retries = 0
    with pytest.raises(TrafficError, match="no frontend agent"):
        sw.point_to("dr")
    store.publish(Observation("fe-a", 0.0, routes_to="primary"), 10)
    store.publish(Observation("fe-b", 0.0, routes_to="dr"), 10)
    with pytest.raises(TrafficError, match="do not route to dr"):
        sw.point_to("dr")
    store.publish(Observation("fe-a", 0.0, routes_to="dr"), 10)
    assert sw.point_to("dr").changed is False
    assert sw.current() == "dr"
    assert sw.check().ok
