"""Run the embedded proxy engine inside a lab host from this process (tests, benchmarks):
its listening and upstream sockets are created in the host's namespace, its event loop runs
in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from draas.lab import netns
from draas.lab.lab import Lab
from draas.traffic.frontend.proxy import ProxyEngine


@contextlib.contextmanager
def proxy_in(
    lab: Lab, host: str, sites: dict[str, str], ports: dict[int, int], **kw: Any
) -> Iterator[ProxyEngine]:
    ns = lab.ns(host)
    addr = lab.topo.host(host).address

    def listen(port: int) -> socket.socket:
        s = netns.socket_in(ns)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(64)
        return s

    engine = ProxyEngine(host, sites, ports=ports, socket_factory=lambda: netns.socket_in(ns), **kw)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"proxy-{host}", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(engine.start(listen), loop).result(10)
        yield engine
    finally:
        asyncio.run_coroutine_threadsafe(engine.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
