"""What names a runbook run and its steps, in one place: the controller, the operator's
commands, the CLI that follows a run and the tests all derive from here.

A run id names what the run does, so a restarted agent rebuilds it from the event log:
``{kind}-{target}-from-e{epoch}`` (the epoch the run started from). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from draas.coordination import ActiveRecord, Event

Kind = Literal["failover", "switchover", "failback", "rejoin"]
KINDS: tuple[Kind, ...] = ("failover", "switchover", "failback", "rejoin")

# The steps of each runbook, in order (``runbooks.py`` builds them in this order).
# The old primary is fenced after traffic moved: it can no longer complete a commit once the
# record is taken (it lost the lease, or the standby stopped acknowledging it), and it fences
# itself; reaching it (or finding it dead) must not delay the promotion.
FAILOVER_STEPS = ("take-lease", "promote", "switch-traffic", "fence-old", "verify", "detach")
SWITCHOVER_STEPS = (
    "catch-up",
    "pause-and-drain",
    "hand-over",
    "promote",
    "reverse-replication",
    "switch-traffic",
    "verify",
)
FAILBACK_STEPS = ("rejoin", *SWITCHOVER_STEPS)
# A site that was failed over away from and is not home comes back as the standby only (the
# service stays where it is: at home).
REJOIN_STEPS = ("rejoin", "catch-up")
STEPS: dict[Kind, tuple[str, ...]] = {
    "failover": FAILOVER_STEPS,
    "switchover": SWITCHOVER_STEPS,
    "failback": FAILBACK_STEPS,
    "rejoin": REJOIN_STEPS,
}
# The step whose ``done`` ends a planned move: from then on the source no longer drains.
PLANNED_MOVE_ENDS = "verify"

_RUN_ID = re.compile(r"^(failover|failback|switchover|rejoin)-(.+)-from-e(\d+)$")


def last_step(kind: Kind) -> str:
    return STEPS[kind][-1]


@dataclass(frozen=True)
class RunId:
    kind: Kind
    target: str
    epoch: int  # the epoch the run started from

    def __str__(self) -> str:
        return f"{self.kind}-{self.target}-from-e{self.epoch}"

    @classmethod
    def parse(cls, text: str) -> RunId | None:
        m = _RUN_ID.match(text)
        if m is None:
            return None
        kind = next(k for k in KINDS if k == m.group(1))
        return cls(kind, m.group(2), int(m.group(3)))


def done_steps(run: str, events: Sequence[Event]) -> list[str]:
    """The steps of ``run`` done, in the order they were done (each once)."""
    out: list[str] = []
    for e in events:
        if e.run == run and e.outcome == "done" and e.step not in out:
            out.append(e.step)
    return out


def unfinished(events: Sequence[Event], active: ActiveRecord | None = None) -> RunId | None:
    """The latest runbook run that made progress but did not finish (nor was abandoned).

    A failover whose first step reported a failure made progress all the same when the
    record (``active``) is its target's under the epoch it would take: the store applied the
    take and timed out before it answered."""
    ids = [rid for e in events if (rid := RunId.parse(e.run)) is not None]
    if not ids:
        return None
    last = ids[-1]
    mine = [e for e in events if e.run == str(last)]
    if any(e.outcome == "abandoned" for e in mine):
        return None
    done = done_steps(str(last), events)
    if not done and last.kind == "failover" and active is not None:
        took = active.site == last.target and active.epoch == last.epoch + 1
        return last if took else None
    return last if done and last_step(last.kind) not in done else None


def finished(run: str, kind: Kind, events: Sequence[Event]) -> bool:
    return last_step(kind) in done_steps(run, events)
