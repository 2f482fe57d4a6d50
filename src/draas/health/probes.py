"""Probes: the I/O side of health checking, asyncio, each bounded by its timeout.

- ``HttpProbe``: one GET, status and (optionally) a string the body must contain, e.g.
  Keystone's version document says ``stable``. Cheap: run it often.
- ``KeystoneProbe``: the deep probe. An authenticated read (``GET /v3/projects?limit=1``) with a
  token it reuses until Keystone refuses it: it proves the API, the database path and the keys
  work, without paying for a password login (about 300 ms of CPU) on every probe.
- ``TcpProbe``: a TCP connect.

``socket_factory`` lets the lab open the probes' sockets inside a host's namespace.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

SocketFactory = Callable[[], socket.socket]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_s: float
    detail: str


class Probe(Protocol):
    """One health check aimed at one target; never raises, its result says what failed."""

    async def check(self) -> ProbeResult: ...


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Response = tuple[int, dict[str, str], bytes]


async def _open(host: str, port: int, timeout: float, factory: SocketFactory | None) -> Conn:
    if factory is None:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    sock = factory()
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def http_request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 1.0,
    factory: SocketFactory | None = None,
) -> Response:
    """One HTTP/1.1 request with ``Connection: close``; (status, headers, body)."""
    u = urlsplit(url)
    host, port = u.hostname or "", u.port or 80
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")

    async def go() -> Response:
        reader, writer = await _open(host, port, timeout, factory)
        try:
            lines = [
                f"{method} {path} HTTP/1.1",
                f"Host: {u.netloc}",
                "Connection: close",
                "User-Agent: draas-probe",
            ]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            if body is not None:
                lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            await writer.drain()
            raw = await reader.read()  # until the server closes (Connection: close)
        finally:
            writer.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in hdr_lines:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return int(status_line.split(" ")[1]), hdrs, rest

    return await asyncio.wait_for(go(), timeout)


class HttpProbe:
    def __init__(
        self,
        url: str,
        expect_status: int = 200,
        expect_body: str | None = None,
        timeout_s: float = 1.0,
        socket_factory: SocketFactory | None = None,
    ) -> None:
        self.url = url
        self.expect_status = expect_status
        self.expect_body = expect_body
        self.timeout_s = timeout_s
        self.factory = socket_factory

    async def check(self) -> ProbeResult:
        t0 = time.monotonic()
        try:
            status, _, body = await http_request(
                self.url, timeout=self.timeout_s, factory=self.factory
            )
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            return ProbeResult(False, time.monotonic() - t0, f"GET {self.url}: {exc!r}")
        took = time.monotonic() - t0
        if status != self.expect_status:
            return ProbeResult(False, took, f"GET {self.url}: status {status}")
        if self.expect_body and self.expect_body not in body.decode(errors="replace"):
            return ProbeResult(False, took, f"GET {self.url}: body lacks {self.expect_body!r}")
        return ProbeResult(True, took, f"GET {self.url}: {status}")


class TokenBox:
    """A token shared by the deep probes of one agent. Keys are shared between the sites, so
    a token from one site is valid at the other: a read-only site, whose Keystone cannot
    record a user's first login of the day, is still read with a token from the other."""

    def __init__(self) -> None:
        self.token: str | None = None


class KeystoneProbe:
    """The deep probe: an authenticated read through Keystone's database, token reused."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        project: str = "admin",
        domain: str = "Default",
        timeout_s: float = 2.0,
        socket_factory: SocketFactory | None = None,
        tokens: TokenBox | None = None,
        login_timeout_s: float | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": username, "domain": {"name": domain}, "password": password}
                    },
                },
                "scope": {"project": {"name": project, "domain": {"name": domain}}},
            }
        }
        self.timeout_s = timeout_s
        self.login_timeout_s = max(timeout_s, login_timeout_s or 0.0)
        self.factory = socket_factory
        self.box = tokens or TokenBox()
        self.logins = 0

    @property
    def token(self) -> str | None:
        return self.box.token

    async def _login(self) -> str:
        status, hdrs, _ = await http_request(
            f"{self.url}/v3/auth/tokens",
            "POST",
            json.dumps(self.auth).encode(),
            {"Content-Type": "application/json"},
            self.login_timeout_s,
            self.factory,
        )
        if status != 201:
            raise ConnectionError(f"login answered {status}")
        self.logins += 1
        self.box.token = hdrs["x-subject-token"]
        return self.box.token

    async def _read(self, token: str) -> tuple[int, bytes]:
        status, _, body = await http_request(
            f"{self.url}/v3/projects?limit=1",
            headers={"X-Auth-Token": token},
            timeout=self.timeout_s,
            factory=self.factory,
        )
        return status, body

    async def check(self) -> ProbeResult:
        t0 = time.monotonic()
        try:
            used = self.box.token or await self._login()
            status, body = await self._read(used)
            if status == 401:  # expired or revoked (unless another probe renewed it meanwhile)
                renewed = self.box.token
                token = renewed if renewed not in (None, used) else await self._login()
                status, body = await self._read(token)
        except (OSError, TimeoutError, ValueError, KeyError, IndexError) as exc:
            return ProbeResult(False, time.monotonic() - t0, f"keystone {self.url}: {exc!r}")
        took = time.monotonic() - t0
        ok = status == 200 and b'"projects"' in body
        return ProbeResult(ok, took, f"keystone {self.url}: authenticated read {status}")


class Periodic:
    """Runs ``probe`` at most every ``interval_s``, in the background: ``check`` answers at
    once with the last finished result (the very first is awaited), so a slow deep check
    never stretches a probe round."""

    def __init__(self, probe: Probe, interval_s: float) -> None:
        self.probe = probe
        self.interval_s = interval_s
        self.last: ProbeResult | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = float("-inf")

    async def _run(self) -> None:
        t0 = time.monotonic()
        try:
            self.last = await self.probe.check()
        except Exception as exc:  # a probe's bug must not silence the check: it fails
            self.last = ProbeResult(False, time.monotonic() - t0, f"check raised {exc!r}")
        finally:
            self.task = None

    async def check(self) -> ProbeResult:
        now = time.monotonic()
        if self.task is None and now - self.started >= self.interval_s:
            self.started = now
            self.task = asyncio.ensure_future(self._run())
        if self.last is None and self.task is not None:
            await asyncio.shield(self.task)
        return self.last or ProbeResult(False, 0.0, "no result yet")


class TcpProbe:
    def __init__(
        self,
        host: str,
        port: int,
        timeout_s: float = 1.0,
        socket_factory: SocketFactory | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.factory = socket_factory

    async def check(self) -> ProbeResult:
        t0 = time.monotonic()
        try:
            _, writer = await _open(self.host, self.port, self.timeout_s, self.factory)
            writer.close()
        except (OSError, TimeoutError) as exc:
            return ProbeResult(
                False, time.monotonic() - t0, f"tcp {self.host}:{self.port}: {exc!r}"
            )
        return ProbeResult(True, time.monotonic() - t0, f"tcp {self.host}:{self.port}: open")


class ReachProbe:
    """Whether a host accepts a TCP connection on any of ``ports`` (tried at once): a host
    that accepts none is powered off, cut off, or its service is gone (a hard failure). A bare
    non-blocking connect, closed at once (no stream objects: it runs ten times a second)."""

    def __init__(self, host: str, ports: list[int], timeout_s: float) -> None:
        self.host = host
        self.ports = sorted(set(ports))
        self.timeout_s = timeout_s

    async def _connect(self, port: int) -> str:
        """'' when it connected, else why not."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            connecting = asyncio.get_running_loop().sock_connect(sock, (self.host, port))
            await asyncio.wait_for(connecting, self.timeout_s)
        except (OSError, TimeoutError) as exc:
            return f"tcp {self.host}:{port}: {exc!r}"
        finally:
            sock.close()
        return ""

    async def check(self) -> ProbeResult:
        t0 = time.monotonic()
        failed = await asyncio.gather(*(self._connect(p) for p in self.ports))
        took = time.monotonic() - t0
        if not all(failed):
            return ProbeResult(True, took, f"{self.host} accepts TCP connections")
        return ProbeResult(False, took, "; ".join(failed))
