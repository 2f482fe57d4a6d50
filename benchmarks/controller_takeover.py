"""No single decider, measured: the controller is killed (SIGKILL) at the moment the primary site
is powered off. How long until another agent holds the controller lease, and the RTO of the
failover it then runs (the RTO meter and the write checker of the experiments).

    .venv/bin/python benchmarks/controller_takeover.py --repeat 3 \\
        --out results/controller_takeover.json

Hybrid scheme, fast preset, semi-sync. The controller candidates are the sites' agents and the
witness (a frontend's agent also drives its data plane: killing it measures something else).
Each run starts clean (the primary active, the DR site the named standby), ends with the killed
agent started again and the failback done. Needs root. Writes flat JSON, prints a table.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from common import report

from draas.errors import LabError
from draas.lab import experiment
from draas.lab.agents import etcd_get, start_agents, wait_eligible
from draas.lab.disasters import PowerOff
from draas.lab.eventlog import first, read_events
from draas.lab.lab import Lab, LabSettings
from draas.lab.meters import Meters
from draas.lab.supervisor import ProcessSpec

CANDIDATES = ["site-primary", "site-dr", "witness"]


def wait(what: str, check: Any, timeout: float = 90.0, every: float = 0.05) -> float:
    try:
        return experiment.wait(what, check, timeout, every)
    except LabError as exc:
        raise SystemExit(str(exc)) from exc


def holder(lab: Lab) -> str | None:
    got = etcd_get(lab, "controller")
    return got[0] if got else None


def one_run(lab: Lab, n: int, out: Path) -> dict[str, Any]:
    epoch = 1 + 2 * n  # each run fails over and back: two new epochs
    wait("the primary serving", lambda: experiment.served_by(lab) == "primary", every=0.2)
    wait_eligible(lab, "dr", timeout_s=60)
    killed = wait("a controller", lambda: holder(lab), every=0.2) and holder(lab)
    assert killed is not None
    meters = Meters(lab, f"c{n}", out / f"run-{n}", duration_s=300)
    meters.start()
    time.sleep(3)
    name = f"agent-{killed}"
    spec = ProcessSpec.from_dict(lab.sup.record(name)["spec"])
    off = PowerOff(lab, host="primary")
    t0_wall, t0 = time.time(), time.monotonic()
    lab.sup.crash(name)
    off.inject()
    try:
        wait("another controller", lambda: holder(lab) not in (None, killed), every=0.02)
        takeover = time.monotonic() - t0
        successor = holder(lab)
        wait("the DR site serving", lambda: experiment.served_by(lab) == "dr")
        run = f"failover-dr-from-e{epoch}"
        wait(
            "the failover", lambda: first(read_events(lab), run=run, step="verify", outcome="done")
        )
        time.sleep(5)
    finally:
        meters.stop()
        lab.sup.start(spec)
        off.revert()
    rto = meters.rto(t0_wall)
    writes = meters.write_figures(t0_wall)
    lost = meters.writes_report("dr").lost
    lab.sup.wait_ready("mariadb-primary")
    back = f"failback-primary-from-e{epoch + 1}"
    wait("the failback", lambda: first(read_events(lab), run=back, step="verify", outcome="done"))
    return {
        "killed": killed,
        "took_over": successor,
        "takeover_s": round(takeover, 2),
        "rto_s": rto.rto_s,
        "write_rto_s": writes.get("write_rto_s"),
        "lost_acked_writes": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs (1..10)")
    parser.add_argument("--out", type=Path, default=Path("results/controller_takeover.json"))
    args = parser.parse_args()
    if not 1 <= args.repeat <= 10:
        parser.error(f"--repeat {args.repeat}: must be 1..10")
    lab = Lab("b" + secrets.token_hex(3))
    runs: list[dict[str, Any]] = []
    try:
        lab.up(LabSettings(scheme="hybrid"))
        start_agents(lab, preset="fast", replication="semi-sync", controllers=CANDIDATES)
        for n in range(args.repeat):
            row = one_run(lab, n, args.out.parent / "controller_takeover")
            print(f"run {n + 1}: {row}", flush=True)
            runs.append(row)
    finally:
        lab.down()

    def med(key: str) -> float | None:
        vals = [float(r[key]) for r in runs if r[key] is not None]
        return round(statistics.median(vals), 2) if vals else None

    result: dict[str, Any] = {
        "runs": len(runs),
        "takeover_median_s": med("takeover_s"),
        "takeover_max_s": max(float(r["takeover_s"]) for r in runs),
        "rto_median_s": med("rto_s"),
        "write_rto_median_s": med("write_rto_s"),
        "lost_acked_writes": sum(int(r["lost_acked_writes"]) for r in runs),
        "controller_ttl_s": 3.0,
        "killed": ",".join(str(r["killed"]) for r in runs),
        **{f"run{i + 1}_{k}": v for i, r in enumerate(runs) for k, v in r.items()},
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
