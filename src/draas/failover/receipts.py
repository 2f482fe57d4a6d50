"""Other nodes' times, judged by the receiver. An observation carries its observer's clock
(``at``, each target's ``since``); comparing those with our own clock would make a witness whose
clock is ten minutes fast confirm nothing for ten minutes (or a slow one confirm at once).
``Receipts`` notes, in this node's clock, when each publication was first read: ``receipt - at``
is the observer's clock offset against ours plus how late we read it (transit, and the time
the publication waited for our next read). The smallest of the recent ones is the estimate;
the observation's times are re-expressed in this node's clock with it, and the status shows it
and alerts on it.

Pure apart from what it remembers: the caller passes the time now (the product's ``Clock``).
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
import threading
from collections.abc import Callable, Mapping

from draas.coordination import Observation, Seen

# An observer whose clock is further than this from the others' median is reported: above
# the read delay of a publication (one probe interval, at most 2 s in the slowest preset) and
# the transit, far below TSIG's 300 s and the confirmation windows' consequences of minutes.
SKEW_ALERT_S = 5.0


def _shift(seen: Seen, by: float) -> Seen:
    gone = seen.unreachable_since
    return dataclasses.replace(
        seen, since=seen.since + by, unreachable_since=None if gone is None else gone + by
    )


class Receipts:
    """Per observer, the last publication time read and the recent offsets measured: each
    new publication gives ``our time on reading it - its time``, the true offset plus how late
    we read it; the smallest of the last ``keep`` is the estimate (a late read only adds). A
    measure larger than the estimate by more than ``SKEW_ALERT_S`` (more than any late read)
    means the observer's clock went back: the estimate starts again from it."""

    # The store's clock, when the store tells it: named ``STORE`` among the offsets.
    STORE = "store"

    def __init__(
        self,
        keep: int = 20,
        me: str = "",
        store_offset: Callable[[], float | None] | None = None,
    ) -> None:
        self.me = me  # this node's own observation: its offset is ours, not measured
        # The coordination store's clock minus ours (from its answers), one more clock to
        # compare with: with only one other node left, it tells which of two is off.
        self.store_offset = store_offset
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # observer -> the ``at`` last read
        self._seen: dict[str, collections.deque[float]] = {}  # observer -> offsets measured
        self.keep = keep

    def rebase(self, observations: Mapping[str, Observation], now: float) -> dict[str, Observation]:
        """``observations`` with every time in this node's clock (see the module)."""
        out: dict[str, Observation] = {}
        with self._lock:
            for name, obs in observations.items():
                if self._last.get(name) != obs.at:  # a new publication: received now
                    self._last[name] = obs.at
                    seen = self._seen.setdefault(name, collections.deque(maxlen=self.keep))
                    got = now - obs.at
                    if seen and got - min(seen) > SKEW_ALERT_S:
                        # More than a late read can add: its clock was stepped back (NTP
                        # fixed it, the agent restarted right): the old offsets are void.
                        seen.clear()
                    seen.append(got)
                by = min(self._seen[name])
                targets = {t: _shift(s, by) for t, s in obs.targets.items()}
                out[name] = dataclasses.replace(obs, at=obs.at + by, targets=targets)
            for gone in set(self._last) - set(observations):
                del self._last[gone]  # expired: forgotten (its clock may have been fixed)
                del self._seen[gone]
        return out

    def offsets(self) -> dict[str, float]:
        """Each observer's clock minus ours, as measured (s), and the store's when known."""
        with self._lock:
            out = {
                name: round(-min(seen), 2) for name, seen in self._seen.items() if name != self.me
            }
        store = None if self.store_offset is None else self.store_offset()
        if store is not None:
            out[self.STORE] = store
        return out


def skewed(offsets: Mapping[str, float], threshold_s: float = SKEW_ALERT_S) -> dict[str, float]:
    """The clocks (``offsets``, and ours as "" at 0) that more than half of all the clocks are
    further than ``threshold_s`` from, each with its skew against the median: the odd ones out.
    Two clocks that disagree name neither (there is no majority to tell which is wrong: with
    the primary powered off, a DR agent and a skewed witness must not both doubt themselves)."""
    if not offsets:
        return {}
    clocks = {"": 0.0, **offsets}
    middle = statistics.median(clocks.values())
    out = {}
    for name, mine in clocks.items():
        far = sum(1 for other in clocks.values() if abs(other - mine) > threshold_s)
        if 2 * far > len(clocks):
            out[name] = round(mine - middle, 1)
    return out
