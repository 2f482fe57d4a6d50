"""Small helpers for tests of draas and of deployments built with it (with ``FakeClock`` and
the in-memory coordination store, the product's own test kit)."""

from __future__ import annotations

import socket
import time


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
