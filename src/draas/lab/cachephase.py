"""Where the client's DNS cache is in its cycle, so that an experiment strikes at a chosen
moment of it. The lab's resolver (Unbound) counts a TTL in whole seconds of its clock and
answers from its cache through the second in which the TTL reads 0: an answer it shows with
TTL ``T`` during second ``s`` is fetched again at the first question in second ``s + T + 1``
(checked in the lab: TTL 5 from 467.0 to 467.9, ... 0 in 472, 5 again at 473.0). The meter asks
every 0.1 s, so the cycle is ``TTL + 1`` seconds, aligned with whole seconds.

An experiment's RTO in the DNS scheme is mostly the part of that cycle left at the switch.
Random moments need many runs for a stable median; stratified ones (run ``r`` of ``n`` at a
random moment of the ``r``-th ``n``-th of the cycle) cover the cycle evenly with few.
"""

from __future__ import annotations

import math
import random
import time

from draas.lab.components.bind9 import SERVICE_NAME
from draas.lab.lab import Lab


def answer_ttl(lab: Lab, tries: int = 3) -> tuple[float, int] | None:
    """(a wall-clock time within the second the answer was given in, the TTL the client's
    resolver gave the service's name); None when it did not answer. An answer whose
    question and reply fall in different seconds is asked again (its second is unknown)."""
    for _ in range(tries):
        before = time.time()
        got = lab.exec(
            "client",
            ["dig", "+noall", "+answer", "+time=1", "+tries=1", "@127.0.0.1", SERVICE_NAME],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if math.floor(time.time()) != math.floor(before):
            continue
        for line in got.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[3] == "A" and fields[1].isdigit():
                return before, int(fields[1])
        return None
    return None


def next_refetch(answered_at: float, ttl_left: int) -> float:
    """When the resolver fetches the name again, from one answer (``answered_at``: in the
    second it was given in)."""
    return math.floor(answered_at) + ttl_left + 1


def strike_at(
    refetch: float, cycle_s: float, not_before: float, run: int, of: int, rng: random.Random
) -> tuple[float, float]:
    """(when to strike, its phase in the cycle): a random moment of the ``run``-th ``of``-th
    of the cycle (1-based), in the first cycle that starts late enough."""
    if not 1 <= run <= of:
        raise ValueError(f"run {run} of {of}: allowed 1 <= run <= of")
    phase = (run - 1 + rng.random()) / of * cycle_s
    cycles = max(0, math.ceil((not_before - refetch - phase) / cycle_s))
    return refetch + cycles * cycle_s + phase, phase
