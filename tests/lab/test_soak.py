"""The soak's CI version: two minutes of gray network (2 % loss, 20 ms jitter on both
sites) with the write load, production timings. Nothing fails over, no acknowledged write is
lost, no split-brain instant, every agent's memory stays flat. The 30-minute run is
``benchmarks/soak.py --minutes 30`` (README)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import new_lab_name

from draas.lab.lab import Lab
from draas.lab.soak import soak

pytestmark = pytest.mark.lab

OUT = (
    Path(os.environ.get("DRAAS_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    / "soak"
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab(new_lab_name())
    try:
        yield lab
    finally:
        lab.down()


def test_two_minutes_of_gray_wan_with_writes_change_nothing(lab: Lab) -> None:
    result = soak(lab, 120, OUT, print)
    print(json.dumps(result, indent=1))
    assert result["failovers"] == 0 and result["site_at_end"] == "primary", result
    assert result["lost_acked_writes"] == 0 and result["acked_writes"] > 200, result
    # Writes went on throughout (how many a second depends on the machine; none stalled).
    acked = sorted(
        float(r["t_end"])
        for r in map(json.loads, (OUT / "writes.jsonl").read_text().splitlines())
        if r["outcome"] == "acked"
    )
    gaps = [b - a for a, b in itertools.pairwise(acked)]
    assert max(gaps) < 10, f"writes stalled for {max(gaps):.1f} s"
    assert result["split_brain_instants"] == 0, result["split_brain"]
    for agent, mem in result["memory"].items():
        # flat: a leak of even 10 KiB a second would show as 1.7 MiB over the soak
        assert mem["growth_mib"] is not None and mem["growth_mib"] < 8, (agent, mem)
    assert (OUT / "memory.jsonl").exists() and (OUT / "soak.json").exists()
