"""Replication figures in the lab: lag under a Keystone write load across the emulated WAN,
promotion, rejoin and reseed times.

    .venv/bin/python benchmarks/replication.py --seconds 20 --out results/replication.json

Needs root. Lag is measured per heartbeat: a row committed on the primary, then
``MASTER_GTID_WAIT`` on the DR site for that transaction's GTID; the time from the commit's
return to the wait's return is how far behind the standby was for that write.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from pathlib import Path

from common import report

from draas.lab.components import keystone, mariadb
from draas.lab.lab import Lab, LabSettings
from draas.lab.writer import read_log


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way WAN delay")
    parser.add_argument("--semi-sync", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/replication.json"))
    args = parser.parse_args()
    if not 2 <= args.seconds <= 600:
        parser.error("--seconds must be 2..600")
    lab = Lab("b" + secrets.token_hex(3))
    try:
        lab.up(LabSettings(scheme="dns", delay_ms=args.delay_ms))
        p = mariadb.replicator(lab, "primary", semi_sync=args.semi_sync)
        d = mariadb.replicator(lab, "dr", semi_sync=args.semi_sync)
        if args.semi_sync:
            p.promote()
            d.replicate_from(p, seed=False)
        p.execute(
            "CREATE TABLE IF NOT EXISTS keystone.draas_heartbeat "
            "(id INT AUTO_INCREMENT PRIMARY KEY, t DOUBLE)"
        )
        spec, out = keystone.writer_spec(
            lab, "bench-load", "http://198.18.1.10:5000", "bench", args.seconds, 0.02
        )
        lab.sup.launch(spec)
        lags = []
        t_end = time.monotonic() + args.seconds
        with p.connect() as pc, d.connect() as dc, pc.cursor() as pcur, dc.cursor() as dcur:
            while time.monotonic() < t_end:
                pcur.execute("INSERT INTO keystone.draas_heartbeat (t) VALUES (%s)", (time.time(),))
                t0 = time.monotonic()
                pcur.execute("SELECT @@last_gtid AS g")
                g = pcur.fetchone()["g"]
                dcur.execute("SELECT MASTER_GTID_WAIT(%s, 5) AS r", (g,))
                if dcur.fetchone()["r"] == 0:
                    lags.append((time.monotonic() - t0) * 1000)
                time.sleep(0.1)
        while lab.sup.state("bench-load") != "exited":
            time.sleep(0.2)
        acked = sum(1 for r in read_log(out) if r["outcome"] == "acked")
        d.wait_caught_up(p)
        checksums_match = p.checksums() == d.checksums()
        # Planned switchover: demote, catch up, promote; then the old primary rejoins.
        t0 = time.monotonic()
        p.demote()
        d.wait_caught_up(p)
        promote_s = d.promote()
        switchover_s = time.monotonic() - t0
        rejoin = p.rejoin(d, lab.run.path / "recovery")
        t0 = time.monotonic()
        p.replicate_from(d, seed=True)
        reseed_s = time.monotonic() - t0
        rows = sum(
            int(r["n"])
            for r in p.query(
                "SELECT SUM(TABLE_ROWS) AS n FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = 'keystone'"
            )
        )
    finally:
        lab.down()
    result = {
        "mode": "semi-sync" if args.semi_sync else "async",
        "wan_one_way_delay_ms": args.delay_ms,
        "load_seconds": args.seconds,
        "keystone_writes_acked": acked,
        "keystone_writes_per_s": round(acked / args.seconds, 1),
        "heartbeats": len(lags),
        "lag_median_ms": round(statistics.median(lags), 1),
        "lag_p99_ms": round(pct(lags, 99), 1),
        "lag_max_ms": round(max(lags), 1),
        "checksums_match": checksums_match,
        "promote_ms": round(promote_s * 1000, 1),
        "switchover_ms": round(switchover_s * 1000, 1),
        "rejoin_ms": round(rejoin.took_s * 1000, 1),
        "reseed_ms": round(reseed_s * 1000, 1),
        "reseed_rows_approx": rows,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
