"""Reachability and round-trip times between lab hosts, measured with ICMP echo (ping)."""

from __future__ import annotations

import re
import statistics
import subprocess
from dataclasses import dataclass

from draas.lab import netns

_RTT = re.compile(r"time=([0-9.]+) ms")


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    sent: int
    rtts_ms: tuple[float, ...]

    @property
    def reachable(self) -> bool:
        return bool(self.rtts_ms)

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.rtts_ms) if self.rtts_ms else None


def ping(
    src_ns: str,
    src: str,
    dst: str,
    address: str,
    count: int = 3,
    interval_s: float = 0.2,
    wait_s: float = 1.0,
) -> PingResult:
    """Ping ``address`` from inside ``src_ns`` (bounded: ``count`` probes, ``wait_s`` each)."""
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", f"{wait_s:g}", address]
    timeout = count * (interval_s + wait_s) + 5
    try:
        proc = subprocess.run(
            netns.in_ns(src_ns, argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        out = proc.stdout
    except subprocess.TimeoutExpired:
        out = ""
    rtts = tuple(float(m) for m in _RTT.findall(out))
    return PingResult(src, dst, count, rtts)
