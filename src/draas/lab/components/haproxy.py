"""HAProxy on the frontends, for the ``haproxy`` frontend engine: it starts with both sites
as servers (the DR one in maintenance) and a runtime API socket at admin level. Which site it
routes to is the frontend engine's business, through that socket; HAProxy never fails over
on its own health checks here (that is the autonomous baseline, configured elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

from draas.errors import LabError
from draas.lab.lab import Lab
from draas.lab.readiness import UnixReady, unix_command
from draas.lab.supervisor import ProcessSpec

FRONTENDS = ("fe-a", "fe-b")
PORTS = {"api": 5000, "web": 80}


def socket_path(lab: Lab, host: str) -> Path:
    return lab.run.path / f"haproxy-{host}" / "admin.sock"


def config_text(lab: Lab, host: str) -> str:
    addr = lab.topo.host(host).address
    sites = {s: lab.topo.host(s).address for s in ("primary", "dr")}
    parts = [
        "global",
        f"    stats socket {socket_path(lab, host)} mode 600 level admin",
        "    log stderr format short local0 info",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    option forwardfor",
    ]
    for name, port in PORTS.items():
        check = "option httpchk GET /v3" if name == "api" else "option httpchk GET /"
        parts += [
            f"frontend {name}",
            f"    bind {addr}:{port}",
            f"    default_backend {name}",
            f"backend {name}",
            f"    {check}",
            "    default-server check inter 1s fastinter 250ms downinter 500ms",
            f"    server primary {sites['primary']}:{port}",
            f"    server dr {sites['dr']}:{port} disabled",
        ]
    return "\n".join(parts) + "\n"


def spec(lab: Lab, host: str) -> ProcessSpec:
    d = lab.run.path / f"haproxy-{host}"
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "haproxy.cfg"
    cfg.write_text(config_text(lab, host))
    return lab.spec(
        f"haproxy-{host}", host, ["haproxy", "-W", "-db", "-f", str(cfg)],
        ready=UnixReady(str(socket_path(lab, host)), "show info", "Name: HAProxy"),
        ready_timeout_s=15,
    )  # fmt: skip


def servers_state(lab: Lab, host: str) -> list[dict[str, str]]:
    """``show servers state`` as one dict per server (be_name, srv_name, srv_op_state...)."""
    out = unix_command(str(socket_path(lab, host)), "show servers state")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    header = next((ln for ln in lines if ln.startswith("# be_id")), None)
    if header is None:
        return []
    names = header.lstrip("# ").split()
    return [dict(zip(names, ln.split(), strict=False)) for ln in lines
            if ln[0].isdigit() and len(ln.split()) >= len(names) - 2]  # fmt: skip


def wait_routing(lab: Lab, host: str, server: str = "primary", timeout_s: float = 20) -> None:
    """Block until every backend of the frontend sees ``server`` up (op state 2)."""
    deadline = time.monotonic() + timeout_s
    states: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        states = [s for s in servers_state(lab, host) if s.get("srv_name") == server]
        if len(states) == len(PORTS) and all(s.get("srv_op_state") == "2" for s in states):
            return
        time.sleep(0.1)
    raise LabError(f"HAProxy on {host} does not see {server} up after {timeout_s:g} s: {states}")
