"""The RTO meter's client: every ``interval`` it sends each check's request as a real client
would (the name resolved through the system resolver for every connection, a new connection
each time, a per-request timeout) and writes one JSON line per request.

Bounded: it stops after ``duration`` seconds, and at most ``MAX_IN_FLIGHT`` requests are open
at once (a tick whose requests would exceed that is recorded as failed, not sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from draas.errors import DraasError

MAX_IN_FLIGHT = 64
MAX_RESPONSE = 1 << 20  # bytes of an answer read at most
SITE_PATTERN = r"site=([A-Za-z0-9_-]+)"


@dataclass(frozen=True)
class Check:
    name: str
    url: str
    expect_status: int = 200
    expect_body: str | None = None

    def __post_init__(self) -> None:
        u = urlsplit(self.url)
        if u.scheme != "http" or not u.hostname:
            raise DraasError(f"URL {self.url!r}: only http://HOST[:PORT]/PATH URLs are supported")


async def request(check: Check, timeout_s: float, site_re: re.Pattern[str]) -> dict[str, Any]:
    u = urlsplit(check.url)
    host, port = u.hostname or "", u.port or 80
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    t0 = time.time()
    rec: dict[str, Any] = {
        "t": round(t0, 6),
        "check": check.name,
        "ok": False,
        "addr": None,
        "status": None,
        "site": None,
        "error": "",
    }
    deadline = time.monotonic() + timeout_s
    writer = None
    try:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
        addr = str(infos[0][4][0])
        rec["addr"] = addr
        left = max(0.01, deadline - time.monotonic())
        reader, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), left)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUser-Agent: draas-rto\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        raw = b""
        while len(raw) < MAX_RESPONSE:  # the whole answer: "Connection: close" ends it
            left = max(0.01, deadline - time.monotonic())
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                break
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        rec["status"] = int(status_line[1]) if len(status_line) > 1 else None
        text = body.decode(errors="replace")
        m = site_re.search(text)
        rec["site"] = m.group(1) if m else None
        rec["ok"] = rec["status"] == check.expect_status and (
            check.expect_body is None or check.expect_body in text
        )
        if not rec["ok"]:
            rec["error"] = f"status {rec['status']}" + (
                ""
                if check.expect_body is None or check.expect_body in text
                else f", body lacks {check.expect_body!r}"
            )
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        if writer is not None:
            writer.close()
    rec["latency_s"] = round(time.time() - t0, 6)
    return rec


async def run(
    checks: Sequence[Check],
    *,
    interval_s: float,
    timeout_s: float,
    duration_s: float,
    out: TextIO,
    site_pattern: str = SITE_PATTERN,
    progress: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """Measure for ``duration_s`` (or until ``stop`` is set); write and return every record."""
    site_re = re.compile(site_pattern)
    records: list[dict[str, Any]] = []
    in_flight: set[asyncio.Task[None]] = set()
    t_start = time.monotonic()
    last_report = t_start
    window: list[dict[str, Any]] = []

    async def one(check: Check, tick: int) -> None:
        rec = await request(check, timeout_s, site_re)
        rec["tick"] = tick
        records.append(rec)
        window.append(rec)
        out.write(json.dumps(rec) + "\n")

    tick = 0
    while (elapsed := time.monotonic() - t_start) < duration_s and not (stop and stop.is_set()):
        for check in checks:
            if len(in_flight) >= MAX_IN_FLIGHT:
                rec = {
                    "t": round(time.time(), 6),
                    "tick": tick,
                    "check": check.name,
                    "ok": False,
                    "error": "too many requests in flight",
                    "latency_s": None,
                }
                records.append(rec)
                out.write(json.dumps(rec) + "\n")
                continue
            task = asyncio.create_task(one(check, tick))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        tick += 1
        if progress is not None and time.monotonic() - last_report >= 1.0:
            ok = sum(1 for r in window if r["ok"])
            sites = sorted({str(r["site"]) for r in window if r.get("site")})
            progress(
                f"[{elapsed:5.1f} s] {ok}/{len(window)} ok, answered by "
                f"{', '.join(sites) or 'nobody'}"
            )
            window.clear()
            last_report = time.monotonic()
        pause = max(0.0, t_start + tick * interval_s - time.monotonic())
        if stop is None:
            await asyncio.sleep(pause)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
    if in_flight:
        await asyncio.wait(in_flight, timeout=timeout_s + 1)
    out.flush()
    return records


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
