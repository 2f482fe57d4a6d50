"""The background runner of a periodic check: a probe round never waits for it (after the
first), and a result counts in the rounds until the next run finishes."""

from __future__ import annotations

import asyncio

from draas.health.probes import Periodic, ProbeResult


class SlowCheck:
    """A check that takes ``seconds`` and answers the given outcomes in turn."""

    def __init__(self, seconds: float, outcomes: list[bool]) -> None:
        self.seconds, self.outcomes, self.runs = seconds, outcomes, 0

    async def check(self) -> ProbeResult:
        await asyncio.sleep(self.seconds)
        ok = self.outcomes[min(self.runs, len(self.outcomes) - 1)]
        self.runs += 1
        return ProbeResult(ok, self.seconds, f"run {self.runs}")


def test_rounds_use_the_last_finished_run_and_never_wait_after_the_first() -> None:
    async def go() -> list[tuple[bool, str, float]]:
        inner = SlowCheck(0.05, [True, False, True])
        p = Periodic(inner, interval_s=0.2)
        out = []
        loop = asyncio.get_running_loop()
        for _ in range(8):  # a round every 0.1 s
            t0 = loop.time()
            r = await p.check()
            out.append((r.ok, r.detail, loop.time() - t0))
            await asyncio.sleep(0.1)
        return out

    rounds = asyncio.run(go())
    assert rounds[0][:2] == (True, "run 1") and rounds[0][2] >= 0.04  # the first is awaited
    assert all(took < 0.03 for _, _, took in rounds[1:])  # the others answer at once
    details = [d for _, d, _ in rounds]
    assert details.count("run 2") in (1, 2, 3) and "run 3" in details  # each run counts a while
    failed = [ok for ok, d, _ in rounds if d == "run 2"]
    assert failed and not any(failed)
