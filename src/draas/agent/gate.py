"""One runbook at a time per agent: the controller's runs and the operator's commands take
the gate; whoever finds it taken is told what holds it."""

from __future__ import annotations

import threading


class RunbookGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: str | None = None  # the run id while one runs

    def try_enter(self, run: str) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        self.running = run
        return True

    def leave(self) -> None:
        self.running = None
        self._lock.release()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no run holds the gate; False if one still does after ``timeout_s``."""
        if self._lock.acquire(timeout=timeout_s):
            self._lock.release()
            return True
        return False
