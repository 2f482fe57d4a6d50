"""The moment an experiment strikes in the client's DNS cache cycle (draas.lab.cachephase)."""

from __future__ import annotations

import random

import pytest

from draas.lab.cachephase import next_refetch, strike_at


def test_the_resolver_fetches_again_in_the_second_after_its_ttl_read_zero() -> None:
    # Seen in the lab: TTL 5 during second 467, ... 0 during 472, fetched again at 473.0.
    assert next_refetch(467.2, 5) == 473
    assert next_refetch(472.9, 0) == 473
    assert next_refetch(470.0, 2) == 473


def test_n_runs_strike_once_in_each_nth_of_the_cycle_never_before_the_warm_up() -> None:
    rng = random.Random(5)
    cycle, refetch, not_before = 6.0, 473.0, 480.0
    phases = []
    for run in range(1, 11):
        at, phase = strike_at(refetch, cycle, not_before, run, 10, rng)
        assert not_before <= at < not_before + cycle
        assert (at - refetch) % cycle == pytest.approx(phase)
        phases.append(phase)
    assert [int(p // (cycle / 10)) for p in phases] == list(range(10))
    with pytest.raises(ValueError, match="run 0 of 3"):
        strike_at(refetch, cycle, not_before, 0, 3, rng)
