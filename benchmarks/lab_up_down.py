"""Time ``draas lab up`` and ``draas lab down`` (bare topology, or with every service of the
hybrid scheme), the WAN round trip, and the lab's resident memory.

    .venv/bin/python benchmarks/lab_up_down.py --repeat 5 [--services] --out FILE

Needs root. Writes flat JSON (units in the names) and prints a short table.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from pathlib import Path

from common import report

from draas.lab.lab import Lab, LabSettings
from draas.lab.reach import ping
from draas.lab.services import memory_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--services", action="store_true", help="full hybrid lab, not bare")
    parser.add_argument("--out", type=Path, default=Path("results/lab_up_down.json"))
    args = parser.parse_args()
    if not 1 <= args.repeat <= 50:
        parser.error(f"--repeat {args.repeat}: must be 1..50")
    ups, downs, rtts, mems = [], [], [], []
    for _ in range(args.repeat):
        lab = Lab("b" + secrets.token_hex(3))
        t0 = time.monotonic()
        try:
            lab.up(LabSettings(delay_ms=args.delay_ms, services=args.services))
            ups.append(time.monotonic() - t0)
            mems.append(memory_rss_mb(lab))
            r = ping(lab.ns("primary"), "primary", "dr", "198.18.2.10", count=10, interval_s=0.05)
            if r.median_ms is not None:
                rtts.append(r.median_ms)
        finally:
            t1 = time.monotonic()
            lab.down()
            downs.append(time.monotonic() - t1)
    result = {
        "lab": "hybrid scheme, all services" if args.services else "bare topology",
        "repeat": args.repeat,
        "configured_one_way_delay_ms": args.delay_ms,
        "up_median_s": round(statistics.median(ups), 3),
        "up_max_s": round(max(ups), 3),
        "down_median_s": round(statistics.median(downs), 3),
        "down_max_s": round(max(downs), 3),
        "site_rtt_median_ms": round(statistics.median(rtts), 2) if rtts else None,
        "memory_rss_median_mib": round(statistics.median(mems), 1),
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
