"""Small helpers for tests of draas and of deployments built with it (with ``FakeClock`` and
the in-memory coordination store, the product's own test kit)."""

from __future__ import annotations

import socket
import time
from typing import Any

from draas.coordination import Event, Observation, Seen
from draas.health.probes import ProbeResult


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout_s: float = 20.0, what: str = "server") -> None:
    """Block until a TCP connection to host:port succeeds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                msg = f"{what} not listening on {host}:{port} after {timeout_s:g} s"
                raise TimeoutError(msg) from None
            time.sleep(0.1)


def observation(
    observer: str = "", at: float = 0.0, /, **targets: tuple[str, float]
) -> Observation:
    """An observation that sees each target in a state since a time: ``primary=("down", t)``."""
    seen = {t: Seen.from_dict({"state": s, "since": since}) for t, (s, since) in targets.items()}
    bad = {t: s for t, (s, _) in targets.items() if seen[t].state != s}
    if bad:
        raise ValueError(f"not a state (up, down, unknown): {bad}")
    return Observation(observer, at, seen)


def event(run: str, step: str, outcome: str, ts: float = 0.0, **fields: Any) -> Event:
    """An event with the given run, step and outcome (``runbook``, ``node``, ``epoch``... as
    keywords; anything else goes to its ``extra`` fields)."""
    return Event.from_dict({"run": run, "step": step, "outcome": outcome, "ts": ts, **fields})


class ScriptedProbe:
    """A probe whose answer the test sets (``ok``), counting its calls."""

    def __init__(self, ok: bool = True, detail: str = "scripted") -> None:
        self.ok = ok
        self.detail = detail
        self.calls = 0

    async def check(self) -> ProbeResult:
        self.calls += 1
        return ProbeResult(self.ok, 0.001, f"{self.detail}: {'ok' if self.ok else 'failed'}")
