"""The lease rules, table by table: one pure function, a view in, an action out, no I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from draas.coordination import ActiveRecord
from draas.failover.lease import (
    Held,
    LeaseState,
    LeaseTimings,
    LeaseView,
    StoreView,
    decide_lease,
    must_fence,
    wants_planned_move,
    wants_quorum,
)

NOW = 1000.0
NOTHING = Held()
T = LeaseTimings(ttl_s=5.0, renew_s=1.0, margin_s=1.0)
MINE = ActiveRecord("primary", 3, "site-a", "lease-3")
THEIRS = ActiveRecord("dr", 4, "site-b", "lease-4")


def view(
    held: Held = NOTHING,
    store: StoreView | None = None,
    *,
    site: str = "primary",
    node: str = "site-a",
    **kw: Any,
) -> LeaseView:
    return replace(
        LeaseView(now=NOW, node=node, site=site, home="primary", held=held, timings=T, store=store),
        **kw,
    )


HOLDING = Held(MINE, NOW - 0.5)
STORE_MINE = StoreView(MINE, 3)


def kind(v: LeaseView) -> str:
    return decide_lease(v).kind


# -- fencing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("since_renewal", "store", "expected"),
    [
        (3.9, None, "renew"),  # the store unread: try the renewal alone, fence not yet
        (4.0, None, "fence"),  # ttl - margin without a renewal: fence, store or no store
        (4.0, STORE_MINE, "fence"),  # even if the store now answers: the time has run out
        (0.5, StoreView(THEIRS, 4), "fence"),  # the record moved
        (0.5, StoreView(None, 3, MINE), "fence"),  # the record is gone
        (0.5, StoreView(ActiveRecord("primary", 4, "site-x"), 4), "fence"),  # another holder
    ],
)
def test_a_holder_fences_when_time_runs_out_or_the_record_is_not_its_own(
    since_renewal: float, store: StoreView | None, expected: str
) -> None:
    assert kind(view(Held(MINE, NOW - since_renewal), store)) == expected


def test_fencing_says_why() -> None:
    a = decide_lease(view(Held(MINE, NOW - 4.2)))
    assert a.kind == "fence" and a.reason == "could not renew the lease for 4.2 s"
    moved = decide_lease(view(HOLDING, StoreView(THEIRS, 4)))
    assert moved.reason == "the active record moved to site-b (epoch 4)"


def test_without_a_store_reading_only_a_due_renewal_is_tried() -> None:
    assert kind(view(Held(MINE, NOW - 0.5))) == "none"  # not due
    assert decide_lease(view(Held(MINE, NOW - 2.0))).record == MINE  # due: the held record
    assert kind(view(Held(), db_role="read-only")) == "none"  # nothing held: nothing to do


def test_a_fenced_agent_never_fences_again_by_time() -> None:
    fenced = Held(None, NOW - 60, fenced=True)
    assert kind(view(fenced)) == "none"
    assert kind(view(fenced, StoreView(THEIRS, 4))) == "none"


def test_must_fence_leaves_the_margin_before_the_lease_expires() -> None:
    assert not must_fence(NOW, NOW - 3.9, 5.0, 1.0)
    assert must_fence(NOW, NOW - 4.0, 5.0, 1.0)


# -- taking ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("site", "expected"),
    [("primary", "take"), ("dr", "none")],
)
def test_only_the_home_site_takes_a_record_nobody_ever_held(site: str, expected: str) -> None:
    assert kind(view(store=StoreView(None, 0), site=site)) == expected


TAKE_BACK = StoreView(None, 3, MINE)


@pytest.mark.parametrize(
    ("store", "db_role", "quorum", "expected"),
    [
        (TAKE_BACK, "primary", "none", "take-back"),  # a blip: it still takes writes
        (TAKE_BACK, "read-only", "none", "take-back"),  # fenced in the blip: reopened
        (TAKE_BACK, "replica", "none", "none"),  # a replica is brought home by a failback
        (TAKE_BACK, None, "none", "none"),  # its database unknown
        (TAKE_BACK, "unknown", "none", "none"),
        (TAKE_BACK, "primary", "failover", "none"),  # the quorum sees it down: failover
        (TAKE_BACK, "primary", "await-release", "none"),
        (TAKE_BACK, "primary", None, "none"),  # the quorum not known
        (TAKE_BACK, "primary", "wait", "take-back"),  # waiting is no verdict on this site
        (StoreView(None, 4, MINE), "primary", "none", "none"),  # the epoch moved on
        (StoreView(None, 4, THEIRS), "primary", "none", "none"),  # someone else held it last
        (StoreView(None, 3, ActiveRecord("dr", 3, "site-a")), "primary", "none", "none"),
    ],
)
def test_take_back_only_what_nobody_took_since_with_writes_still_here(
    store: StoreView, db_role: str | None, quorum: str | None, expected: str
) -> None:
    fenced = Held(None, NOW - 10, fenced=True)
    assert kind(view(fenced, store, db_role=db_role, quorum=quorum)) == expected


def test_take_back_names_the_record_it_takes_back_from() -> None:
    a = decide_lease(view(Held(), TAKE_BACK, db_role="primary", quorum="none"))
    assert a.kind == "take-back" and a.record == MINE and "still took writes" in a.reason


# -- holding ---------------------------------------------------------------------------------
def test_the_holding_site_steps_down_on_the_quorums_word_only_whichever_site_it_is() -> None:
    assert kind(view(HOLDING, STORE_MINE, quorum="await-release")) == "step-down"
    assert kind(view(HOLDING, STORE_MINE, quorum="wait")) != "step-down"
    dr_holds = ActiveRecord("dr", 3, "site-b")
    dr_view = view(Held(dr_holds, NOW - 0.5), StoreView(dr_holds, 3), site="dr", node="site-b")
    assert kind(dr_view) != "step-down"
    assert kind(replace(dr_view, quorum="await-release")) == "step-down"  # roles are symmetric


@pytest.mark.parametrize(
    "held",
    [
        Held(),  # restarted while holding
        Held(ActiveRecord("primary", 2, "site-a"), NOW - 0.5),  # handed a new epoch
        Held(None, NOW - 30, fenced=True),  # fenced in a blip, the record survived it
    ],
)
def test_a_record_the_store_gives_this_agent_is_adopted(held: Held) -> None:
    a = decide_lease(view(held, STORE_MINE, quorum="none"))
    assert a.kind == "adopt" and a.record == MINE


@pytest.mark.parametrize(
    ("since_renewal", "expected"),
    [(0.5, "none"), (1.0, "renew"), (3.0, "renew")],
)
def test_renew_when_due(since_renewal: float, expected: str) -> None:
    assert kind(view(Held(MINE, NOW - since_renewal), STORE_MINE, quorum="none")) == expected


@pytest.mark.parametrize(
    ("db_role", "planned", "expected"),
    [
        ("read-only", False, "reopen"),  # closed behind our back, or restarted
        ("read-only", True, "none"),  # a switchover drains it on purpose
        ("read-only", None, "none"),  # not known whether one does
        ("primary", False, "none"),
        ("replica", False, "none"),  # a switchover's promote step opens it
    ],
)
def test_reopen_a_read_only_database_only_outside_a_planned_move(
    db_role: str, planned: bool | None, expected: str
) -> None:
    v = view(HOLDING, STORE_MINE, quorum="none", db_role=db_role, planned_move=planned)
    assert kind(v) == expected


def test_a_renewal_due_within_half_a_tick_is_done_on_this_one() -> None:
    every_tick = LeaseTimings(ttl_s=5.0, renew_s=0.5, margin_s=1.0, tick_s=0.5)
    v = view(Held(MINE, NOW - 0.3), STORE_MINE, quorum="none", timings=every_tick)
    assert kind(v) == "renew"  # the tick came a little early: renew now, not a tick late
    assert kind(replace(v, held=Held(MINE, NOW - 0.2))) == "none"


def test_renewal_comes_before_a_reopen() -> None:
    due = view(Held(MINE, NOW - 1.5), STORE_MINE, quorum="none", db_role="read-only")
    assert kind(replace(due, planned_move=False)) == "renew"


def test_a_standby_leaves_the_record_alone() -> None:
    v = view(Held(), StoreView(MINE, 3), site="dr", node="site-b")
    assert kind(v) == "none"


# -- what to read ----------------------------------------------------------------------------
def test_the_store_reads_asked_for_are_only_those_the_rules_use() -> None:
    assert wants_quorum("site-a", StoreView(None, 3))
    assert wants_quorum("site-a", STORE_MINE)
    assert not wants_quorum("site-b", STORE_MINE)
    assert wants_planned_move(view(HOLDING, STORE_MINE, db_role="read-only"))
    assert not wants_planned_move(view(HOLDING, STORE_MINE, db_role="primary"))
    assert not wants_planned_move(view(Held(), STORE_MINE, db_role="read-only"))


# -- the state -------------------------------------------------------------------------------
def test_the_state_keeps_what_is_held_and_ignores_a_late_renewal() -> None:
    st = LeaseState()
    st.hold(MINE, NOW)
    assert st.renewed(replace(MINE, lease="other-handle"), NOW + 1)  # same grant
    assert st.snapshot().last_renewal == NOW + 1
    st.fenced()
    assert not st.renewed(MINE, NOW + 2)  # fenced meanwhile: the renewal changes nothing
    assert st.snapshot() == Held(None, NOW + 1, fenced=True)
    st.hold(THEIRS, NOW + 3)
    assert not st.renewed(MINE, NOW + 4)
