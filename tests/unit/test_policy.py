"""The decision core, table-driven on views, with no I/O: quorum, windows, expiry, fencing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from draas.coordination import ActiveRecord, DatabaseReport, Observation, Seen, State
from draas.failover.lease import must_fence
from draas.failover.policy import View, decide, needed_votes
from draas.health.detector import RiseFall, VantagePoint
from draas.testkit import observation

NOW = 1000.0
VOTERS = ["dr-agent", "witness", "fe-b"]
PRIMARY = ActiveRecord("primary", 3, "agent-primary")


def seen(primary: State, since_p: float, dr: State = "up", since_d: float = 0.0) -> Observation:
    return observation(primary=(primary, since_p), dr=(dr, since_d))


def view(obs: dict[str, Observation], active: ActiveRecord | None = PRIMARY, **kw: Any) -> View:
    kw = {"site": "primary", "standby": "dr", "voters": VOTERS, **kw}
    return View(
        now=NOW,
        observations=obs,
        active=active,
        last_epoch=3,
        confirm_window_s=5.0,
        **kw,
    )


def test_one_observer_alone_never_fails_over() -> None:
    d = decide(
        view({"dr-agent": seen("down", NOW - 60), "witness": seen("up", 0), "fe-b": seen("up", 0)})
    )
    assert d.action == "none" and "1 of 2" in d.reason


def test_quorum_over_the_window_fails_over_to_dr_with_the_epoch() -> None:
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 5),
        "fe-b": seen("up", 0),
    }
    d = decide(view(obs, active=None))  # the old holder's lease has ended
    assert d.action == "failover" and d.target == "dr"
    assert d.expected_epoch == 3 and d.replace is None
    assert d.votes["site_down"] == ["dr-agent", "witness"]


def test_fence_before_promote_waits_while_the_old_holder_keeps_its_lease() -> None:
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 5),
        "fe-b": seen("up", 0),
    }
    d = decide(view(obs))
    assert d.action == "await-release" and d.replace == PRIMARY
    assert "waiting until agent-primary releases" in d.reason


def test_the_named_standby_takes_over_without_waiting_for_the_held_lease() -> None:
    """Semi-sync mode: the old primary cannot complete a commit once the standby stops
    acknowledging it, so the decision is a failover that replaces the held record."""
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 5),
        "fe-b": seen("up", 0),
    }
    d = decide(view(obs, preempt=True))
    assert d.action == "failover" and d.replace == PRIMARY and d.target == "dr"
    assert d.expected_epoch == 3 and "without waiting for its lease" in d.reason
    not_named = decide(view(obs, preempt=True, standby_ineligible="dr is not the named standby"))
    assert not_named.action == "wait" and not_named.cause == "not-eligible"
    unconfirmed = {**obs, "witness": seen("down", NOW - 4.9)}
    assert decide(view(unconfirmed, preempt=True)).action == "none"
    dr_holds = ActiveRecord("dr", 3, "agent-dr")  # dr is active and nobody sees it down
    protecting_dr = view(obs, active=dr_holds, preempt=True, site="dr", standby="primary")
    assert decide(protecting_dr).action == "none"


def unreachable(since: float, deep: State = "up") -> Observation:
    """Sees the primary answer no TCP connection since ``since`` (its deep checks: ``deep``)."""
    return Observation(
        "",
        NOW,
        {"primary": Seen(deep, 0.0, unreachable_since=since), "dr": Seen("up", 0.0)},
    )


def test_a_hard_failure_is_confirmed_after_the_reach_window_not_the_long_one() -> None:
    obs = {
        "dr-agent": unreachable(NOW - 0.25),
        "witness": unreachable(NOW - 0.2),
        "fe-b": seen("up", 0),
    }
    d = decide(view(obs, active=None, reach_window_s=0.2))
    assert d.action == "failover" and "unreachable for 0.2 s" in d.reason
    assert d.votes["site_down"] == ["dr-agent", "witness"]
    assert decide(view(obs, active=None, reach_window_s=0.3)).action == "none"  # too soon
    assert decide(view(obs, active=None)).action == "none"  # no reach window: only the long one
    one = {**obs, "witness": seen("up", 0)}  # one unreachable vantage point alone never counts
    assert decide(view(one, active=None, reach_window_s=0.0)).action == "none"


def test_an_unreachable_target_never_counts_as_up() -> None:
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 6),
        "fe-b": observation(primary=("down", NOW - 6), dr=("up", 0)),
    }
    cut = Observation("", NOW, {"primary": Seen("down", NOW - 6), "dr": Seen("up", 0, NOW - 1)})
    d = decide(view({**obs, "dr-agent": cut, "witness": cut}, active=None, reach_window_s=0.0))
    assert d.action == "wait" and d.cause == "no-healthy-target"


def test_down_for_less_than_the_window_does_not_count() -> None:
    d = decide(
        view(
            {
                "dr-agent": seen("down", NOW - 6),
                "witness": seen("down", NOW - 4.9),
                "fe-b": seen("up", 0),
            }
        )
    )
    assert d.action == "none"


def test_an_expired_observer_stops_voting() -> None:
    # Only two observers alive, one says down: not enough, whatever the silent one said.
    d = decide(view({"dr-agent": seen("down", NOW - 60), "fe-b": seen("up", 0)}))
    assert d.action == "none"
    d = decide(view({"dr-agent": seen("down", NOW - 60)}))
    assert d.action == "wait" and "only 1 of 3 vantage points alive" in d.reason


def test_partition_where_the_witness_still_sees_the_primary_causes_no_failover() -> None:
    # The sites cannot see each other; the witness and the primary's clients still can.
    d = decide(
        view({"dr-agent": seen("down", NOW - 60), "fe-b": seen("up", 0), "witness": seen("up", 0)})
    )
    assert d.action == "none"


def test_two_of_three_is_a_quorum_even_against_the_witness() -> None:
    d = decide(
        view(
            {
                "dr-agent": seen("down", NOW - 60),
                "fe-b": seen("down", NOW - 60),
                "witness": seen("up", 0),
            }
        )
    )
    assert d.action == "await-release"


def test_no_failover_to_a_dr_site_nobody_sees_up() -> None:
    d = decide(
        view(
            {
                "dr-agent": seen("down", NOW - 60, "down", NOW - 60),
                "witness": seen("down", NOW - 60, "down", NOW - 60),
                "fe-b": seen("up", 0),
            }
        )
    )
    assert d.action == "wait" and "no healthy target" in d.reason


def test_roles_are_symmetric_the_dr_site_active_fails_over_to_the_home_site() -> None:
    """After a switchover the DR site is active: it is protected like the home site, with
    the home site as its standby (votes from the nodes not at dr)."""
    dr_holds = ActiveRecord("dr", 4, "agent-dr")
    voters = ["primary-agent", "witness", "fe-b"]
    healthy = {v: seen("up", 0) for v in voters}
    protecting_dr: dict[str, Any] = {"site": "dr", "standby": "primary", "voters": voters}
    assert decide(view(healthy, dr_holds, **protecting_dr)).action == "none"
    dr_down = {v: seen("up", 0, "down", NOW - 6) for v in voters}
    d = decide(view(dr_down, dr_holds, preempt=True, **protecting_dr))
    assert (d.action, d.target, d.replace, d.expected_epoch) == ("failover", "primary", dr_holds, 3)
    assert d.reason.startswith("dr down for 5 s by primary-agent, witness, fe-b")


def test_without_a_quorum_store_only_manual() -> None:
    d = decide(view({v: seen("down", 0) for v in VOTERS}, store_ok=False))
    assert d.action == "manual-only"


def test_expired_lease_with_quorum_fails_over_from_no_holder() -> None:
    d = decide(view({v: seen("down", NOW - 60) for v in VOTERS[:2]}, active=None))
    assert d.action == "failover" and d.replace is None and d.expected_epoch == 3


@pytest.mark.parametrize(("voters", "need"), [(1, 2), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_needed_votes_never_below_two(voters: int, need: int) -> None:
    assert needed_votes([f"v{i}" for i in range(voters)]) == need


def test_fencing_before_the_lease_can_expire() -> None:
    assert not must_fence(now=105.9, last_renewal=100.0, lease_ttl_s=10, margin_s=4)
    assert must_fence(now=106.0, last_renewal=100.0, lease_ttl_s=10, margin_s=4)


def test_rise_fall_needs_consecutive_results_and_ignores_one_blip() -> None:
    d = RiseFall(rise=2, fall=3)
    assert not d.feed(True, 1.0) and d.state == "unknown"
    assert d.feed(True, 2.0) and (d.state, d.since) == ("up", 2.0)
    for t in (3.0, 4.0):
        assert not d.feed(False, t)
    assert not d.feed(True, 5.0)  # a blip: the failure streak starts again
    for t in (6.0, 7.0):
        assert not d.feed(False, t)
    assert d.feed(False, 8.0) and (d.state, d.since) == ("down", 8.0)


def test_flapping_target_never_settles_down() -> None:
    d = RiseFall(rise=2, fall=3)
    d.feed(True, 0.0)
    d.feed(True, 0.1)
    for i in range(50):  # down-up-down-up every probe
        d.feed(i % 2 == 0, 1.0 + i)
    assert d.state == "up"


def test_vantage_point_publishes_one_document() -> None:
    vp = VantagePoint("witness", ["primary", "dr"], rise=1, fall=1)
    vp.feed("primary", False, 10.0)
    vp.feed("dr", True, 10.0)
    doc = vp.observation(11.0)
    assert doc == Observation(
        "witness", 11.0, {"primary": Seen("down", 10.0), "dr": Seen("up", 10.0)}
    )
    assert doc.to_dict() == {
        "observer": "witness",
        "at": 11.0,
        "targets": {
            "primary": {"state": "down", "since": 10.0},
            "dr": {"state": "up", "since": 10.0},
        },
    }
    assert Observation.from_dict(doc.to_dict()) == doc
    assert (
        decide(
            View(
                now=20.0,
                voters=["witness", "dr-agent"],
                observations={"witness": doc, "dr-agent": doc},
                active=PRIMARY,
                last_epoch=3,
                site="primary",
                standby="dr",
                confirm_window_s=5.0,
            )
        ).action
        == "await-release"
    )


def test_a_dr_site_not_eligible_is_never_promoted_nor_is_the_primary_asked_to_step_down() -> None:
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 5),
        "fe-b": seen("up", 0),
    }
    why = "dr is not the named synchronous standby: a commit has waited 1.0 s"
    for active in (None, PRIMARY):  # expired lease, or a holder that could step down
        d = decide(dataclasses.replace(view(obs, active=active), standby_ineligible=why))
        assert d.action == "wait" and d.target is None and d.cause == "not-eligible"
        assert why in d.reason and "forced failover" in d.reason
    assert decide(view(obs, active=None)).action == "failover"  # eligible: it goes
    # async mode within the bound: it goes, and says what it gives up
    lagging = dataclasses.replace(view(obs, active=None), standby_gives_up=3)
    d = decide(lagging)
    assert d.action == "failover" and d.gave_up_trx == 3 and "gives up 3 transaction(s)" in d.reason


def test_an_unfit_dr_replica_is_never_promoted_nor_is_the_primary_asked_to_step_down() -> None:
    obs = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 5),
        "fe-b": seen("up", 0),
    }
    full = DatabaseReport(
        "replica", False, unfit="disk full at site dr: replication waits for free space"
    )
    for active in (None, PRIMARY):  # expired lease, or a holder that could step down
        d = decide(view(obs, active=active, standby_replica=full))
        assert d.action == "wait" and d.target is None and d.cause == "unfit-replica"
        assert "replica is not fit to take over: disk full at site dr" in d.reason
    # a replica that only lost its source (the disaster itself) is fit
    lost = DatabaseReport("replica", False, io_running="Connecting")
    assert decide(view(obs, active=None, standby_replica=lost)).action == "failover"


def test_a_vantage_point_finds_a_target_unreachable_after_reach_fall_rounds() -> None:
    vp = VantagePoint("witness", ["primary", "dr"], rise=2, fall=3, reach=["primary"], reach_fall=3)
    for t in (10.0, 10.1):
        assert not vp.feed_reach("primary", False, t)
    assert vp.observation(10.15).targets["primary"].unreachable_since is None
    assert vp.feed_reach("primary", False, 10.2)  # the third round in a row
    doc = vp.observation(10.3)
    assert doc.targets["primary"] == Seen("unknown", 0.0, unreachable_since=10.2)
    assert doc.to_dict()["targets"]["primary"]["unreachable_since"] == 10.2
    assert Observation.from_dict(doc.to_dict()) == doc
    assert vp.feed_reach("primary", True, 10.4)  # one connection accepted: reachable again
    assert vp.observation(10.5).targets["primary"].unreachable_since is None


def test_after_a_move_only_an_unreachable_site_counts_for_a_while() -> None:
    """A site just given the service back (failback, switchover) is often slow for seconds:
    for the hold, gray symptoms do not fail it over; no TCP at all still does. The epoch an
    observer finds at its first look is not a move."""
    from draas.failover.views import Settling

    gray = {
        "dr-agent": seen("down", NOW - 6),
        "witness": seen("down", NOW - 6),
        "fe-b": seen("up", 0),
    }
    settle = Settling(hold_s=10.0)
    first = settle.apply(view(gray, active=None, preempt=True))
    assert decide(settle.apply(view(gray, preempt=True))).action == "failover"  # first look
    moved = dataclasses.replace(view(gray, preempt=True), active=ActiveRecord("primary", 4, "a"))
    held = decide(settle.apply(moved))
    assert held.action == "none" and "only an unreachable site counts" in held.reason
    hard = {**gray, "dr-agent": unreachable(NOW - 1), "witness": unreachable(NOW - 1)}
    moved_hard = dataclasses.replace(moved, observations=hard, reach_window_s=0.2)
    assert decide(settle.apply(moved_hard)).action == "failover"
    later = dataclasses.replace(moved, now=NOW + 10.0)
    assert decide(settle.apply(later)).action == "failover"  # the hold is over
    assert first.gray_after == float("-inf")


def test_a_hard_failure_does_not_wait_for_a_blip_of_the_standbys_checks() -> None:
    """The active site unreachable (no TCP at all): the standby seen up now by the quorum is
    enough, even if its own deep check blipped a second ago; for a gray failure it must have
    been up for the whole window."""
    blip = NOW - 1.0  # the standby's checks recovered a second ago (window: 5 s)
    gone = {v: unreachable(NOW - 0.5) for v in VOTERS}
    hard = {
        v: dataclasses.replace(o, targets={**o.targets, "dr": Seen("up", blip)})
        for v, o in gone.items()
    }
    d = decide(view(hard, active=None, reach_window_s=0.0))
    assert d.action == "failover", d.reason
    gray = {v: seen("down", NOW - 6, "up", blip) for v in VOTERS}
    assert decide(view(gray, active=None)).cause == "no-healthy-target"
