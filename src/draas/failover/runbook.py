"""Runbooks as data: named steps, each recorded as an event (started, done or failed, with
node, epoch and duration) in the coordination store, so that an agent restarted in the middle
of a runbook resumes at the first step not done, and never repeats a finished one.

``next_step`` is pure: the event log in, the step to run out. ``RunbookRunner`` is the thin
executor around it. Steps must be idempotent (a step that started but has no ``done`` event
runs again after a crash). ``guard_epoch`` is the fencing-token check every step that promotes,
demotes or moves traffic makes first.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from draas.clock import Clock, SystemClock
from draas.coordination import CoordinationStore, Event
from draas.errors import DraasError, StaleEpoch
from draas.failover.runs import PLANNED_MOVE_ENDS, done_steps

log = logging.getLogger(__name__)


class RunbookInterrupted(DraasError):
    """The agent is stopping: the run stopped between two steps and can be resumed."""


@dataclass
class RunContext:
    """What a run carries from step to step: the epoch it acts for (the fencing token, set
    by the step that takes or hands over the record) and what its steps found."""

    epoch: int | None = None
    errant: int | None = None  # transactions a rejoin saved to a recovery file


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[RunContext], None]
    fenced: bool = True  # checks the epoch before acting


@dataclass(frozen=True)
class Runbook:
    name: str
    steps: Sequence[Step]

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


@dataclass
class RunState:
    run_id: str
    done: list[str] = field(default_factory=list)
    failed: str | None = None


def state_of(run_id: str, events: Sequence[Event]) -> RunState:
    st = RunState(run_id, done=done_steps(run_id, events))
    for e in events:
        if e.run == run_id and e.outcome == "failed":
            st.failed = e.step
    return st


def next_step(book: Runbook, run_id: str, events: Sequence[Event]) -> Step | None:
    """The first step of ``book`` that this run has not finished (None: the run is complete)."""
    done = set(done_steps(run_id, events))
    return next((s for s in book.steps if s.name not in done), None)


def planned_move_under_way(
    events: Sequence[Event], now: float, within_s: float = 120.0
) -> str | None:
    """The switchover or failback that has paused writes at its source and not finished
    (its last event within ``within_s``): while it runs, the source holds the lease with its
    database read-only on purpose. None when there is none."""
    runs: dict[str, list[Event]] = {}
    for e in events:
        if e.runbook in ("switchover", "failback") and e.run:
            runs.setdefault(e.run, []).append(e)
    for run_id, evs in runs.items():
        paused = any(e.step == "pause-and-drain" for e in evs)
        ended = any(
            e.outcome in ("failed", "abandoned")
            or (e.step == PLANNED_MOVE_ENDS and e.outcome == "done")
            for e in evs
        )
        if paused and not ended and now - max(e.ts for e in evs) <= within_s:
            return run_id
    return None


def guard_epoch(store: CoordinationStore, epoch: int) -> None:
    """Refuse to act for an epoch that is no longer the active one (a fencing token check)."""
    current = store.active()
    if current is None or current.epoch != epoch:
        raise StaleEpoch(f"acting for epoch {epoch} refused: the active record is {current}")


def failpoint_pause(step: str) -> float:
    """Fault injection for tests: ``DRAAS_FAILPOINT_PAUSE=promote:30`` makes a runner wait 30 s
    after recording that step as started, so a test can kill the agent in the middle of it.
    ``DRAAS_FAILPOINT_FILE``: the same setting read from that file at each step (a test moves
    it from step to step while every agent runs)."""
    spec = os.environ.get("DRAAS_FAILPOINT_PAUSE", "")
    path = os.environ.get("DRAAS_FAILPOINT_FILE")
    if path:
        try:
            with open(path) as f:
                spec = f.read().strip() or spec
        except OSError:
            pass
    name, _, seconds = spec.partition(":")
    try:
        return float(seconds) if name == step else 0.0
    except ValueError:
        return 0.0


class RunbookRunner:
    """``should_stop``: asked before each step; when it says so (the agent is stopping) the
    run ends there, resumable, with ``RunbookInterrupted``."""

    def __init__(
        self,
        store: CoordinationStore,
        node: str,
        clock: Clock | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.clock = clock or SystemClock()
        self.should_stop = should_stop

    def _event(
        self,
        run_id: str,
        book: Runbook,
        step: str,
        outcome: str,
        epoch: int | None,
        error: str | None = None,
        duration_s: float | None = None,
    ) -> Event:
        event = Event(
            ts=self.clock.now(),
            node=self.node,
            runbook=book.name,
            run=run_id,
            step=step,
            outcome=outcome,
            epoch=epoch,
            error=error,
            duration_s=duration_s,
        )
        self.store.append_event(event)
        log.info(
            "%s %s: %s %s (epoch %s)%s%s",
            book.name,
            run_id,
            step,
            outcome,
            epoch,
            "" if duration_s is None else f" in {duration_s:g} s",
            "" if error is None else f": {error}",
        )
        return event

    def run(self, book: Runbook, run_id: str, ctx: RunContext) -> RunState:
        """Run (or resume) ``book`` to its end; a failing step is recorded and re-raised."""
        # Resuming: the epoch the run acts for now is the one its last done step recorded
        # (a hand-over moved it past the epoch the run started from).
        # The event log is read once (it grows with every run; reading it before each step
        # cost a tenth of a second per step late in a long experiment): from then on this run's
        # own events are the only ones that change which step is next (the gate and the
        # epoch keep any other runner out).
        mine = [e for e in self.store.events() if e.run == run_id]
        epochs = [e.epoch for e in mine if e.outcome == "done" and e.epoch]
        if epochs and (ctx.epoch is None or epochs[-1] > ctx.epoch):
            ctx.epoch = epochs[-1]
        while (step := next_step(book, run_id, mine)) is not None:
            if self.should_stop is not None and self.should_stop():
                raise RunbookInterrupted(
                    f"{run_id}: stopped before step {step.name}; the run "
                    "resumes there when an agent runs it again"
                )
            epoch = ctx.epoch
            self._event(run_id, book, step.name, "started", epoch)
            if pause := failpoint_pause(step.name):
                log.warning("failpoint: pausing %g s in step %s", pause, step.name)
                time.sleep(pause)
            t0 = time.monotonic()
            try:
                if step.fenced and epoch is not None:
                    guard_epoch(self.store, epoch)
                step.run(ctx)
            except Exception as exc:
                self._event(
                    run_id,
                    book,
                    step.name,
                    "failed",
                    epoch,
                    error=str(exc),
                    duration_s=round(time.monotonic() - t0, 4),
                )
                raise
            mine.append(
                self._event(
                    run_id,
                    book,
                    step.name,
                    "done",
                    ctx.epoch,
                    duration_s=round(time.monotonic() - t0, 4),
                )
            )
        return state_of(run_id, self.store.events())
