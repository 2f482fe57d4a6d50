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
from typing import Any

from draas.clock import Clock, SystemClock
from draas.coordination import CoordinationStore
from draas.errors import DraasError, StaleEpoch

log = logging.getLogger(__name__)


class RunbookInterrupted(DraasError):
    """The agent is stopping: the run stopped between two steps and can be resumed."""


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[dict[str, Any]], None]
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


def state_of(run_id: str, events: Sequence[dict[str, Any]]) -> RunState:
    st = RunState(run_id)
    for e in events:
        if e.get("run") != run_id:
            continue
        if e.get("outcome") == "done" and e["step"] not in st.done:
            st.done.append(e["step"])
        elif e.get("outcome") == "failed":
            st.failed = e["step"]
    return st


def next_step(book: Runbook, run_id: str, events: Sequence[dict[str, Any]]) -> Step | None:
    """The first step of ``book`` that this run has not finished (None: the run is complete)."""
    done = set(state_of(run_id, events).done)
    return next((s for s in book.steps if s.name not in done), None)


def planned_move_under_way(
    events: Sequence[dict[str, Any]], now: float, within_s: float = 120.0
) -> str | None:
    """The switchover or failback that has paused writes at its source and not finished
    (its last event within ``within_s``): while it runs, the source holds the lease with its
    database read-only on purpose. None when there is none."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("runbook") in ("switchover", "failback") and e.get("run"):
            runs.setdefault(str(e["run"]), []).append(e)
    for run_id, evs in runs.items():
        paused = any(e.get("step") == "pause-and-drain" for e in evs)
        ended = any(
            e.get("outcome") == "failed"
            or (e.get("step") == "verify" and e.get("outcome") == "done")
            for e in evs
        )
        if paused and not ended and now - max(float(e.get("ts", 0)) for e in evs) <= within_s:
            return run_id
    return None


def guard_epoch(store: CoordinationStore, epoch: int) -> None:
    """Refuse to act for an epoch that is no longer the active one (a fencing token check)."""
    current = store.active()
    if current is None or current.epoch != epoch:
        raise StaleEpoch(f"acting for epoch {epoch} refused: the active record is {current}")


def failpoint_pause(step: str) -> float:
    """Fault injection for tests: ``DRAAS_FAILPOINT_PAUSE=promote:30`` makes a runner wait 30 s
    after recording that step as started, so a test can kill the agent in the middle of it."""
    spec = os.environ.get("DRAAS_FAILPOINT_PAUSE", "")
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
        self, run_id: str, book: Runbook, step: str, outcome: str, epoch: int | None, **fields: Any
    ) -> None:
        event = {
            "ts": self.clock.now(),
            "node": self.node,
            "runbook": book.name,
            "run": run_id,
            "step": step,
            "outcome": outcome,
            "epoch": epoch,
            **fields,
        }
        self.store.append_event(event)
        log.info(
            "%s %s: %s %s (epoch %s)%s",
            book.name,
            run_id,
            step,
            outcome,
            epoch,
            "".join(f" {k}={v}" for k, v in fields.items()),
        )

    def run(self, book: Runbook, run_id: str, ctx: dict[str, Any]) -> RunState:
        """Run (or resume) ``book`` to its end; a failing step is recorded and re-raised."""
        if ctx.get("epoch") is None:  # resuming: the epoch the run was acting for
            mine = [e for e in self.store.events() if e.get("run") == run_id]
            epochs = [e["epoch"] for e in mine if e.get("outcome") == "done" and e.get("epoch")]
            if epochs:
                ctx["epoch"] = epochs[-1]
        while (step := next_step(book, run_id, self.store.events())) is not None:
            if self.should_stop is not None and self.should_stop():
                raise RunbookInterrupted(
                    f"{run_id}: stopped before step {step.name}; the run "
                    "resumes there when an agent runs it again"
                )
            epoch = ctx.get("epoch")
            self._event(run_id, book, step.name, "started", epoch)
            if pause := failpoint_pause(step.name):
                log.warning("failpoint: pausing %g s in step %s", pause, step.name)
                time.sleep(pause)
            t0 = time.monotonic()
            try:
                if step.fenced and epoch is not None:
                    guard_epoch(self.store, int(epoch))
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
            self._event(
                run_id,
                book,
                step.name,
                "done",
                ctx.get("epoch"),
                duration_s=round(time.monotonic() - t0, 4),
            )
        return state_of(run_id, self.store.events())
