"""HAProxy on the frontends, for the ``haproxy`` frontend engine: it starts with both sites
as servers (the DR one in maintenance) and a runtime API socket at admin level. Which site it
routes to is the frontend engine's business, through that socket; HAProxy never fails over
on its own health checks here (that is the autonomous baseline, configured elsewhere)."""

from __future__ import annotations

from pathlib import Path

from draas.lab.lab import Lab
from draas.lab.readiness import UnixReady
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
            f"    server primary {sites['primary']}:{port} check inter 1s",
            f"    server dr {sites['dr']}:{port} check inter 1s disabled",
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
