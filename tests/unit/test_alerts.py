"""The controller's alerts: which conditions hold on a view, and the raise/clear transitions
(held for a while first, each once), then the controller recording them as events."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from test_agent_tasks import publish_views
from test_convergence import kit  # noqa: F401  (the fixture)
from test_policy import NOW, PRIMARY, view

from draas.agent.controller import REPAIR_GRACE_S, Controller
from draas.agent.dbwatch import report_of
from draas.clock import FakeClock
from draas.coordination import DatabaseReport, Observation, Position
from draas.coordination.memory import MemoryStore
from draas.failover.alerts import AlertBook, conditions
from draas.failover.policy import Decision, decide
from draas.testkit import observation

FRONTENDS = ["fe-a", "fe-b"]


def fe_seen(a: str, b: str) -> dict[str, Observation]:
    return {
        n: observation(
            n, NOW, primary=("up", 0.0), dr=("up", 0.0), **{"fe-a": (a, 0.0)}, **{"fe-b": (b, 0.0)}
        )
        for n in ("dr-agent", "witness", "agent-primary")
    }


def holding(v: Any, decision: Decision | None = None, **kw: Any) -> dict[str, str]:
    args: dict[str, Any] = {"frontends": FRONTENDS, "dns_at": "fe-a", "skew": {}, "node": "witness"}
    return conditions(v, decision or decide(v), **(args | kw))


def test_a_healthy_view_raises_nothing() -> None:
    assert holding(view(fe_seen("up", "up"))) == {}


def test_frontends_down_and_no_working_path() -> None:
    one = holding(view(fe_seen("down", "up")))
    assert set(one) == {"frontend-down"} and "fe-a seen down by" in one["frontend-down"]
    both = holding(view(fe_seen("down", "down")))
    assert set(both) == {"frontend-down", "all-frontends-down", "no-working-path"}
    assert "users are not served" in both["no-working-path"]
    # The name points straight at the active site: a path exists.
    direct = holding(view(fe_seen("down", "down")), dns_at="primary")
    assert set(direct) == {"frontend-down", "all-frontends-down"}


def test_a_free_record_a_blocked_failover_and_an_unprotected_service() -> None:
    v = view(fe_seen("up", "up"), active=None)
    assert "no-holder" in holding(v) and "last epoch 3" in holding(v)["no-holder"]
    down = {
        n: observation(n, NOW, primary=("down", NOW - 60), dr=("up", 0.0))
        for n in ("dr-agent", "witness", "fe-b")
    }
    unfit = DatabaseReport("replica", False, unfit="disk full at site dr")
    got = holding(view(down, active=PRIMARY, standby_replica=unfit))
    assert "disk full at site dr" in got["failover-blocked"]
    assert got["unprotected"].startswith("primary runs without a standby")
    assert "disk full" in got["unprotected"]


def test_clock_skew_names_the_node_and_its_offset() -> None:
    got = holding(view(fe_seen("up", "up")), skew={"site-dr": 600.2, "": -3.0})
    assert got["clock-skew"].startswith("clock off the others: witness -3 s, site-dr +600 s")


def test_an_alert_is_raised_once_held_and_cleared_once_gone() -> None:
    book = AlertBook(hold_s=5.0)
    assert book.update(0.0, {"no-holder": "why"}) == []
    assert book.update(3.0, {"no-holder": "why"}) == []  # not held long enough yet
    assert book.update(5.0, {"no-holder": "why"}) == [("no-holder", "raised", "why")]
    assert book.update(6.0, {"no-holder": "why"}) == []  # raised once
    assert book.update(7.0, {}) == []
    assert book.update(9.0, {"no-holder": "why"}) == []  # back before the hold: no clear
    assert book.update(10.0, {}) == []
    assert book.update(15.0, {}) == [("no-holder", "cleared", "why")]
    assert book.raised == {}


def test_the_controller_records_an_alert_with_its_cause_and_clears_it(
    kit: tuple[Controller, Any, FakeClock],  # noqa: F811
    tmp_path: Path,
) -> None:
    c, d, clock = kit
    store = d.store
    assert isinstance(store, MemoryStore)
    unfit = dataclasses.replace(report_of(d.dr.status()), unfit="disk full at site dr")
    store.publish_position(Position("primary", 1, d.primary.position(), clock.now()))

    def round_(report: DatabaseReport | None) -> None:
        publish_views(
            store,
            clock.now(),
            {"site-b": report} if report else {},
            primary=("up", 0.0),
            dr=("up", 0.0),
        )
        c.duty()
        clock.advance(REPAIR_GRACE_S)

    for _ in range(2):
        round_(unfit)
    raised = [e for e in store.events() if e.runbook == "alert"]
    assert [(e.step, e.outcome) for e in raised] == [("unprotected", "raised")]
    assert "disk full at site dr" in (raised[0].detail or "")
    for _ in range(2):
        round_(report_of(d.dr.status()))  # the disk has room again
    got = [(e.step, e.outcome) for e in store.events() if e.runbook == "alert"]
    assert got == [("unprotected", "raised"), ("unprotected", "cleared")]
