"""``draas model`` for the three schemes under the three presets: the predicted RTO per
disaster kind and the false failovers per year on a lossy WAN, from the example deployment
(examples/draas.toml) with each scheme's frontends (DNS: none, frontend: fe-a, hybrid: both)
and each preset's timings (the example's own confirm_window_s dropped). For docs/schemes.md,
beside the lab's measured table.

    .venv/bin/python benchmarks/model_presets.py --loss-pct 2 --jitter-ms 20 \\
        --out results/model-presets

Writes OUT/model-presets.json and .md and prints the table. No root, no lab.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from draas.config import Config, parse_config
from draas.model.network import Path as NetPath
from draas.model.report import Question, report

EXAMPLE = Path(__file__).parents[1] / "examples" / "draas.toml"
FRONTENDS = {"dns": (), "frontend": ("fe-a",), "hybrid": ("fe-a", "fe-b")}
KINDS = ("power-off", "network-failure", "service-crash", "service-hang", "frontend-crash")


def deployment(scheme: str, preset: str) -> Config:
    data = tomllib.loads(EXAMPLE.read_text())
    data["scheme"] = scheme
    data["timings"] = {"preset": preset}
    data["nodes"] = [
        n for n in data["nodes"] if n["role"] != "frontend" or n["name"] in FRONTENDS[scheme]
    ]
    if not FRONTENDS[scheme]:
        data.pop("frontend", None)
    return parse_config(data)


def rows(loss_pct: float, jitter_ms: float, rtt_ms: float) -> list[dict[str, Any]]:
    path = NetPath(rtt_s=rtt_ms / 1000, loss=loss_pct / 100, jitter_s=jitter_ms / 1000)
    out = []
    for preset in ("fast", "normal", "safe"):
        for scheme in ("dns", "frontend", "hybrid"):
            doc = report(deployment(scheme, preset), Question(path=path))
            by = {d["disaster"]: d for d in doc["disasters"]}
            out.append(
                {
                    "preset": preset,
                    "scheme": scheme,
                    **{
                        k: (
                            [by[k]["rto_median_s"], by[k]["rto_p95_s"]]
                            if by[k]["recovers"]
                            else None
                        )
                        for k in KINDS
                    },
                    "false_failovers_per_year": doc["false_failovers_per_year"],
                    "availability": doc["availability"],
                }
            )
    return out


def markdown(got: list[dict[str, Any]], loss_pct: float, jitter_ms: float, rtt_ms: float) -> str:
    def cell(v: list[float] | None) -> str:
        return "-" if v is None else f"{v[0]:.2f} / {v[1]:.2f}"

    lines = [
        f"Predicted RTO, median / p95 in seconds (`draas model`, clients through a caching "
        f"resolver honouring the TTL of 5 s); false failovers per year at {loss_pct:g} % loss, "
        f"{jitter_ms:g} ms jitter, {rtt_ms:g} ms RTT on every probe's path; availability from "
        "the default failure rates.",
        "",
        "| preset | scheme | " + " | ".join(KINDS) + " | false failovers / year | availability |",
        "|" + "---|" * (len(KINDS) + 4),
    ]
    for r in got:
        lines.append(
            f"| {r['preset']} | {r['scheme']} | "
            + " | ".join(cell(r[k]) for k in KINDS)
            + f" | {r['false_failovers_per_year']:g} | {r['availability'] * 100:.5f} % |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss-pct", type=float, default=2.0)
    ap.add_argument("--jitter-ms", type=float, default=20.0)
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=Path("results/model-presets"))
    args = ap.parse_args()
    got = rows(args.loss_pct, args.jitter_ms, args.rtt_ms)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model-presets.json").write_text(json.dumps({"rows": got}, indent=1) + "\n")
    md = markdown(got, args.loss_pct, args.jitter_ms, args.rtt_ms)
    (args.out / "model-presets.md").write_text(md)
    print(md)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
