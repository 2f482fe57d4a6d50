"""``draas model``'s answer: per disaster kind the predicted RTO (median, p95) and its phases,
false failovers per year on the probes' paths, and the availability those give with the
failure rates per kind (defaults in ``rto.RATES_PER_YEAR``, the operator's own with
``--rate``). A document (JSON/YAML) and its table."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from draas.config import Config
from draas.errors import InvalidInput
from draas.model.falsealarms import alarms, either, voters
from draas.model.kinds import DISASTERS, RATES_PER_YEAR
from draas.model.network import Path, per_year
from draas.model.rto import Client, Costs, phases

YEAR_S = 365.25 * 86400


@dataclasses.dataclass(frozen=True)
class Question:
    path: Path = dataclasses.field(default_factory=lambda: Path(rtt_s=0.02))
    client: Client = dataclasses.field(default_factory=Client)
    rates: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(RATES_PER_YEAR))


def ttl_behaviour(text: str) -> float | None:
    """``honour`` (None) or ``clamp:SECONDS`` (the seconds)."""
    if text == "honour":
        return None
    kind, _, value = text.partition(":")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if kind != "clamp" or not 0 < seconds <= 86400:
        raise InvalidInput(
            f"--client-ttl-behaviour {text!r}: allowed 'honour' or 'clamp:SECONDS' "
            "(0 < SECONDS <= 86400)"
        )
    return seconds


def rate(text: str) -> tuple[str, float]:
    """``KIND=PER_YEAR``."""
    kind, _, value = text.partition("=")
    try:
        per_year_ = float(value)
    except ValueError:
        per_year_ = -1.0
    if kind not in DISASTERS or not 0 <= per_year_ <= 1e6:
        raise InvalidInput(
            f"--rate {text!r}: allowed KIND=PER_YEAR with KIND one of {', '.join(DISASTERS)} "
            "and 0 <= PER_YEAR <= 1000000"
        )
    return kind, per_year_


def report(cfg: Config, q: Question) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    downtime = 0.0
    moved = None  # the power-off's phases: what a false failover costs clients too
    for disaster in DISASTERS:
        got = phases(cfg, disaster, q.client)
        if disaster == "power-off":
            moved = got
        per = q.rates.get(disaster, 0.0)
        if got is None:
            rows.append({"disaster": disaster, "recovers": False, "rate_per_year": per})
            continue
        s = got.summary()
        rows.append({"disaster": disaster, "recovers": True, **s, "rate_per_year": per})
        downtime += per * s["rto_mean_s"]
    found = alarms(cfg, q.path)
    _, quorum = voters(cfg, cfg.site_with_role("primary"))
    false_per_year = per_year(either(found, quorum, cfg.timings.probe_interval_s))
    # A false failover interrupts clients as a failover does once it is decided.
    interruption = 0.0 if moved is None else float(np.mean(moved.served - moved.decide))
    downtime += false_per_year * interruption
    costs = Costs()
    return {
        "scheme": cfg.scheme,
        "preset": cfg.timings.preset,
        "path": dataclasses.asdict(q.path),
        "client": dataclasses.asdict(q.client),
        "disasters": rows,
        "false_failovers_per_year": _round(false_per_year),
        # Were every short "down" seen by the controller (it looks each probe interval).
        "false_failovers_upper_per_year": _round(per_year(either(found, quorum))),
        "false_alarms": [
            {
                "detector": a.detector,
                "probe_round_fails": _round(a.p_round),
                "observer_downs_per_year": _round(per_year(a.downs_per_s)),
                "alone_false_failovers_per_year": _round(per_year(a.quorum_per_s)),
            }
            for a in found
        ],
        "downtime_per_year_s": round(downtime, 1),
        "availability": round(max(0.0, 1 - downtime / YEAR_S), 7),
        "costs_s": dataclasses.asdict(costs),
    }


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def table(doc: Mapping[str, Any]) -> str:
    p, c = doc["path"], doc["client"]
    ttl = "honour the TTL" if c["clamp_s"] is None else f"keep answers {c['clamp_s']:g} s"
    lines = [
        f"draas model: {doc['scheme']} scheme, preset {doc['preset']}; probes' paths: loss "
        f"{p['loss'] * 100:g} %, jitter {p['jitter_s'] * 1000:g} ms, RTT {p['rtt_s'] * 1000:g} "
        f"ms; clients {ttl}",
        f"{'DISASTER':<16} {'RTO p50':>8} {'RTO p95':>8} {'DETECT':>7} {'DECIDE':>7} "
        f"{'SWITCH':>7} {'CATCH-UP':>9} {'PER YEAR':>9}",
    ]
    for r in doc["disasters"]:
        if not r["recovers"]:
            lines.append(
                f"{r['disaster']:<16} {'not recovered by draas in this scheme':>58} "
                f"{r['rate_per_year']:>9g}"
            )
            continue
        lines.append(
            f"{r['disaster']:<16} {r['rto_median_s']:>8.2f} {r['rto_p95_s']:>8.2f} "
            f"{r['detect_s']:>7.2f} {r['decide_s']:>7.2f} {r['switch_s']:>7.2f} "
            f"{r['client_catch_up_s']:>9.2f} {r['rate_per_year']:>9g}"
        )
    by = ", ".join(
        f"{a['detector']} {a['alone_false_failovers_per_year']:g}" for a in doc["false_alarms"]
    )
    lines += [
        f"false failovers per year: {doc['false_failovers_per_year']:g} (at most "
        f"{doc['false_failovers_upper_per_year']:g} were every short down seen; each detector "
        f"alone: {by})",
        f"expected downtime per year: {doc['downtime_per_year_s']:g} s; availability "
        f"{doc['availability'] * 100:.5f} %",
        "times in seconds from the disaster; this implementation's own costs (measured in "
        "the lab): " + ", ".join(f"{k} {v:g}" for k, v in doc["costs_s"].items()),
    ]
    return "\n".join(lines)


def one_line_each(cfg: Config) -> list[str]:
    """``config check``'s lines: the predicted RTO per disaster kind, default question."""
    out = []
    for r in report(cfg, Question())["disasters"]:
        if r["recovers"]:
            out.append(
                f"predicted RTO {r['disaster']}: median {r['rto_median_s']:.2f} s, "
                f"p95 {r['rto_p95_s']:.2f} s (draas model)"
            )
        else:
            out.append(f"predicted RTO {r['disaster']}: not recovered by draas in this scheme")
    return out
