"""draas model against the lab: the experiment runs each scheme's site disasters and records,
beside each scheme's measurements, what ``draas model`` predicts for the very configuration
its agents ran. Per scheme and disaster: the predicted and the measured median RTO and
phases, and whether the prediction lands within 20 % of the measured median or 0.3 s,
whichever is larger (issue 20's bound).

    .venv/bin/python benchmarks/model_validation.py --repeat 5 --dns-repeat 10 \\
        --out results/model-validation

Needs root (it builds labs). Writes the experiment under OUT/experiment, OUT/validation.json
and OUT/validation.md, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from draas.lab import experiment

PHASES = (
    ("rto", "rto_s", "rto_median_s"),
    ("detect", "detection_s", "detect_s"),
    ("decide", "decision_s", "decide_s"),
    ("switch", "switch_s", "switch_s"),
    ("catch-up", "client_catch_up_s", "client_catch_up_s"),
)


def bound(measured: float) -> float:
    return max(0.2 * measured, 0.3)


def compare(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    pairs = sorted({(r["scheme"], r["disaster"]) for r in doc["runs"]})
    for scheme, disaster in pairs:
        runs = [r for r in doc["runs"] if (r["scheme"], r["disaster"]) == (scheme, disaster)]
        predicted = next(
            (
                d
                for d in doc["model"].get(scheme, {}).get("disasters", [])
                if d["disaster"] == disaster
            ),
            None,
        )
        row: dict[str, Any] = {"scheme": scheme, "disaster": disaster, "runs": len(runs)}
        for name, measured_key, predicted_key in PHASES:
            got = [r[measured_key] for r in runs if r.get(measured_key) is not None]
            row[f"{name}_measured_s"] = round(statistics.median(got), 3) if got else None
            row[f"{name}_predicted_s"] = None if predicted is None else predicted[predicted_key]
        m, p = row["rto_measured_s"], row["rto_predicted_s"]
        row["within_bound"] = None if m is None or p is None else abs(p - m) <= bound(m)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    head = (
        "| scheme | disaster | runs | RTO measured | RTO predicted | within bound | detect m/p | "
        "decide m/p | switch m/p | catch-up m/p |"
    )
    lines = [
        "# draas model against the lab",
        "",
        f"Settings: {json.dumps(settings)}. Medians in seconds; bound: 20 % of the measured "
        "median or 0.3 s, whichever is larger.",
        "",
        head,
        "|" + "---|" * 10,
    ]
    for r in rows:
        pair = {n: f"{r[f'{n}_measured_s']} / {r[f'{n}_predicted_s']}" for n, _, _ in PHASES}
        lines.append(
            f"| {r['scheme']} | {r['disaster']} | {r['runs']} | {r['rto_measured_s']} | "
            f"{r['rto_predicted_s']} | {r['within_bound']} | {pair['detect']} | "
            f"{pair['decide']} | {pair['switch']} | {pair['catch-up']} |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The experiments: the DNS scheme with its own repeat count, the others together."""
    schemes = args.schemes.split(",")
    groups = [([s], args.dns_repeat or args.repeat) for s in schemes if s == "dns"]
    others = [s for s in schemes if s != "dns"]
    parts = []
    for names, repeat in [*groups, (others, args.repeat)]:
        if names:
            parts.append(
                experiment.run_matrix(
                    names,
                    args.disasters.split(","),
                    repeat,
                    args.out / "experiment" / "-".join(names),
                    print,
                    preset=args.preset,
                )
            )
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemes", default="dns,frontend,hybrid")
    ap.add_argument("--disasters", default="power-off,network-failure,service-crash,service-hang")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--dns-repeat",
        type=int,
        default=None,
        help="runs per disaster for the DNS scheme (default: --repeat); its client catch-up "
        "is spread over a whole TTL, so its median needs more runs than the others'",
    )
    ap.add_argument("--preset", default="fast", choices=["fast", "normal", "safe"])
    ap.add_argument("--out", type=Path, default=Path("results/model-validation"))
    ap.add_argument(
        "--from",
        dest="from_",
        type=Path,
        nargs="+",
        metavar="RESULTS_JSON",
        help="compare the experiments already in these results.json files (their runs and "
        "the model's predictions recorded with them) instead of running any",
    )
    args = ap.parse_args()
    doc: dict[str, Any] = {"runs": [], "model": {}}
    parts = [json.loads(p.read_text()) for p in args.from_] if args.from_ else run(args)
    for part in parts:
        doc["runs"] += part["runs"]
        doc["model"] |= part["model"]
        doc["settings"] = part["settings"]
    rows = compare(doc)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    (args.out / "validation.md").write_text(markdown(rows, doc["settings"]))
    print(markdown(rows, doc["settings"]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
