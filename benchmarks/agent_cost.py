"""What watching costs: the CPU the agents and their probes use in a quiet hybrid lab.

    .venv/bin/python benchmarks/agent_cost.py --seconds 60 --out results/agent_cost.json

Every agent probes both sites (web page and Keystone's /v3) and both frontends every 0.5 s
(fast preset) and publishes to etcd; with no user traffic, the services' CPU in the window is
what the probes cost them. Needs root. Writes flat JSON and prints a short table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import time
from pathlib import Path

from common import report

from draas.lab.agents import etcd_get, start_agents
from draas.lab.lab import Lab, LabSettings

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu_s(pid: int) -> float:
    """A process and its live descendants (uWSGI workers, HAProxy workers)."""
    total = cpu_s(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):  # it ended meanwhile
            total += tree_cpu_s(int(child))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("results/agent_cost.json"))
    parser.add_argument(
        "--replication",
        choices=("async", "semi-sync"),
        default="async",
        help="semi-sync: the active site's agent also keeps the sync record",
    )
    args = parser.parse_args()
    if not 10 <= args.seconds <= 600:
        parser.error(f"--seconds {args.seconds}: must be 10..600")
    lab = Lab("b" + secrets.token_hex(3))
    try:
        lab.up(LabSettings(scheme="hybrid"))
        start_agents(lab, preset="fast", replication=args.replication)
        deadline = time.monotonic() + 30
        while not etcd_get(lab, "active") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # past start-up
        names = [
            n
            for n in lab.sup.names()
            if n.startswith(("agent-", "keystone-", "web-", "haproxy-", "etcd-"))
        ]
        pids = {n: int(lab.sup.record(n)["pid"]) for n in names}
        before = {n: tree_cpu_s(p) for n, p in pids.items()}
        time.sleep(args.seconds)
        after = {n: tree_cpu_s(p) for n, p in pids.items()}
    finally:
        lab.down()
    pct = {n: round(100 * (after[n] - before[n]) / args.seconds, 2) for n in names}
    agents = {n: v for n, v in pct.items() if n.startswith("agent-")}
    result: dict[str, object] = {
        "seconds": args.seconds,
        "preset": "fast",
        "scheme": "hybrid",
        "replication": args.replication,
        "agents": len(agents),
        "agent_cpu_pct_max": max(agents.values()),
        "agent_cpu_pct_total": round(sum(agents.values()), 2),
        **{f"{n}_cpu_pct": v for n, v in sorted(pct.items())},
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
