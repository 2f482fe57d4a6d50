"""The RTO meter's arithmetic, on a recorded request log (pure: records in, figures out).

A record is one request: ``t`` (wall-clock start, s), ``ok`` (the check passed), and
optionally ``latency_s``, ``site`` (which site answered), ``addr``, ``status``, ``check``.
Records are taken in time order; requests of several checks made at the same tick count as
one sample that is ``ok`` only if every check passed.

- A downtime window runs from the first failed sample to the first passing sample after it
  (open if the log ends first).
- The RTO, from the disaster's time, is the time to the *answer* of the first of ``k``
  consecutive passing samples after the first failure since the disaster (None when the
  service never came back for ``k`` samples). When the first ``k`` samples after the
  disaster passed (nothing failed, or requests were only held), it is the time to the answer
  of the first one if that answer was held up (slower than 95 % of the samples before the
  disaster: a frontend holding requests until the new site takes them), else 0; a failure after that
  is a later incident (a failback's pause) and counts in the downtime, not in the RTO.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    t: float
    ok: bool
    latency_s: float | None = None
    site: str | None = None


@dataclass(frozen=True)
class Window:
    start: float
    end: float | None  # None: still down when the log ended
    last_seen: float  # the last sample of the window (for open windows)

    @property
    def duration_s(self) -> float:
        return (self.end if self.end is not None else self.last_seen) - self.start


@dataclass
class Summary:
    samples: int
    failed: int
    availability: float | None
    windows: list[Window] = field(default_factory=list)
    downtime_s: float = 0.0
    rto_s: float | None = None
    recovered_site: str | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "failed": self.failed,
            "availability": self.availability,
            "downtime_s": round(self.downtime_s, 3),
            "rto_s": None if self.rto_s is None else round(self.rto_s, 3),
            "recovered_site": self.recovered_site,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "windows": [
                {"start": w.start, "end": w.end, "duration_s": round(w.duration_s, 3)}
                for w in self.windows
            ],
        }


def samples(records: Iterable[Mapping[str, Any]], tick_s: float = 1e-6) -> list[Sample]:
    """Group the records of one tick (same ``tick`` field, or the same ``t``) into samples."""
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(r.get("tick", round(float(r["t"]) / tick_s)), []).append(r)
    out = []
    for rs in groups.values():
        lats = [float(r["latency_s"]) for r in rs if r.get("latency_s") is not None]
        sites = {r["site"] for r in rs if r.get("ok") and r.get("site")}
        out.append(
            Sample(
                t=min(float(r["t"]) for r in rs),
                ok=all(bool(r["ok"]) for r in rs),
                latency_s=max(lats) if lats else None,
                site=sites.pop() if len(sites) == 1 else None,
            )
        )
    return sorted(out, key=lambda s: s.t)


def windows(seq: Sequence[Sample]) -> list[Window]:
    out: list[Window] = []
    start: float | None = None
    last = 0.0
    for s in seq:
        if not s.ok and start is None:
            start = s.t
        if not s.ok:
            last = s.t
        if s.ok and start is not None:
            out.append(Window(start, s.t, last))
            start = None
    if start is not None:
        out.append(Window(start, None, last))
    return out


def answered(s: Sample) -> float:
    return s.t + (s.latency_s or 0.0)


def rto(seq: Sequence[Sample], disaster_t: float, k: int = 3) -> tuple[float | None, str | None]:
    """Seconds from ``disaster_t`` to the answer of the first of ``k`` consecutive passes
    after the first failure since then, and the site that answered it. A failure after the
    service was already served again (``k`` passes before any failure: nothing failed, or
    requests were only held) is a later incident (a failback's pause), not this outage."""
    after = [s for s in seq if s.t >= disaster_t]
    first_fail = next((i for i, s in enumerate(after) if not s.ok), None)
    if first_fail is None or first_fail >= k:
        if not after or not all(s.ok for s in after[:k]):
            return (0.0 if not after else None), None
        # Held: slower than 95 % of the answers before the disaster (a cold start's few slow
        # answers must not hide a held request).
        before = [s.latency_s or 0.0 for s in seq if s.t < disaster_t and s.ok]
        normal = percentile(sorted(before), 95) or 0.0
        first = after[0]
        held = (first.latency_s or 0.0) > normal
        return (answered(first) - disaster_t if held else 0.0), first.site
    run = 0
    for i in range(first_fail, len(after)):
        run = run + 1 if after[i].ok else 0
        if run == k:
            first = after[i - k + 1]
            return answered(first) - disaster_t, first.site
    return None, None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(
    records: Iterable[Mapping[str, Any]], disaster_t: float | None = None, k: int = 3
) -> Summary:
    seq = samples(records)
    wins = windows(seq)
    failed = sum(1 for s in seq if not s.ok)
    out = Summary(
        samples=len(seq),
        failed=failed,
        availability=round(1 - failed / len(seq), 5) if seq else None,
        windows=wins,
        downtime_s=sum(w.duration_s for w in wins),
    )
    if disaster_t is not None:
        out.rto_s, out.recovered_site = rto(seq, disaster_t, k)
    inside = [(w.start, w.end if w.end is not None else float("inf")) for w in wins]
    lats = [
        s.latency_s * 1000
        for s in seq
        if s.ok and s.latency_s is not None and not any(a <= s.t <= b for a, b in inside)
    ]
    p50, p99 = percentile(lats, 50), percentile(lats, 99)
    out.latency_p50_ms = round(p50, 2) if p50 is not None else None
    out.latency_p99_ms = round(p99, 2) if p99 is not None else None
    return out
