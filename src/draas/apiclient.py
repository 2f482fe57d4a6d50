"""The CLI's side of the control API: which agents to ask (from the config), the bearer
token for commands, TLS, and errors the operator can act on."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from draas.config import Config, Node
from draas.errors import ApiError, DraasError, InvalidInput


def agent_url(cfg: Config, node: Node) -> str:
    """One agent's API (https when the agents serve TLS)."""
    scheme = "https" if cfg.api.tls_cert_file else "http"
    return f"{scheme}://{node.address}:{node.api_port}"


def agent_urls(cfg: Config) -> list[str]:
    """Every agent's API, the DR site's first (it runs the controller), then the witness,
    the primary site's and the frontends'."""
    dr = cfg.site_with_role("dr")
    rank = {"witness": 1, "site": 2, "frontend": 3}
    nodes = sorted(cfg.nodes, key=lambda n: (0 if n.site == dr else rank[n.role], n.name))
    return [agent_url(cfg, n) for n in nodes]


class ApiClient:
    def __init__(self, cfg: Config, agent: str | None = None, timeout_s: float = 10.0) -> None:
        self.cfg = cfg
        if agent:
            from draas.measure.inputs import check_url

            try:
                check_url(agent)
            except DraasError as exc:
                raise InvalidInput(f"--agent: {exc}") from None
        self.urls = [agent.rstrip("/")] if agent else agent_urls(cfg)
        self.timeout_s = timeout_s
        self.ctx: ssl.SSLContext | None = None
        if any(u.startswith("https:") for u in self.urls):
            ca = cfg.api.tls_ca_file
            self.ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        self.used: str | None = None  # the agent that answered last

    def _token(self) -> str:
        from draas.deployment import read_secret

        if self.cfg.api.token_file is None:
            raise InvalidInput("commands need the API token: set api.token_file in the config")
        return read_secret(self.cfg.api.token_file, "api.token_file")

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        token: bool = False,
        raw_text: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if method == "POST" or token:
            headers["Authorization"] = f"Bearer {self._token()}"
            headers["Content-Type"] = "application/json"
            data = json.dumps(body or {}).encode()
        qs = (
            "?" + urllib.parse.urlencode({k: v for k, v in (query or {}).items() if v is not None})
            if query
            else ""
        )
        unreachable = []
        budget = timeout_s or self.timeout_s
        deadline = time.monotonic() + budget
        for i, base in enumerate(self.urls):
            left = deadline - time.monotonic()
            if left <= 0.05:
                unreachable.append(f"{base} (not asked: the {budget:g} s timeout was spent)")
                continue
            # A read is shared out over the agents still to ask: one that accepts and never
            # answers must not use up the time of the others. A command gets it all.
            each = left if method == "POST" else left / (len(self.urls) - i)
            req = urllib.request.Request(
                base + path + qs, data=data, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(req, timeout=each, context=self.ctx) as resp:
                    self.used = base
                    raw = resp.read()
                    return raw.decode() if path == "/metrics" or raw_text else json.loads(raw)
            except urllib.error.HTTPError as exc:
                try:
                    msg = json.loads(exc.read()).get("error", exc.reason)
                except ValueError:
                    msg = exc.reason
                if method == "GET" and (exc.code == 404 or exc.code >= 500):
                    # Not an agent's answer to this (another program, an agent in trouble):
                    # the next agent may answer.
                    unreachable.append(f"{base} ({exc.code}: {msg})")
                    continue
                raise ApiError(f"{base}: {exc.code}: {msg}", exc.code) from None
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                unreachable.append(f"{base} ({reason})")
                if method == "POST" and isinstance(reason, TimeoutError):
                    break  # it may have been accepted: do not send it to another agent
        raise ApiError("no agent answered: " + "; ".join(unreachable))

    def get(self, path: str, **query: Any) -> Any:
        return self._call("GET", path, query=query or None)

    def get_secret(self, path: str, raw_text: bool = False) -> Any:
        """A GET that needs the token (an agent fetching another's key directories)."""
        return self._call("GET", path, token=True, raw_text=raw_text)

    def post(
        self, path: str, body: dict[str, Any] | None = None, timeout_s: float | None = None
    ) -> Any:
        return self._call("POST", path, body, timeout_s=timeout_s)
