"""Lost-write accounting: the writer's log (every attempt ``acked``, ``failed`` or ``unknown``)
against what the active site's database holds at the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class WriteReport:
    attempted: int
    acked: int
    failed: int
    unknown: int
    unknown_stored: int  # of the unknown outcomes, how many the database holds
    lost: int  # acknowledged, but not in the database
    lost_names: list[str]
    lost_first_t: float | None
    lost_last_t: float | None

    @property
    def lost_span_s(self) -> float:
        if self.lost_first_t is None or self.lost_last_t is None:
            return 0.0
        return self.lost_last_t - self.lost_first_t

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lost_span_s": round(self.lost_span_s, 3)}


def account(log: Iterable[Mapping[str, Any]], held: set[str]) -> WriteReport:
    rows = list(log)
    acked = [r for r in rows if r["outcome"] == "acked"]
    unknown = [r for r in rows if r["outcome"] == "unknown"]
    lost = sorted((r for r in acked if r["name"] not in held), key=lambda r: float(r["t_start"]))
    return WriteReport(
        attempted=len(rows),
        acked=len(acked),
        failed=sum(1 for r in rows if r["outcome"] == "failed"),
        unknown=len(unknown),
        unknown_stored=sum(1 for r in unknown if r["name"] in held),
        lost=len(lost),
        lost_names=[r["name"] for r in lost],
        lost_first_t=float(lost[0]["t_start"]) if lost else None,
        lost_last_t=float(lost[-1]["t_start"]) if lost else None,
    )


def write_outages(
    log: Iterable[Mapping[str, Any]], since: float
) -> list[tuple[float, float, bool]]:
    """Windows ``(start, end, closed)`` in which writes went unacknowledged from ``since`` on:
    each opens at the first write (in flight at ``since`` or started later) that was not
    acknowledged, from ``since`` at the earliest, and closes when the next write started
    after it is acknowledged (its answer's time: ``closed``); a window still open when the
    log ends ends at its last write, not closed."""
    rows = sorted(
        (float(r["t_start"]), float(r.get("t_end", r["t_start"])), r["outcome"] == "acked")
        for r in log
        if float(r.get("t_end", r["t_start"])) >= since
    )
    out: list[tuple[float, float, bool]] = []
    start: float | None = None
    for t0, t1, acked in rows:
        if not acked and start is None:
            start = max(since, t0)
        elif acked and start is not None and t0 >= start:
            out.append((start, t1, True))
            start = None
    if start is not None:
        out.append((start, max(start, rows[-1][0]), False))
    return out


def write_figures(log: Iterable[Mapping[str, Any]], since: float) -> dict[str, float | None]:
    """``write_rto_s``: from ``since`` to the first acknowledgement that ends the first window
    of unacknowledged writes (0 without one, None if it never closed); ``write_downtime_s``:
    every window from ``since`` on (a failback's pause included)."""
    windows = write_outages(log, since)
    rto: float | None = 0.0
    if windows:
        _, end, closed = windows[0]
        rto = round(end - since, 3) if closed else None
    return {"write_rto_s": rto, "write_downtime_s": round(sum(b - a for a, b, _ in windows), 3)}


def longest_stall(log: Iterable[Mapping[str, Any]], start: float, end: float) -> float | None:
    """The longest time writes made no progress between ``start`` and ``end``: the longest
    gap between consecutive acknowledgements (the writer writes one at a time, so a commit
    waiting for a standby's acknowledgement shows as such a gap); None without any write."""
    acks = sorted(
        float(r["t_end"])
        for r in log
        if r["outcome"] == "acked" and start <= float(r["t_end"]) and float(r["t_start"]) < end
    )
    if not acks:
        return None
    points = [start, *acks]
    return round(max(b - a for a, b in itertools.pairwise(points)), 3)
