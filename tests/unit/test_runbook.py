"""Runbooks: steps recorded in order, resumed after a crash without redoing finished steps,
and refused for a stale epoch (the fencing token)."""

from __future__ import annotations

import pytest

from draas.clock import FakeClock
from draas.coordination import Event
from draas.coordination.memory import MemoryStore
from draas.errors import StaleEpoch
from draas.failover.runbook import (
    Runbook,
    RunbookInterrupted,
    RunbookRunner,
    RunContext,
    Step,
    next_step,
    planned_move_under_way,
    state_of,
)
from draas.testkit import event


class Killed(BaseException):
    """Stands for SIGKILL: the agent stops in the middle of a step, recording nothing."""


def book(calls: list[str], crash_at: str | None = None) -> Runbook:
    def step(name: str) -> Step:
        def run(ctx: RunContext) -> None:
            calls.append(name)
            if name == crash_at and calls.count(name) == 1:
                raise Killed

        return Step(name, run)

    return Runbook(
        "failover",
        [step(n) for n in ("confirm", "take-lease", "fence", "promote", "switch", "verify")],
    )


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore(FakeClock())
    s.take_active("primary", "agent-primary", 0, 30)
    return s


def test_steps_run_in_order_and_are_recorded(store: MemoryStore) -> None:
    calls: list[str] = []
    st = RunbookRunner(store, "witness").run(book(calls), "r1", RunContext(epoch=1))
    assert calls == book([]).step_names()
    assert st.done == calls and st.failed is None
    outcomes = [(e.step, e.outcome) for e in store.events()]
    assert outcomes[:2] == [("confirm", "started"), ("confirm", "done")]
    assert all(e.node == "witness" and e.epoch == 1 for e in store.events())


@pytest.mark.parametrize("crash_at", ["confirm", "fence", "promote", "verify"])
def test_an_agent_killed_mid_step_resumes_without_redoing_finished_steps(
    store: MemoryStore,
    crash_at: str,
) -> None:
    calls: list[str] = []
    b = book(calls, crash_at=crash_at)
    with pytest.raises(Killed):
        RunbookRunner(store, "agent-1").run(b, "r1", RunContext(epoch=1))
    # A new agent process, same store: it resumes.
    st = RunbookRunner(store, "agent-2").run(b, "r1", RunContext(epoch=1))
    assert st.done == b.step_names()
    for name in b.step_names():
        expected = 2 if name == crash_at else 1  # only the interrupted step runs again
        assert calls.count(name) == expected, (name, calls)


def test_a_stale_epoch_is_refused_before_acting(store: MemoryStore) -> None:
    calls: list[str] = []
    current = store.active()
    assert current is not None
    store.hand_over(current, "dr", "agent-dr", 30)  # someone else moved the record: epoch 2
    with pytest.raises(StaleEpoch, match="acting for epoch 1 refused"):
        RunbookRunner(store, "agent-1").run(book(calls), "r1", RunContext(epoch=1))
    assert calls == []  # nothing was done for the stale epoch
    assert state_of("r1", store.events()).failed == "confirm"


def test_next_step_is_pure_over_the_event_log() -> None:
    b = book([])
    ev = [
        event("r", "confirm", "done"),
        event("other", "take-lease", "done"),
        event("r", "take-lease", "started"),
    ]
    nxt = next_step(b, "r", ev)
    assert nxt is not None and nxt.name == "take-lease"
    assert next_step(b, "r", [event("r", s, "done") for s in b.step_names()]) is None


def test_a_stopping_agent_ends_the_run_between_steps_and_another_resumes_it(
    store: MemoryStore,
) -> None:
    calls: list[str] = []
    stop = {"now": False}

    def slow_book() -> Runbook:
        def step(name: str) -> Step:
            def run(ctx: RunContext) -> None:
                calls.append(name)
                if name == "fence":
                    stop["now"] = True  # SIGTERM arrives while this step runs

            return Step(name, run)

        return Runbook("failover", [step(n) for n in ("confirm", "fence", "promote", "verify")])

    runner = RunbookRunner(store, "agent-1", should_stop=lambda: stop["now"])
    with pytest.raises(RunbookInterrupted, match="stopped before step promote"):
        runner.run(slow_book(), "r1", RunContext(epoch=1))
    assert calls == ["confirm", "fence"]  # the current step finished, no new one started
    assert state_of("r1", store.events()).done == ["confirm", "fence"]
    RunbookRunner(store, "agent-2").run(slow_book(), "r1", RunContext(epoch=1))
    assert calls == ["confirm", "fence", "promote", "verify"]


def ev(run: str, step: str, outcome: str, ts: float, book: str = "failback") -> Event:
    return event(run, step, outcome, ts, runbook=book)


def test_a_planned_move_is_under_way_from_its_pause_until_it_ends() -> None:
    run = "failback-primary-from-e2"
    before = [ev(run, "rejoin", "done", 1), ev(run, "catch-up", "done", 2)]
    assert planned_move_under_way(before, now=3) is None  # writes not paused yet
    paused = [*before, ev(run, "pause-and-drain", "started", 3)]
    assert planned_move_under_way(paused, now=4) == run
    assert planned_move_under_way(paused, now=3 + 121) is None  # abandoned long ago
    ended = [*paused, ev(run, "pause-and-drain", "done", 4), ev(run, "verify", "done", 6)]
    assert planned_move_under_way(ended, now=7) is None
    refused = [*paused, ev(run, "pause-and-drain", "failed", 5)]  # it reopened the source
    assert planned_move_under_way(refused, now=6) is None
    abandoned = [*paused, ev(run, "-", "abandoned", 5)]  # another run took the record
    assert planned_move_under_way(abandoned, now=6) is None
    failover = [ev("failover-dr-from-e1", "promote", "started", 3, book="failover")]
    assert planned_move_under_way(failover, now=4) is None
