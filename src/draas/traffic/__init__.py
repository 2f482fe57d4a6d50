"""Moving users' traffic: the one interface every DNS provider and frontend engine implements.

``point_to(target)`` moves traffic (idempotent: pointing where it already points is a no-op
that still verifies), ``current()`` reads where traffic goes now, ``check()`` proves the
credentials and the path work without changing anything. The base class owns the
bookkeeping: input validation, retries with backoff for retryable errors (never for fatal
ones), timing and logging; each implementation writes only its ``_point_to``/``_current``.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from draas.errors import ProviderBlocked, TrafficError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchResult:
    target: str
    previous: str | None
    changed: bool
    attempts: int
    took_s: float


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


class TrafficSwitch(ABC):
    """A thing that decides where users' requests go."""

    kind: str = "switch"

    def __init__(
        self, name: str, *, retries: int = 4, backoff_s: float = 0.5, deadline_s: float = 30.0
    ) -> None:
        self.name = name
        self.retries = retries
        self.backoff_s = backoff_s
        self.deadline_s = deadline_s

    def validate_target(self, target: str) -> str:
        """Refuse a bad target before anything is sent; return it normalized."""
        if not target:
            raise TrafficError(f"{self.kind} {self.name}: empty target")
        return target

    def point_to(self, target: str) -> SwitchResult:
        target = self.validate_target(target)
        t0 = time.monotonic()
        previous = self._safe_current()
        attempt = 0
        while True:
            attempt += 1
            try:
                changed = self._point_to(target)
                break
            except ProviderBlocked:
                raise
            except TrafficError as exc:
                waited = time.monotonic() - t0
                if not exc.retryable or attempt > self.retries or waited >= self.deadline_s:
                    log.error(
                        "%s %s: giving up on %s after %d attempt(s): %s",
                        self.kind,
                        self.name,
                        target,
                        attempt,
                        exc,
                    )
                    raise
                pause = min(self.backoff_s * 2 ** (attempt - 1), self.deadline_s - waited)
                log.warning(
                    "%s %s: attempt %d to point at %s failed (%s); retrying in %.1f s",
                    self.kind,
                    self.name,
                    attempt,
                    target,
                    exc,
                    pause,
                )
                time.sleep(max(0.0, pause))
        took = time.monotonic() - t0
        log.info(
            "%s %s: points at %s (was %s, %s, %d attempt(s), %.0f ms)",
            self.kind,
            self.name,
            target,
            previous,
            "changed" if changed else "unchanged",
            attempt,
            took * 1000,
        )
        return SwitchResult(target, previous, changed, attempt, took)

    def _safe_current(self) -> str | None:
        try:
            return self.current()
        except TrafficError:
            return None

    @abstractmethod
    def _point_to(self, target: str) -> bool:
        """Move traffic to ``target`` and verify it; return whether anything changed."""

    @abstractmethod
    def current(self) -> str | None:
        """Where traffic goes now (None when it cannot be known)."""

    @abstractmethod
    def check(self) -> CheckResult:
        """Prove the credentials and the path work, changing nothing."""
