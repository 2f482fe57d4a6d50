"""The soak's memory figures from an agent's samples: settled first value, last, peak,
growth and slope."""

from __future__ import annotations

from draas.lab.soak import memory_growth


def test_memory_growth_reads_the_settled_samples() -> None:
    samples = [
        {"t": t, "a": 100 * 1024 + (0 if t < 60 else (t - 60) * 10)} for t in range(0, 400, 10)
    ]
    got = memory_growth(samples, "a", settle_s=60)
    assert got["first_mib"] == 100.0 and got["growth_mib"] == round(330 * 10 / 1024, 2)
    assert got["slope_mib_per_h"] == round(10 * 3600 / 1024, 2)
    assert memory_growth([], "a")["growth_mib"] is None
