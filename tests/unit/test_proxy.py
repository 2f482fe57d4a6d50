"""The embedded proxy engine on loopback, against two small upstream "sites"."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from draas.errors import TrafficError
from draas.testkit import free_port
from draas.traffic.frontend.proxy import ProxyEngine


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site = "?"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, body_in: bytes) -> None:
        doc = {
            "site": self.server.site,  # type: ignore[attr-defined]
            "path": self.path,
            "method": self.command,
            "headers": dict(self.headers.items()),
            "body_len": len(body_in),
        }
        if self.path.startswith("/big"):
            doc["pad"] = "x" * 300_000
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(b"")

    def do_HEAD(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(data)


@pytest.fixture
def sites() -> Iterator[tuple[int, dict[str, str]]]:
    port = free_port()
    servers = []
    for site, addr in (("a", "127.0.0.1"), ("b", "127.0.0.2")):
        srv = ThreadingHTTPServer((addr, port), Echo)
        srv.site = site  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    try:
        yield port, {"a": "127.0.0.1", "b": "127.0.0.2"}
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


@pytest.fixture
def proxy(sites: tuple[int, dict[str, str]]) -> Iterator[tuple[ProxyEngine, int]]:
    site_port, addrs = sites
    listen = free_port()
    engine = ProxyEngine(
        "fe", addrs, ports={listen: site_port}, bind="127.0.0.1", target="a", timeout_s=5
    )
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(engine.start(), loop).result(5)
    try:
        yield engine, listen
    finally:
        asyncio.run_coroutine_threadsafe(engine.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()


def request(
    port: int,
    method: str = "GET",
    path: str = "/",
    body: Any = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, Any]]:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    chunked = (headers or {}).get("Transfer-Encoding") == "chunked"
    try:
        c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = c.getresponse()
        data = resp.read()
    finally:
        if conn is None:
            c.close()
    return resp.status, (json.loads(data) if data and resp.status == 200 else {})


def test_switch_moves_the_next_request(proxy: tuple[ProxyEngine, int]) -> None:
    engine, port = proxy
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert request(port, conn=conn)[1]["site"] == "a"
    assert engine.point_to("b").changed
    assert request(port, conn=conn)[1]["site"] == "b"  # same client connection, new site
    conn.close()
    assert engine.served == {"a": 1, "b": 1}


def test_headers_host_kept_and_forwarding_added(proxy: tuple[ProxyEngine, int]) -> None:
    _, port = proxy
    _, doc = request(
        port,
        path="/x?y=1",
        headers={"Host": "keystone.example.org", "X-Forwarded-For": "203.0.113.9"},
    )
    h = doc["headers"]
    assert doc["path"] == "/x?y=1"
    assert h["Host"] == "keystone.example.org"
    assert h["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"


def test_bodies_stream_both_ways(proxy: tuple[ProxyEngine, int]) -> None:
    _, port = proxy
    _, doc = request(port, "POST", "/p", body=b"z" * 100_000)
    assert doc["body_len"] == 100_000
    chunks = iter([b"a" * 5000, b"b" * 7000])
    _, doc = request(port, "POST", "/p", body=chunks, headers={"Transfer-Encoding": "chunked"})
    assert doc["body_len"] == 12_000
    status, doc = request(port, path="/big")
    assert status == 200 and len(doc["pad"]) == 300_000
    assert request(port, "HEAD", "/")[0] == 200


def test_idempotent_request_retried_once_on_the_current_target(
    proxy: tuple[ProxyEngine, int],
) -> None:
    engine, port = proxy
    engine.sites["dead"] = "127.0.0.3"  # nothing listens there
    engine.target = "dead"
    switched: list[str] = []

    real = engine._connect

    async def connect_then_switch(site: str, p: int) -> Any:
        if site == "dead" and not switched:
            switched.append(site)
            engine.target = "b"  # the controller moved traffic meanwhile
        return await real(site, p)

    engine._connect = connect_then_switch  # type: ignore[method-assign,assignment]
    status, doc = request(port)
    assert status == 200 and doc["site"] == "b"
    engine.target = "dead"
    assert request(port, "POST", "/p", body=b"x")[0] == 502  # a POST is never retried


def test_unknown_target_changes_nothing(proxy: tuple[ProxyEngine, int]) -> None:
    engine, _ = proxy
    with pytest.raises(TrafficError, match="unknown site 'c'"):
        engine.point_to("c")
    assert engine.current() == "a"
    assert engine.check().ok


def test_redirect_mode_answers_302_to_the_target(sites: tuple[int, dict[str, str]]) -> None:
    site_port, addrs = sites
    listen = free_port()
    engine = ProxyEngine(
        "fe", addrs, ports={listen: site_port}, bind="127.0.0.1", target="b", redirect=True
    )

    async def run() -> tuple[int, str | None]:
        await engine.start()
        try:

            def ask() -> tuple[int, str | None]:
                c = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
                c.request("GET", "/v3?x=1")
                r = c.getresponse()
                r.read()
                c.close()
                return r.status, r.getheader("Location")

            return await asyncio.to_thread(ask)
        finally:
            await engine.stop()

    status, location = asyncio.run(run())
    assert status == 302
    assert location == f"http://127.0.0.2:{site_port}/v3?x=1"


def test_autonomous_mode_routes_around_a_dead_site_and_back_when_it_returns(
    sites: tuple[int, dict[str, str]],
) -> None:
    """The baseline's behaviour, including its flaw: a returning site gets traffic at once."""
    site_port, addrs = sites
    listen = free_port()
    engine = ProxyEngine(
        "fe",
        addrs,
        ports={listen: site_port},
        bind="127.0.0.1",
        target="a",
        autonomous=True,
        check_interval_s=0.05,
        rise=2,
        fall=2,
    )

    async def settles_on(site: str) -> str:
        for _ in range(100):  # 2 checks of 0.05 s are enough; a loaded machine gets 5 s
            if engine.current() == site:
                break
            await asyncio.sleep(0.05)
        return engine.current() or ""

    async def run() -> list[str]:
        await engine.start()
        seen = []
        try:
            seen.append(engine.current() or "")
            engine.sites["a"] = "127.0.0.4"  # "a" dies: nothing answers at its address now
            seen.append(await settles_on("b"))
            engine.sites["a"] = "127.0.0.1"  # "a" is back (stale or not: it gets traffic)
            seen.append(await settles_on("a"))
        finally:
            await engine.stop()
        return seen

    assert asyncio.run(run()) == ["a", "b", "a"]
