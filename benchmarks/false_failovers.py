"""False failovers, predicted by ``draas model`` and counted in the lab: a DNS-scheme lab
(semi-sync) at an aggressive preset soaks in packet loss (and jitter) on both sites for
--minutes at each --loss-pct, with automatic action paused so that every time a quorum
confirms the healthy primary down is counted (see draas.lab.falsealarms); beside it the
model's prediction for the agents' very configuration and the lab's paths, and each
observer's false "down"s, predicted and counted.

    .venv/bin/python benchmarks/false_failovers.py --preset fast --loss-pct 8,10 \\
        --minutes 12 --out results/false-failovers

Needs root (it builds a lab). Writes OUT/false-failovers.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

from draas.config import PRESETS, load_config
from draas.failover.policy import needed_votes
from draas.lab import falsealarms as fa
from draas.lab.agents import NODES, start_agents
from draas.lab.disasters import GrayNetwork
from draas.lab.eventlog import read_events
from draas.lab.lab import Lab, LabSettings
from draas.model.falsealarms import Alarm, alarms, either


def poisson_interval(k: int) -> tuple[float, float]:
    """A rough 95 % interval of a Poisson mean from ``k`` events (normal with k + 1)."""
    half = 1.96 * math.sqrt(k + 1)
    return max(0.0, k - half), k + half


def soak_one(lab: Lab, config: Path, loss: float, jitter: float, minutes: float) -> dict[str, Any]:
    cfg = load_config(config)
    t = cfg.timings
    found = {a.detector: a for a in alarms(cfg, fa.lab_paths(lab, loss, jitter))}
    fa.paused(lab, minutes + 5)
    gray = GrayNetwork(lab, hosts=["primary", "dr"], loss_pct=loss, jitter_ms=jitter)
    t0 = time.time()
    gray.inject()
    print(f"gray network on: {loss:g} % loss, {jitter:g} ms jitter, {minutes:g} min (paused)")
    end = time.monotonic() + minutes * 60
    try:
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(60.0, left))
            got = fa.confirmations(read_events(lab, t0))
            print(f"  {time.time() - t0:5.0f} s: {len(got)} confirmation(s) of a false down")
    finally:
        gray.revert()
    t1 = time.time()
    time.sleep(3)
    fa.resumed(lab)
    evs = read_events(lab, t0)
    got = [c for c in fa.confirmations(evs) if c["ts"] <= t1]
    hours = (t1 - t0) / 3600
    downs = fa.observer_downs(
        [e for e in evs if e.ts <= t1],
        "primary",
        [n for n, (host, _) in NODES.items() if host != "primary"],
        {"reach": t.reach_window_s, "service": t.confirm_window_s},
        t1,
    )
    voters = [n for n, _, _ in found["reach"].each]
    predicted = either(list(found.values()), needed_votes(voters), t.probe_interval_s) * 3600
    low, high = poisson_interval(len(got))
    return {
        "loss_pct": loss,
        "jitter_ms": jitter,
        "hours": round(hours, 4),
        "predicted_per_hour": round(predicted, 2),
        "predicted_upper_per_hour": round(
            either(list(found.values()), needed_votes(voters)) * 3600, 2
        ),
        "look_s": t.probe_interval_s,
        "counted": len(got),
        "counted_per_hour": round(len(got) / hours, 2),
        "counted_per_hour_95": [round(low / hours, 2), round(high / hours, 2)],
        "predicted_within_95": low / hours <= predicted <= high / hours,
        "causes": {c: sum(1 for x in got if x["cause"] == c) for c in {x["cause"] for x in got}},
        "by_detector": {
            d: {
                "predicted_per_hour": round(found[d].quorum_per_s * 3600, 2)
                if d in found
                else None,
                "counted": sum(1 for x in got if fa.detector_of(x) == d),
            }
            for d in ("reach", "service", "unknown")
        },
        "observers": {
            d: {
                n: {
                    "downs_per_hour_predicted": round(rate * 3600, 1),
                    "downs_per_hour_counted": round(
                        by.get(n, {}).get("lasted_window", 0) / hours, 1
                    ),
                    "share_predicted": round(share, 4),
                    "share_counted": round(by.get(n, {}).get("counted_s", 0.0) / (t1 - t0), 4),
                }
                for n, rate, share in found[d].each
            }
            for d, by in downs.items()
        },
        "decisions_by_cause": dict(
            Counter(str(e.extra.get("cause", "")) for e in evs if e.step == "decide" and e.ts <= t1)
        ),
        "confirmations": got,
    }


def again(row: dict[str, Any], preset: str) -> dict[str, Any]:
    """A row's prediction made again by this model's quorum step from the per-observer figures
    the row recorded (each detector's downs and share of time down, which come from the
    configuration and the paths alone)."""
    found = [
        Alarm(
            d,
            0.0,
            0.0,
            0.0,
            0.0,
            tuple(
                (n, v["downs_per_hour_predicted"] / 3600, v["share_predicted"])
                for n, v in by.items()
            ),
        )
        for d, by in row["observers"].items()
    ]
    q = needed_votes(list(row["observers"]["reach"]))
    look = float(row.get("look_s", PRESETS[preset]["probe_interval_s"]))
    predicted = either(found, q, look) * 3600
    hours = row["hours"]
    low, high = (x * hours for x in row["counted_per_hour_95"])
    return row | {
        "predicted_per_hour": round(predicted, 2),
        "predicted_upper_per_hour": round(either(found, q) * 3600, 2),
        "look_s": look,
        "predicted_within_95": low / hours <= predicted <= high / hours,
    }


def markdown(rows: list[dict[str, Any]], preset: str) -> str:
    lines = [
        "# False failovers: draas model against the lab",
        "",
        f"DNS scheme, semi-sync, preset {preset}; automatic action paused, so each quorum "
        "confirmation of the healthy primary is counted. 95 % interval: Poisson, rough.",
        "",
        "| loss % | jitter ms | hours | predicted /h (upper bound) | counted | counted /h (95 %) | "
        "within | each detector alone: predicted /h vs counted | each observer's downs /h (window "
        "lasted): predicted vs counted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["counted_per_hour_95"]
        downs = "; ".join(
            f"{d} {n} {v['downs_per_hour_predicted']} vs {v['downs_per_hour_counted']}"
            for d, by in r["observers"].items()
            for n, v in by.items()
        )
        det = ", ".join(
            f"{d} {v['predicted_per_hour']} vs {v['counted']}" for d, v in r["by_detector"].items()
        )
        lines.append(
            f"| {r['loss_pct']:g} | {r['jitter_ms']:g} | {r['hours']} | "
            f"{r['predicted_per_hour']} ({r['predicted_upper_per_hour']}) | {r['counted']} | "
            f"{r['counted_per_hour']} ({lo}-{hi}) "
            f"| {r['predicted_within_95']} | {det} | {downs} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=("fast", "normal", "safe"), default="fast")
    ap.add_argument("--loss-pct", default="8,10", help="comma-separated loss levels, in %%")
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--minutes", type=float, default=12.0, help="per loss level")
    ap.add_argument("--out", type=Path, default=Path("results/false-failovers"))
    ap.add_argument(
        "--from",
        dest="from_",
        type=Path,
        metavar="JSON",
        help="predict again, with this model, the rows of an earlier run's "
        "false-failovers.json (its counts kept) instead of running",
    )
    args = ap.parse_args()
    if args.from_:
        rows = [again(r, args.preset) for r in json.loads(args.from_.read_text())["rows"]]
        write(rows, args.out, args.preset)
        return
    losses = [float(x) for x in args.loss_pct.split(",")]
    if not all(0 < x < 50 for x in losses) or not 1 <= args.minutes <= 240:
        ap.error("--loss-pct: each 0 < L < 50; --minutes: 1..240")
    lab = Lab("f" + secrets.token_hex(3))
    rows = []
    try:
        print(f"building the lab {lab.name} (DNS scheme, semi-sync, {args.preset} timings)")
        lab.up(LabSettings(scheme="dns"))
        config = start_agents(lab, preset=args.preset, replication="semi-sync")
        for loss in losses:
            rows.append(soak_one(lab, config, loss, args.jitter_ms, args.minutes))
            time.sleep(20)  # the observers see the primary up again before the next level
    finally:
        lab.down(print)
    write(rows, args.out, args.preset)


def write(rows: list[dict[str, Any]], out: Path, preset: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "false-failovers.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    (out / "false-failovers.md").write_text(markdown(rows, preset))
    print(markdown(rows, preset))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
