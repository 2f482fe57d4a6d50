"""The embedded frontend engine: an asyncio HTTP/1.1 reverse proxy for the service's ports.

Every request goes to the site the engine points at *now*: a switch takes effect with the
next request. Bodies stream in both directions (Content-Length or chunked), the client's Host
header is kept, X-Forwarded-For/Proto are added, each request has a timeout, and idle
upstream connections are kept per site. An idempotent request that fails to connect is
retried once, on the then-current target. ``redirect=True`` answers 302 to the target site
instead of proxying (what the original frontend did, without probing per request).

``autonomous=True`` is the baseline most load balancers (and the original frontend) use: the
engine probes the sites itself and routes to the first healthy one in the configured order.
It is unsafe for a stateful service: when a failed primary comes back, its probes pass and it
gets traffic again at once, stale data and all, with no resync and no lease. draas' own mode
routes only where the controller says (the lease holder).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from draas.traffic import CheckResult
from draas.traffic.frontend import FrontendEngine

log = logging.getLogger(__name__)

IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
SocketFactory = Callable[[], socket.socket]
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class BadRequest(Exception):
    pass


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"malformed header line {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


class BodyWriter(Protocol):
    """Where a body is copied to: a stream writer, or a sink that discards it."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def relay_body(
    headers: list[tuple[str, str]],
    src: asyncio.StreamReader,
    dst: BodyWriter,
    until_eof: bool = False,
) -> None:
    """Copy one message body from src to dst, framed as the headers say."""
    if "chunked" in (header(headers, "transfer-encoding") or "").lower():
        while True:
            line = await src.readuntil(b"\r\n")
            dst.write(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := await src.readuntil(b"\r\n")) != b"\r\n":
                    dst.write(trailer)
                dst.write(b"\r\n")
                break
            dst.write(await src.readexactly(size + 2))
            await dst.drain()
    elif (length := header(headers, "content-length")) is not None:
        left = int(length)
        while left > 0:
            chunk = await src.read(min(left, 65536))
            if not chunk:
                raise ConnectionError("body ended early")
            dst.write(chunk)
            left -= len(chunk)
            await dst.drain()
    elif until_eof:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    await dst.drain()


class ProxyEngine(FrontendEngine):
    def __init__(
        self,
        name: str,
        sites: Mapping[str, str],
        *,
        ports: Mapping[int, int],
        bind: str = "0.0.0.0",
        target: str | None = None,
        redirect: bool = False,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 1.0,
        socket_factory: SocketFactory | None = None,
        autonomous: bool = False,
        check_path: str = "/",
        check_interval_s: float = 0.2,
        rise: int = 2,
        fall: int = 2,
        **kw: Any,
    ) -> None:
        super().__init__(name, sites, **kw)
        self.autonomous = autonomous
        self.check_path = check_path
        self.check_interval_s = check_interval_s
        self.rise, self.fall = rise, fall
        self.healthy = dict.fromkeys(sites, True)
        self._streak = dict.fromkeys(sites, 0)
        self._checker: asyncio.Task[None] | None = None
        self.ports = dict(ports)  # listen port -> site port
        self.bind = bind
        self.target = self.validate_target(target) if target else next(iter(self.sites))
        self.redirect = redirect
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.socket_factory = socket_factory
        self.pools: dict[tuple[str, int], list[Conn]] = {}
        self.servers: list[asyncio.Server] = []
        self.served: dict[str, int] = {}

    # -- control ---------------------------------------------------------------------------
    def current(self) -> str | None:
        return self.target

    def _point_to(self, target: str) -> bool:
        changed = target != self.target
        self.target = target  # the next request goes there
        return changed

    def check(self) -> CheckResult:
        listening = sum(1 for s in self.servers if s.is_serving())
        ok = listening == len(self.ports)
        return CheckResult(
            ok,
            f"proxy {self.name}: {listening}/{len(self.ports)} ports "
            f"listening, routes to {self.target}",
        )

    async def start(self, listen_socket: Callable[[int], socket.socket] | None = None) -> None:
        for port in self.ports:
            if listen_socket is not None:
                sock = listen_socket(port)
                srv = await asyncio.start_server(self._client, sock=sock, limit=1 << 16)
            else:
                srv = await asyncio.start_server(
                    self._client, self.bind, port, limit=1 << 16, reuse_address=True
                )
            self.servers.append(srv)
        if self.autonomous:
            self._checker = asyncio.create_task(self._health_loop())
        log.info(
            "proxy %s listening on %s, routing to %s", self.name, sorted(self.ports), self.target
        )

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        for srv in self.servers:
            srv.close()
            await srv.wait_closed()
        for pool in self.pools.values():
            for _, w in pool:
                w.close()
        self.pools.clear()

    # -- autonomous mode (the baseline) ----------------------------------------------------
    async def _probe(self, site: str) -> bool:
        port = next(iter(self.ports.values()))
        try:
            r, w = await asyncio.wait_for(self._open(site, port), self.check_interval_s * 2)
        except OSError:
            return False
        try:
            w.write(
                f"GET {self.check_path} HTTP/1.1\r\nHost: {self.sites[site]}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            line = await asyncio.wait_for(r.readline(), self.check_interval_s * 2)
            return line.split(b" ")[1:2] == [b"200"]
        except (OSError, IndexError, asyncio.IncompleteReadError):
            return False
        finally:
            w.close()

    async def _health_loop(self) -> None:
        while True:
            for site in self.sites:
                ok = await self._probe(site)
                if ok == self.healthy[site]:
                    self._streak[site] = 0
                    continue
                self._streak[site] += 1
                if self._streak[site] >= (self.rise if ok else self.fall):
                    self.healthy[site] = ok
                    self._streak[site] = 0
                    log.info("proxy %s: site %s is %s", self.name, site, "up" if ok else "down")
            best = next((s for s in self.sites if self.healthy[s]), None)
            if best is not None and best != self.target:
                log.warning("proxy %s (autonomous): routing to %s", self.name, best)
                self.target = best
            await asyncio.sleep(self.check_interval_s)

    # -- data path -------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        port = writer.get_extra_info("sockname")[1]
        try:
            while True:
                try:
                    line, headers = await read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                keep = await asyncio.wait_for(
                    self._one(line, headers, reader, writer, peer, port), self.timeout_s
                )
                if not keep:
                    return
        except TimeoutError:
            await self._error(writer, 504, "Gateway Timeout")
        except (BadRequest, ValueError, asyncio.LimitOverrunError):
            await self._error(writer, 400, "Bad Request")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("proxy %s: connection from %s ended: %r", self.name, peer, exc)
        finally:
            writer.close()

    async def _error(self, writer: asyncio.StreamWriter, code: int, text: str) -> None:
        body = f"{code} {text}\n".encode()
        with contextlib.suppress(ConnectionError):
            writer.write(
                f"HTTP/1.1 {code} {text}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\nContent-Type: text/plain\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    async def _one(
        self,
        line: str,
        headers: list[tuple[str, str]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        port: int,
    ) -> bool:
        method, target_path, version = [*line.split(" ", 2), "", ""][:3]
        client_keep = (
            header(headers, "connection") or ""
        ).lower() != "close" and version == "HTTP/1.1"
        site = self.target
        if self.redirect:
            await relay_body(headers, reader, _Sink())
            host = self.sites[site]
            loc = f"http://{host}:{self.ports[port]}{target_path}"
            # Counted before the answer leaves: a client that has it sees the count.
            self.served[site] = self.served.get(site, 0) + 1
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n"
                f"Connection: {'keep-alive' if client_keep else 'close'}\r\n\r\n".encode()
            )
            await writer.drain()
            return client_keep
        fwd = [
            (k, v)
            for k, v in headers
            if k.lower() not in HOP_BY_HOP and k.lower() != "x-forwarded-for"
        ]
        xff = header(headers, "x-forwarded-for")
        fwd += [
            ("X-Forwarded-For", f"{xff}, {peer}" if xff else peer),
            ("X-Forwarded-Proto", "http"),
            ("Connection", "keep-alive"),
        ]
        head = f"{method} {target_path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fwd)
        has_body = (
            header(headers, "content-length") not in (None, "0")
            or header(headers, "transfer-encoding") is not None
        )
        for attempt in (1, 2):
            site = self.target
            try:
                up = await self._connect(site, self.ports[port])
            except OSError:
                if attempt == 1 and method in IDEMPOTENT and not has_body:
                    continue  # once more, on whatever the target is now
                await self._error(writer, 502, "Bad Gateway")
                return False
            break
        ur, uw = up
        uw.write(head.encode("latin-1") + b"\r\n")
        await relay_body(headers, reader, uw)
        try:
            status_line, rheaders = await read_head(ur)
        except (ConnectionError, asyncio.IncompleteReadError):
            uw.close()  # the site closed without an answer: say so, do not go silent
            await self._error(writer, 502, "Bad Gateway")
            return False
        code = int(status_line.split(" ", 2)[1])
        upstream_keep = (header(rheaders, "connection") or "").lower() != "close"
        framed = (
            header(rheaders, "content-length") is not None
            or header(rheaders, "transfer-encoding") is not None
        )
        no_body = method == "HEAD" or code in (204, 304) or 100 <= code < 200
        keep = client_keep and (framed or no_body)
        out = [(k, v) for k, v in rheaders if k.lower() not in HOP_BY_HOP]
        out.append(("Connection", "keep-alive" if keep else "close"))
        self.served[site] = self.served.get(site, 0) + 1  # before the client can have it
        writer.write(
            (status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out) + "\r\n").encode(
                "latin-1"
            )
        )
        if not no_body:
            await relay_body(rheaders, ur, writer, until_eof=not framed)
        await writer.drain()
        if upstream_keep and framed:
            self.pools.setdefault((site, self.ports[port]), []).append(up)
        else:
            uw.close()
        return keep

    async def _connect(self, site: str, port: int) -> Conn:
        pool = self.pools.get((site, port), [])
        while pool:
            r, w = pool.pop()
            if not w.is_closing() and not r.at_eof():
                return r, w
            w.close()
        return await self._open(site, port)

    async def _open(self, site: str, port: int) -> Conn:
        addr = self.sites[site]
        if self.socket_factory is None:
            return await asyncio.wait_for(
                asyncio.open_connection(addr, port), self.connect_timeout_s
            )
        sock = self.socket_factory()
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (addr, port)), self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise OSError(f"connect {addr}:{port}: {exc}") from exc
        return await asyncio.open_connection(sock=sock)


class _Sink:
    """A writer that discards (a redirected request's body)."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    """Run the proxy on its own (the agent embeds it; this is for the lab and benchmarks)."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="draas-proxy", description="draas' embedded frontend proxy")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument(
        "--port",
        action="append",
        required=True,
        metavar="LISTEN:SITE",
        help="listen port and the sites' port, e.g. 80:80 (repeatable)",
    )
    p.add_argument("--site", action="append", required=True, metavar="NAME=ADDRESS")
    p.add_argument("--target", help="site to route to first (default: the first --site)")
    p.add_argument("--redirect", action="store_true")
    p.add_argument("--autonomous", action="store_true")
    a = p.parse_args(argv)
    try:
        ports = {int(x.split(":")[0]): int(x.split(":")[1]) for x in a.port}
        sites = dict(x.split("=", 1) for x in a.site)
    except (ValueError, IndexError):
        p.error("--port takes LISTEN:SITE numbers and --site takes NAME=ADDRESS")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine = ProxyEngine(
        "proxy",
        sites,
        ports=ports,
        bind=a.bind,
        target=a.target,
        redirect=a.redirect,
        autonomous=a.autonomous,
    )

    async def run() -> None:
        await engine.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await engine.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
