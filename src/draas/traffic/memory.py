"""An in-memory traffic switch: where traffic goes is a field. Part of the test kit: runbooks
and the contract suite of ``TrafficSwitch`` run against it. ``fail_next`` makes the next
attempts fail (retryable by default), as a DNS server that is down does."""

from __future__ import annotations

from draas.errors import TrafficError
from draas.traffic import CheckResult, TrafficSwitch


class MemorySwitch(TrafficSwitch):
    kind = "memory"

    def __init__(self, name: str = "memory", target: str | None = None) -> None:
        super().__init__(name, retries=3, backoff_s=0.0, deadline_s=5.0)
        self.target = target
        self.fail_next = 0
        self.fail_retryable = True
        self.moves: list[str] = []

    def _point_to(self, target: str) -> bool:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TrafficError(
                f"{self.name}: cannot reach the switch", retryable=self.fail_retryable
            )
        changed = self.target != target
        self.target = target
        if changed:
            self.moves.append(target)
        return changed

    def current(self) -> str | None:
        return self.target

    def check(self) -> CheckResult:
        if self.fail_next > 0:
            return CheckResult(False, f"{self.name}: cannot reach the switch")
        return CheckResult(True, f"{self.name} points at {self.target}")
