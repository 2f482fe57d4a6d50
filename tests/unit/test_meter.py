"""The RTO meter's client against a real HTTP server on loopback: every request recorded
with its status, address and answering site; failures (refused, wrong body, timeout) are
recorded as failures; the run is bounded by its duration."""

from __future__ import annotations

import asyncio
import io
import json
import re

from draas.measure import meter
from draas.measure.rto import summarize


class Server:
    """Answers 200 ``site=a`` until ``broken``; then 503; ``silent`` never answers."""

    def __init__(self) -> None:
        self.broken = False
        self.silent = False
        self.split = False  # headers first, the body 50 ms later

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if self.silent:
            await asyncio.sleep(0.3)  # past the client's timeout
        elif self.split:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"<p>site=b</p>ok\n")
        elif self.broken:
            writer.write(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\n\r\ndown")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n<p>site=a</p>ok\n")
        await writer.drain()
        writer.close()


async def scenario() -> tuple[list[dict[str, object]], str, float]:
    srv = Server()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    checks = [meter.Check("web", f"http://127.0.0.1:{port}/", expect_body="ok")]
    out = io.StringIO()

    async def disaster() -> float:
        await asyncio.sleep(0.5)
        srv.broken = True
        t = asyncio.get_running_loop().time()
        await asyncio.sleep(0.5)
        srv.broken = False
        return t

    task = asyncio.create_task(disaster())
    t0 = asyncio.get_running_loop().time()
    records = await meter.run(checks, interval_s=0.05, timeout_s=0.5, duration_s=1.5, out=out)
    took = asyncio.get_running_loop().time() - t0
    await task
    server.close()
    await server.wait_closed()
    return records, out.getvalue(), took


def test_meter_records_every_request_and_the_outage() -> None:
    records, written, took = asyncio.run(scenario())
    assert took < 1.5 + 0.5 + 1.0  # bounded by its duration (plus the last requests' timeout)
    assert [json.loads(line) for line in written.splitlines()] == records
    assert 20 <= len(records) <= 31
    ok = [r for r in records if r["ok"]]
    bad = [r for r in records if not r["ok"]]
    assert ok and all(r["site"] == "a" and r["status"] == 200 for r in ok)
    assert bad and all(r["status"] == 503 for r in bad)
    assert all(r["addr"] == "127.0.0.1" for r in records)
    s = summarize(records, disaster_t=min(float(str(r["t"])) for r in bad) - 0.01)
    assert len(s.windows) == 1 and 0.35 <= s.windows[0].duration_s <= 0.7
    assert s.rto_s is not None and s.recovered_site == "a"


def test_refused_and_timed_out_requests_are_failures() -> None:
    async def go() -> list[dict[str, object]]:
        refused = await meter.request(
            meter.Check("x", "http://127.0.0.1:9/"), 0.5, re.compile(meter.SITE_PATTERN)
        )
        srv = Server()
        srv.silent = True
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        slow = await meter.request(
            meter.Check("y", f"http://127.0.0.1:{port}/"), 0.2, re.compile(meter.SITE_PATTERN)
        )
        await asyncio.sleep(0.2)  # let the silent handler finish and close its socket
        server.close()
        await server.wait_closed()
        return [refused, slow]

    refused, slow = asyncio.run(go())
    assert refused["ok"] is False and "Connection" in str(refused["error"])
    assert slow["ok"] is False and "Timeout" in str(slow["error"])
    assert float(slow["latency_s"]) < 0.5  # type: ignore[arg-type]


def test_an_answer_in_several_segments_is_read_to_its_end() -> None:
    async def go() -> dict[str, object]:
        srv = Server()
        srv.split = True
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rec = await meter.request(
            meter.Check("s", f"http://127.0.0.1:{port}/", expect_body="ok"),
            1.0,
            re.compile(meter.SITE_PATTERN),
        )
        server.close()
        await server.wait_closed()
        return rec

    rec = asyncio.run(go())
    assert rec["ok"] is True and rec["site"] == "b"
