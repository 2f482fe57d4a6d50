"""The soak: a long stretch of gray network on the WAN (packet loss and jitter on both sites'
traffic) with the write load and the meters running, in a DNS-scheme lab with semi-sync
replication and the production (``normal``) timings. What must hold: no failover at all (every
one would be false), no acknowledged write lost, no split-brain instant, and the agents'
memory flat. ``memory_growth`` (pure) reads the agents' memory samples.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from draas.errors import InvalidInput, LabError
from draas.lab.agents import etcd_get, nodes_for, start_agents
from draas.lab.disasters import GrayNetwork
from draas.lab.lab import Lab, LabSettings
from draas.lab.meters import Meters

Progress = Callable[[str], None]
MEMORY_EVERY_S = 10.0


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process (VmRSS, KiB); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_growth(
    samples: Sequence[Mapping[str, Any]], agent: str, settle_s: float = 60.0
) -> dict[str, float | None]:
    """An agent's memory over the soak, from ``{"t", agent: KiB}`` samples: the first value
    after ``settle_s`` (start-up allocations done), the last, the peak, the growth between
    them in MiB and the least-squares slope in MiB per hour."""
    pts = [(float(s["t"]), float(s[agent])) for s in samples if s.get(agent) is not None]
    if not pts:
        return {
            "first_mib": None,
            "last_mib": None,
            "peak_mib": None,
            "growth_mib": None,
            "slope_mib_per_h": None,
        }
    t0 = pts[0][0]
    settled = [(t, v) for t, v in pts if t - t0 >= settle_s] or pts
    first, last = settled[0][1] / 1024, settled[-1][1] / 1024
    slope = 0.0
    if len(settled) >= 3:
        ts = [t for t, _ in settled]
        vs = [v / 1024 for _, v in settled]
        mt, mv = statistics.fmean(ts), statistics.fmean(vs)
        den = sum((t - mt) ** 2 for t in ts)
        slope = sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / den * 3600
    return {
        "first_mib": round(first, 2),
        "last_mib": round(last, 2),
        "peak_mib": round(max(v for _, v in pts) / 1024, 2),
        "growth_mib": round(last - first, 2),
        "slope_mib_per_h": round(slope, 2),
    }


def soak(
    lab: Lab,
    seconds: float,
    out: Path,
    progress: Progress,
    loss_pct: float = 2.0,
    jitter_ms: float = 20.0,
    preset: str = "normal",
) -> dict[str, Any]:
    """Build the lab and soak it for ``seconds`` (the caller tears it down, also on error);
    return the figures, also written to ``out``."""
    if not 30 <= seconds <= 4 * 3600:
        raise InvalidInput(f"soak: {seconds:g} s is outside 30 s..4 h")
    out.mkdir(parents=True, exist_ok=True)
    progress(f"building the lab {lab.name} (DNS scheme, semi-sync, {preset} timings)")
    lab.up(LabSettings(scheme="dns"))
    start_agents(lab, preset=preset, replication="semi-sync")
    deadline = time.monotonic() + 60
    while not etcd_get(lab, "active"):
        if time.monotonic() > deadline:
            raise LabError("soak: no agent took the active lease within 60 s")
        time.sleep(0.5)
    agents = {f"agent-{n}": int(lab.sup.record(f"agent-{n}")["pid"]) for n in nodes_for("dns")}
    meters = Meters(lab, "soak", out, duration_s=seconds + 120)
    meters.start()
    time.sleep(5)
    gray = GrayNetwork(lab, hosts=["primary", "dr"], loss_pct=loss_pct, jitter_ms=jitter_ms)
    t0 = time.time()
    gray.inject()
    progress(
        f"gray network on: {loss_pct:g} % loss, {jitter_ms:g} ms jitter on both sites, "
        f"for {seconds:g} s"
    )
    memory: list[dict[str, Any]] = []
    end = time.monotonic() + seconds
    next_report = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            memory.append(
                {"t": round(time.time(), 1), **{a: rss_kib(pid) for a, pid in agents.items()}}
            )
            if time.monotonic() >= next_report:
                left = end - time.monotonic()
                progress(
                    f"  {time.time() - t0:6.0f} s soaked, {left:5.0f} s left; agents' "
                    f"memory (MiB): "
                    + ", ".join(f"{a[6:]} {(memory[-1][a] or 0) / 1024:.1f}" for a in agents)
                )
                next_report += 60
            time.sleep(min(MEMORY_EVERY_S, max(0.0, end - time.monotonic())))
    finally:
        gray.revert()
    time.sleep(5)
    meters.stop()
    site = (
        str(json.loads(etcd_get(lab, "active")[0])["site"])
        if etcd_get(lab, "active")
        else "primary"
    )
    runs = {json.loads(e).get("run", "") for e in etcd_get(lab, "events/", prefix=True)}
    failovers = sorted(r for r in runs if str(r).startswith("failover-"))
    wr = meters.writes_report(site)
    reads = meters.rto(t0)
    split = meters.split_brain() or []
    result: dict[str, Any] = {
        "seconds": seconds,
        "loss_pct": loss_pct,
        "jitter_ms": jitter_ms,
        "preset": preset,
        "failovers": len(failovers),
        "false_failovers": len(failovers),
        "acked_writes": wr.acked,
        "lost_acked_writes": wr.lost,
        "failed_writes": wr.failed,
        "unknown_writes": wr.unknown,
        "read_availability": reads.availability,
        "read_downtime_s": round(reads.downtime_s, 3),
        **meters.write_figures(t0),
        "split_brain_instants": len(split),
        "split_brain": split[:5],
        "site_at_end": site,
        "memory": {
            a[6:]: memory_growth(memory, a, settle_s=min(60.0, seconds / 4)) for a in agents
        },
    }
    (out / "memory.jsonl").write_text("".join(json.dumps(m) + "\n" for m in memory))
    (out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
