"""How likely one probe fails on a path, from the path's round trip, its per-packet loss and
jitter (each packet's delay moved by ``uniform(-jitter, +jitter)``, as the lab's WAN emulator
does) and the probe's timeout, with TCP's retransmission timers (Linux: a lost SYN is sent
again after 1 s, then 2 s more; a lost data segment after the 200 ms minimum, doubling)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np

SYN_RETRIES_S = (0.0, 1.0, 3.0, 7.0, 15.0)  # when a connect's SYN is sent (Linux defaults)
DATA_RTO_S = 0.2  # Linux's minimum retransmission timeout for a data segment
MAX_LOSSES = 4  # data retransmissions looked at per segment (beyond: negligible or timed out)
GRID = 2001  # points of the discretized jitter distribution


@dataclasses.dataclass(frozen=True)
class Path:
    """Between an observer and what it probes."""

    rtt_s: float = 0.001
    loss: float = 0.0  # per packet, each direction
    jitter_s: float = 0.0  # each packet's delay moved by uniform(-jitter, +jitter)

    def __post_init__(self) -> None:
        if not 0 <= self.loss < 1:
            raise ValueError(f"loss {self.loss}: allowed 0 <= loss < 1")
        if self.rtt_s < 0 or self.jitter_s < 0:
            raise ValueError("rtt_s and jitter_s: allowed 0 or more")


def jitter_within(path: Path, packets: int, budget_s: float) -> float:
    """P(the jitter of ``packets`` one-way trips adds at most ``budget_s``)."""
    if path.jitter_s == 0 or packets == 0:
        return 1.0 if budget_s >= 0 else 0.0
    j = path.jitter_s
    if budget_s >= packets * j:
        return 1.0
    if budget_s < -packets * j:
        return 0.0
    # The sum of ``packets`` uniform(-j, j): the uniform's density convolved with itself.
    one = np.full(GRID, 1.0 / GRID)
    dens = one
    for _ in range(packets - 1):
        dens = np.convolve(dens, one)
    xs = np.linspace(-packets * j, packets * j, dens.size)
    return float(dens[xs <= budget_s].sum())


def connect_fails(path: Path, timeout_s: float) -> float:
    """P(a TCP connect is not established within ``timeout_s``): SYN and SYN-ACK both
    delivered, in time, on one of the tries."""
    through = (1 - path.loss) ** 2
    ok = 0.0
    for k, sent in enumerate(SYN_RETRIES_S):
        ok += (1 - through) ** k * through * jitter_within(path, 2, timeout_s - sent - path.rtt_s)
    return _clip(1 - ok)


def http_fails(path: Path, timeout_s: float) -> float:
    """P(an HTTP request on a new connection is not answered within ``timeout_s``): the
    connect, then the request and the response, each segment retransmitted when lost."""
    through = (1 - path.loss) ** 2
    seg = path.loss
    ok = 0.0
    for k, sent in enumerate(SYN_RETRIES_S):
        p_conn = (1 - through) ** k * through
        if p_conn < 1e-15:
            break
        for i, j in itertools.product(range(MAX_LOSSES), repeat=2):
            p = p_conn * seg**i * (1 - seg) * seg**j * (1 - seg)
            if p < 1e-15:
                continue
            waited = sent + _retransmitted(i) + _retransmitted(j) + 2 * path.rtt_s
            ok += p * jitter_within(path, 4, timeout_s - waited)
    return _clip(1 - ok)


def _retransmitted(losses: int) -> float:
    return float(sum(DATA_RTO_S * 2**n for n in range(losses)))


def _clip(p: float) -> float:
    return 0.0 if p < 1e-12 else min(1.0, p)


def any_fails(each: Sequence[float]) -> float:
    """P(a round of independent probes, each failing with its own chance, has a failure)."""
    return _clip(1 - math.prod(1 - p for p in each))


def per_year(rate_per_s: float) -> float:
    return rate_per_s * 365.25 * 86400 if math.isfinite(rate_per_s) else math.inf
