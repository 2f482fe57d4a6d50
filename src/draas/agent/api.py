"""The agent's control API: HTTP and JSON, described by the OpenAPI document at
``/v1/openapi.json``. Read-only endpoints (status, events, metrics, the dashboard) may be
limited to ``api.read_networks``; commands need the bearer token of ``api.token_file``,
compared in constant time, and are refused (409, with the reason, nothing changed) when the
state does not allow them. TLS when ``api.tls_cert_file`` is set.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from draas.agent import keysync
from draas.agent.openapi import document
from draas.config import Config
from draas.errors import CommandRefused, CoordinationError, DraasError, InvalidInput

log = logging.getLogger("draas.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EVENT_MATCH = ("run", "node", "step", "outcome", "runbook")
MAX_BODY = 4096


class Backend(Protocol):
    def status(self) -> dict[str, Any]: ...
    def events(self, **query: Any) -> tuple[list[dict[str, Any]], str | None]: ...
    def command(
        self, kind: str, *, to: str | None = None, force: bool = False, by: str = "api"
    ) -> dict[str, Any]: ...
    def drill(self, by: str = "api") -> dict[str, Any]: ...
    def pause(self, reason: str, for_s: float | None, by: str = "api") -> dict[str, Any]: ...
    def resume(self, by: str = "api") -> dict[str, Any]: ...
    def key_directories(self) -> list[Path]: ...

    @property
    def metrics(self) -> Any: ...


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class Bad(Exception):
    """A request the API cannot take: 400 with the message."""


class ControlApi:
    def __init__(self, cfg: Config, backend: Backend, token: str | None) -> None:
        self.cfg = cfg
        self.backend = backend
        self.token = token
        self.runner: web.AppRunner | None = None

    # -- policy --------------------------------------------------------------------------------
    def reload(self, cfg: Config, token: str | None) -> None:
        self.cfg, self.token = cfg, token

    def _may_read(self, request: web.Request) -> bool:
        nets = self.cfg.api.read_networks
        if not nets:
            return True
        try:
            ip = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(ip in net for net in nets)

    def _authorized(self, request: web.Request) -> web.Response | None:
        if self.token is None:
            return _error(
                403, "commands are disabled on this agent: no api.token_file is configured"
            )
        got = request.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return _error(
                401,
                "a command needs 'Authorization: Bearer <token>' (the token in api.token_file)",
                **{"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            return _error(401, "wrong token", **{"WWW-Authenticate": "Bearer"})
        return None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST":
            refused = self._authorized(request)
            if refused is not None:
                log.warning(
                    "refused %s %s from %s: %s",
                    request.method,
                    request.path,
                    request.remote,
                    refused.text,
                )
                return refused
        elif not self._may_read(request):
            return _error(403, f"{request.remote} is not in api.read_networks")
        try:
            return await handler(request)
        except (Bad, InvalidInput) as exc:
            return _error(400, str(exc))
        except CommandRefused as exc:
            return _error(409, str(exc))
        except CoordinationError as exc:
            return _error(503, f"coordination store unreachable: {exc}")
        except DraasError as exc:
            return _error(500, str(exc))
        except web.HTTPException:
            raise  # aiohttp's own answers (404, 405, 413)
        except Exception:  # a bug: say so in the log and to the client, keep serving
            log.exception("%s %s failed", request.method, request.path)
            return _error(500, "internal error (see the agent's log)")

    # -- reading -------------------------------------------------------------------------------
    async def dashboard(self, request: web.Request) -> web.Response:
        text = files("draas.agent").joinpath("dashboard.html").read_text()
        return web.Response(text=text, content_type="text/html")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(document())

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.backend.status))

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        allowed = [*EVENT_MATCH, "since", "after", "limit", "last"]
        unknown = sorted(set(q) - set(allowed))
        if unknown:
            raise Bad(f"unknown query parameter(s) {unknown}; allowed: {allowed}")
        query: dict[str, Any] = {k: q[k] for k in EVENT_MATCH if k in q}
        if "since" in q:
            try:
                query["since"] = float(q["since"])
            except ValueError:
                raise Bad(f"since={q['since']!r}: must be a Unix time in seconds") from None
        if "after" in q:
            query["after"] = q["after"]
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise Bad(f"limit={q.get('limit')!r}: must be an integer from 1 to 1000")
        if "last" in q:
            try:
                query["last"] = int(q["last"])
            except ValueError:
                query["last"] = 0
            if not 1 <= query["last"] <= 1000:
                raise Bad(f"last={q['last']!r}: must be an integer from 1 to 1000")
        page, nxt = await asyncio.to_thread(self.backend.events, limit=limit, **query)
        return web.json_response({"events": page, "next": nxt})

    async def metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.backend.metrics.render)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    # -- key directories (secrets: the token is needed to read them) --------------------------
    def _keys_refused(self, request: web.Request) -> web.Response | None:
        if not request.secure and not self.cfg.api.insecure_key_transfer:
            return _error(
                403,
                "key directories are served only over TLS: set api.tls_cert_file and "
                "api.tls_key_file (api.insecure_key_transfer is for a lab on one machine)",
            )
        return self._authorized(request)

    async def keys(self, request: web.Request) -> web.Response:
        refused = self._keys_refused(request)
        if refused is not None:
            return refused
        dirs = self.backend.key_directories()
        return web.json_response(await asyncio.to_thread(keysync.listing, dirs))

    async def key_directory(self, request: web.Request) -> web.Response:
        refused = self._keys_refused(request)
        if refused is not None:
            return refused
        dirs = self.backend.key_directories()
        raw = request.match_info["index"]
        if not raw.isdigit() or not 0 <= int(raw) < len(dirs):
            raise Bad(f"key directory {raw!r}: this site has {len(dirs)} (indexes from 0)")
        text = await asyncio.to_thread(keysync.manifest, dirs, int(raw))
        return web.Response(text=text, content_type="application/json")

    # -- commands ------------------------------------------------------------------------------
    async def _body(self, request: web.Request, allowed: dict[str, type]) -> dict[str, Any]:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise Bad(f"request body larger than {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Bad("request body is not JSON") from None
        if not isinstance(body, dict):
            raise Bad("request body must be a JSON object")
        for key, value in body.items():
            if key not in allowed:
                raise Bad(f"unknown field {key!r}; allowed: {sorted(allowed)}")
            kind = allowed[key]
            fits = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not fits or (kind is not bool and isinstance(value, bool)):
                raise Bad(f"field {key!r}: {value!r} is not a {kind.__name__}")
        return body

    async def _command(self, kind: str, **kw: Any) -> web.Response:
        done = await asyncio.to_thread(self.backend.command, kind, **kw)
        return web.json_response(done, status=202)

    async def switchover(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"to": str})
        to = body.get("to")
        if to not in self.cfg.sites:
            raise Bad(f"field 'to': {to!r} is not a site; allowed: {sorted(self.cfg.sites)}")
        return await self._command("switchover", to=to)

    async def failover(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"force": bool})
        return await self._command("failover", force=bool(body.get("force", False)))

    async def failback(self, request: web.Request) -> web.Response:
        await self._body(request, {})
        return await self._command("failback")

    async def pause(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"reason": str, "for_s": float})
        if "reason" not in body:
            raise Bad("field 'reason' is required: say why automatic action is paused")
        for_s = body.get("for_s")
        got = await asyncio.to_thread(
            self.backend.pause, body["reason"], None if for_s is None else float(for_s)
        )
        return web.json_response(got)

    async def resume(self, request: web.Request) -> web.Response:
        await self._body(request, {})
        return web.json_response(await asyncio.to_thread(self.backend.resume))

    async def drill(self, request: web.Request) -> web.Response:
        await self._body(request, {})
        return web.json_response(await asyncio.to_thread(self.backend.drill))

    # -- serving -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=MAX_BODY)
        app.add_routes(
            [
                web.get("/", self.dashboard),
                web.get("/v1/openapi.json", self.openapi),
                web.get("/v1/health", self.health),
                web.get("/v1/status", self.status),
                web.get("/v1/events", self.events),
                web.get("/metrics", self.metrics),
                web.get("/v1/keys", self.keys),
                web.get("/v1/keys/{index}", self.key_directory),
                web.post("/v1/switchover", self.switchover),
                web.post("/v1/failover", self.failover),
                web.post("/v1/failback", self.failback),
                web.post("/v1/drill", self.drill),
                web.post("/v1/pause", self.pause),
                web.post("/v1/resume", self.resume),
            ]
        )
        return app

    async def start(self, host: str, port: int) -> None:
        ctx = None
        api = self.cfg.api
        if api.tls_cert_file is not None and api.tls_key_file is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(api.tls_cert_file), str(api.tls_key_file))
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, host, port, ssl_context=ctx).start()
        except OSError as exc:
            await self.runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise DraasError(
                    f"control API: {host} port {port} is in use: an agent for this node is "
                    "already running here (or another program holds the node's api_port)"
                ) from None
            raise DraasError(f"control API: cannot listen on {host} port {port}: {exc}") from None
        commands = "need the token" if self.token else "disabled: no api.token_file"
        log.info(
            "control API on %s://%s:%d/ (commands %s)",
            "https" if ctx else "http",
            host,
            port,
            commands,
        )

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
