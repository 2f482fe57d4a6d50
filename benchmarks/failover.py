"""Failover and failback times per scheme, with every agent running in the lab: the primary
site is powered off, the clock runs until a client resolving the service name is served by
the DR site; then the primary is powered on and the clock runs until failback is done.

    .venv/bin/python benchmarks/failover.py --schemes dns,frontend,hybrid --repeat 5 \\
        --out results/failover.json

One lab per scheme (fast preset, DNS TTL 5 s); the runs of a scheme follow one another on it,
each starting from a clean state (the primary active and in sync, the client served by it).
Needs root. Writes flat JSON (units in the names) and prints a short table.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import report

from draas.errors import LabError
from draas.lab import experiment
from draas.lab.agents import etcd_get, start_agents
from draas.lab.components import mariadb
from draas.lab.disasters import PowerOff
from draas.lab.eventlog import first, read_events
from draas.lab.lab import Lab, LabSettings

TIMEOUT_S = 60.0


def wait(what: str, check: Any, timeout: float = TIMEOUT_S, every: float = 0.05) -> float:
    try:
        return experiment.wait(what, check, timeout, every)
    except LabError as exc:
        raise SystemExit(str(exc)) from exc


def step_time(lab: Lab, run_prefix: str, step: str, after: float) -> float | None:
    done = first(read_events(lab), run=run_prefix, step=step, outcome="done", since=after)
    return None if done is None else done - after


def one_run(lab: Lab, n: int) -> dict[str, float]:
    epoch = 1 + 2 * n  # each run fails over and back: two new epochs
    wait("the primary serving", lambda: experiment.served_by(lab) == "primary", every=0.2)
    time.sleep(3)  # every vantage point has seen the primary up for a while
    off = PowerOff(lab, host="primary")
    t0_wall, t0 = time.time(), time.monotonic()
    off.inject()
    try:
        wait("the DR site serving", lambda: experiment.served_by(lab) == "dr")
        served = time.monotonic() - t0
        wait(
            "the failover runbook",
            lambda: step_time(lab, f"failover-dr-from-e{epoch}", "verify", t0_wall) is not None,
        )
        promoted = step_time(lab, f"failover-dr-from-e{epoch}", "promote", t0_wall)
        switched = step_time(lab, f"failover-dr-from-e{epoch}", "switch-traffic", t0_wall)
    finally:
        off.revert()
    t1_wall = time.time()
    lab.sup.wait_ready("mariadb-primary")
    run = f"failback-primary-from-e{epoch + 1}"
    wait("failback", lambda: step_time(lab, run, "verify", t1_wall) is not None, every=0.2)
    failback = step_time(lab, run, "verify", t1_wall) or 0.0
    mariadb.wait_in_sync(lab, "dr", "primary")
    same = (
        mariadb.replicator(lab, "primary").checksums() == mariadb.replicator(lab, "dr").checksums()
    )
    if not same:
        raise SystemExit(f"run {n}: checksums differ after failback")
    return {
        "served_s": served,
        "promoted_s": promoted or 0.0,
        "switched_s": switched or 0.0,
        "failback_s": failback,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes", default="dns,frontend,hybrid")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("results/failover.json"))
    args = parser.parse_args()
    schemes = args.schemes.split(",")
    bad = [s for s in schemes if s not in ("dns", "frontend", "hybrid")]
    if bad:
        parser.error(f"--schemes: unknown {bad}; allowed: dns, frontend, hybrid")
    if not 1 <= args.repeat <= 20:
        parser.error(f"--repeat {args.repeat}: must be 1..20")
    result: dict[str, Any] = {
        "disaster": "primary power-off",
        "preset": "fast",
        "dns_ttl_s": 5,
        "repeat": args.repeat,
    }
    for scheme in schemes:
        lab = Lab("b" + secrets.token_hex(3))
        runs = []
        try:
            lab.up(LabSettings(scheme=scheme))
            start_agents(lab, preset="fast")
            wait("the active record", lambda: bool(etcd_get(lab, "active")), every=0.2)  # noqa: B023
            for n in range(args.repeat):
                runs.append(one_run(lab, n))
                r = runs[-1]
                print(
                    f"[{scheme} {n + 1}/{args.repeat}] served by dr {r['served_s']:.2f} s, "
                    f"promoted {r['promoted_s']:.2f} s, failback {r['failback_s']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            lab.down()
        for key in ("served_s", "promoted_s", "switched_s", "failback_s"):
            values = [r[key] for r in runs]
            result[f"{scheme}_{key.removesuffix('_s')}_median_s"] = round(
                statistics.median(values), 2
            )
            result[f"{scheme}_{key.removesuffix('_s')}_max_s"] = round(max(values), 2)
        result[f"{scheme}_served_runs_s"] = [round(r["served_s"], 2) for r in runs]
    report(result, args.out)


if __name__ == "__main__":
    main()
