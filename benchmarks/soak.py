"""The soak: gray network on the WAN with the write load, measured (see draas.lab.soak).

    .venv/bin/python benchmarks/soak.py --minutes 30 --out results/soak-30min

Builds its own DNS-scheme lab (semi-sync, normal timings), puts 2 % loss and 20 ms jitter on
both sites' traffic for the given time, then reports failovers (all false here), lost
acknowledged writes, split-brain instants, read availability and each agent's memory (first
after start-up, last, peak, slope). Needs root. Writes soak.json (and the meters' logs) to
--out and prints a short table. CI runs a 3-minute version (tests/lab/test_soak.py).
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from common import report

from draas.lab.lab import Lab
from draas.lab.soak import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--loss-pct", type=float, default=2.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--preset", choices=("fast", "normal", "safe"), default="normal")
    parser.add_argument("--out", type=Path, default=Path("results/soak"))
    args = parser.parse_args()
    if not 0.5 <= args.minutes <= 240:
        parser.error(f"--minutes {args.minutes}: must be 0.5..240")
    lab = Lab("s" + secrets.token_hex(3))
    try:
        result = soak(
            lab, args.minutes * 60, args.out, print, args.loss_pct, args.jitter_ms, args.preset
        )
    finally:
        lab.down(print)
    flat = {k: v for k, v in result.items() if k not in ("memory", "split_brain")}
    for agent, mem in result["memory"].items():
        flat[f"{agent} memory MiB first/last/peak"] = (
            f"{mem['first_mib']}/{mem['last_mib']}/{mem['peak_mib']}"
        )
        flat[f"{agent} memory slope MiB/h"] = mem["slope_mib_per_h"]
    report(flat, args.out / "summary.json")


if __name__ == "__main__":
    main()
