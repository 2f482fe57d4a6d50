"""The HAProxy frontend engine: both sites are servers of each backend (web, API); the engine
routes to one site by putting the other in maintenance through the runtime API, and reads the
state back to confirm. Also generates the configuration HAProxy starts with.

Switch order: the old site goes to maintenance first, then the new one becomes ready, in one
runtime API exchange: there is never an instant where both sites receive requests.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from draas.errors import TrafficError
from draas.traffic import CheckResult
from draas.traffic.frontend import FrontendEngine

PORTS = {"api": 5000, "web": 80}  # backend name -> port (the same on frontend and sites)


def runtime_command(path: str, command: str, timeout: float = 2.0) -> str:
    """Send one command line to HAProxy's runtime API socket; return the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_servers_state(text: str) -> list[dict[str, str]]:
    """``show servers state`` as one dict per server (be_name, srv_name, srv_op_state, ...)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = next((ln for ln in lines if ln.startswith("# be_id")), None)
    if header is None:
        return []
    names = header.lstrip("# ").split()
    rows = [ln.split() for ln in lines if ln[0].isdigit()]
    # The first line is the format version ("1"), not a server.
    return [dict(zip(names, r, strict=False)) for r in rows if len(r) >= 4]


# srv_admin_state bits (HAProxy's server.h): maintenance forced (0x01), inherited (0x02) or
# from a resolver (0x20); drain forced (0x08) or inherited (0x10). 0x04 only records that the
# configuration said "disabled" and stays set after the server is made ready.
NOT_ROUTED = 0x01 | 0x02 | 0x08 | 0x10 | 0x20


def admin_ready(admin_state: str) -> bool:
    """Whether a server with this ``srv_admin_state`` gets new requests (if healthy)."""
    return int(admin_state) & NOT_ROUTED == 0


DEFAULT_CHECK = "check inter 1s fastinter 250ms downinter 500ms"


def config_text(
    bind: str,
    sites: Mapping[str, str],
    active: str,
    admin_socket: str,
    autonomous: bool = False,
    ports: Mapping[str, int] = PORTS,
    listen: Mapping[str, int] | None = None,
    health: str = DEFAULT_CHECK,
) -> str:
    """An HAProxy configuration: one frontend and backend per port, a server per site.

    Controlled (default): every site but ``active`` starts in maintenance; the engine moves
    traffic. Autonomous: the other sites are ``backup`` servers and HAProxy fails over on its
    own health checks (the baseline; unsafe for stateful services: a recovered stale primary
    gets traffic back the moment its checks pass). ``health``: the servers' health-check
    settings (the baseline is run as aggressive as draas's preset)."""
    parts = [
        "global",
        f"    stats socket {admin_socket} mode 600 level admin",
        "    log stderr format short local0 info",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor",
        # A request whose connection to a dead site cannot be made (nothing was sent) is
        # tried again every 200 ms (up to 2 s), each time on the server the backend routes to
        # then: sent before the switch, it is served by the new site after it.
        "    retries 10",
        "    option redispatch 1",
        "    timeout connect 200ms",
        "    timeout client 30s",
        "    timeout server 30s",
    ]
    for name, port in ports.items():
        check = "GET /v3" if name == "api" else "GET /"
        lport = (listen or {}).get(name, port)
        parts += [
            f"frontend {name}",
            f"    bind {bind}:{lport}",
            f"    default_backend {name}",
            f"backend {name}",
            f"    option httpchk {check}",
            f"    default-server {health}",
        ]
        for site, addr in sites.items():
            extra = "" if site == active else (" backup" if autonomous else " disabled")
            parts.append(f"    server {site} {addr}:{port}{extra}")
    return "\n".join(parts) + "\n"


class HaproxyEngine(FrontendEngine):
    def __init__(
        self,
        name: str,
        *,
        admin_socket: str,
        sites: Mapping[str, str],
        backends: tuple[str, ...] = tuple(PORTS),
        **kw: Any,
    ) -> None:
        super().__init__(name, sites, **kw)
        self.admin_socket = admin_socket
        self.backends = backends

    def _run(self, command: str) -> str:
        try:
            return runtime_command(self.admin_socket, command)
        except OSError as exc:
            where = f"HAProxy runtime API {self.admin_socket} of frontend {self.name}"
            raise TrafficError(f"{where}: {exc.strerror or exc}", retryable=True) from exc

    def servers(self) -> list[dict[str, str]]:
        return [
            s
            for s in parse_servers_state(self._run("show servers state"))
            if s.get("be_name") in self.backends
        ]

    def current(self) -> str | None:
        """The site that is ready in every backend, when exactly one is."""
        ready: dict[str, list[bool]] = {}
        for s in self.servers():
            ready.setdefault(s["srv_name"], []).append(admin_ready(s.get("srv_admin_state", "1")))
        sites = [
            site
            for site, states in ready.items()
            if all(states) and len(states) == len(self.backends)
        ]
        return sites[0] if len(sites) == 1 else None

    def _point_to(self, target: str) -> bool:
        if self.current() == target:
            return False
        cmds = [
            f"set server {be}/{site} state maint"
            for be in self.backends
            for site in self.sites
            if site != target
        ]
        cmds += [f"set server {be}/{target} state ready" for be in self.backends]
        answer = self._run("; ".join(cmds)).strip()
        if answer:
            raise TrafficError(
                f"HAProxy of frontend {self.name} refused the switch to {target}: {answer[:300]}"
            )
        got = self.current()
        if got != target:
            raise TrafficError(
                f"HAProxy of frontend {self.name} reads back {got}, not {target}", retryable=True
            )
        return True

    def check(self) -> CheckResult:
        try:
            servers = self.servers()
        except TrafficError as exc:
            return CheckResult(False, str(exc))
        known = {s["srv_name"] for s in servers}
        missing = sorted(set(self.sites) - known)
        if missing:
            return CheckResult(False, f"HAProxy of {self.name} has no server for {missing}")
        return CheckResult(
            True, f"HAProxy of {self.name}: {len(servers)} servers, routes to {self.current()}"
        )
