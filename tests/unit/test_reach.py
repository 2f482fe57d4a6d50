"""The hard-failure check against real sockets on loopback: a port that accepts is
reachable, one that refuses is not, and one of several ports accepting is enough."""

from __future__ import annotations

import asyncio
import socket

from draas.health.probes import ReachProbe
from draas.testkit import free_port


def test_a_listening_port_is_reachable_and_a_closed_one_is_not() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        open_port = server.getsockname()[1]
        closed = free_port()
        up = asyncio.run(ReachProbe("127.0.0.1", [open_port], timeout_s=0.5).check())
        down = asyncio.run(ReachProbe("127.0.0.1", [closed], timeout_s=0.5).check())
        either = asyncio.run(ReachProbe("127.0.0.1", [closed, open_port], timeout_s=0.5).check())
    assert up.ok and "accepts TCP connections" in up.detail
    assert not down.ok and f"127.0.0.1:{closed}" in down.detail and "Refused" in down.detail
    assert either.ok
