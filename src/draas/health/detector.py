"""Rise/fall detection: a target changes state only after ``fall`` failures (or ``rise``
successes) in a row, so one lost probe never flips it. Pure: results and times in, state out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from draas.coordination.records import Observation, Seen, State


@dataclass
class RiseFall:
    rise: int
    fall: int
    state: State = "unknown"  # "unknown": not enough results yet
    since: float = 0.0
    _streak_ok: int = 0
    _streak_bad: int = 0

    def feed(self, ok: bool, at: float) -> bool:
        """Record one probe result taken at ``at``; return True if the state changed."""
        if ok:
            self._streak_ok += 1
            self._streak_bad = 0
            if self.state != "up" and self._streak_ok >= self.rise:
                return self._become("up", at)
        else:
            self._streak_bad += 1
            self._streak_ok = 0
            if self.state != "down" and self._streak_bad >= self.fall:
                return self._become("down", at)
        return False

    def _become(self, state: State, at: float) -> bool:
        self.state = state
        self.since = at
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since}


class VantagePoint:
    """One observer's detectors, one per target (the service's checks), and for the targets
    also checked for reachability (TCP connects, on a shorter interval) one more each; and
    the document it publishes."""

    def __init__(
        self,
        name: str,
        targets: list[str],
        rise: int,
        fall: int,
        reach: list[str] | None = None,
        reach_fall: int = 3,
    ) -> None:
        self.name = name
        self.detectors = {t: RiseFall(rise, fall) for t in targets}
        self.reach = {t: RiseFall(1, reach_fall) for t in reach or []}

    def feed(self, target: str, ok: bool, at: float) -> bool:
        return self.detectors[target].feed(ok, at)

    def feed_reach(self, target: str, ok: bool, at: float) -> bool:
        """One round of TCP connects to ``target`` (``ok``: one of its ports accepted)."""
        return self.reach[target].feed(ok, at)

    def unreachable_since(self, target: str) -> float | None:
        d = self.reach.get(target)
        return d.since if d is not None and d.state == "down" else None

    def observation(self, at: float) -> Observation:
        """What this vantage point sees at ``at``, as it publishes it."""
        seen = {
            t: Seen(d.state, d.since, self.unreachable_since(t)) for t, d in self.detectors.items()
        }
        return Observation(self.name, at, seen)
