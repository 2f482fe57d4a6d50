"""HAProxy on the frontends, for the ``haproxy`` frontend engine: it starts with both sites
as servers (the DR one in maintenance) and a runtime API socket at admin level. Which site it
routes to is the frontend engine's business, through that socket; HAProxy never fails over
on its own health checks here (that is the autonomous baseline, configured elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

from draas.errors import LabError
from draas.lab.engine import LabEngine
from draas.lab.readiness import UnixReady
from draas.lab.supervisor import ProcessSpec
from draas.traffic.frontend.haproxy import (
    DEFAULT_CHECK,
    PORTS,
    parse_servers_state,
    runtime_command,
)
from draas.traffic.frontend.haproxy import config_text as engine_config

FRONTENDS = ("fe-a", "fe-b")


def socket_path(lab: LabEngine, host: str) -> Path:
    return lab.run.path / f"haproxy-{host}" / "admin.sock"


# The autonomous baseline checks as often and as many times as draas's fast preset probes
# a site's reachability (every 0.1 s, down after 3 failures; up after 2 passes), so that the
# comparison is at the same aggressiveness.
BASELINE_CHECK = "check inter 100ms fall 3 rise 2"


def config_text(lab: LabEngine, host: str, autonomous: bool = False) -> str:
    sites = {s: lab.topo.host(s).address for s in ("primary", "dr")}
    text = engine_config(
        lab.topo.host(host).address,
        sites,
        "primary",
        str(socket_path(lab, host)),
        autonomous=autonomous,
        health=BASELINE_CHECK if autonomous else DEFAULT_CHECK,
    )
    if autonomous:  # a check waits for its answer no longer than its interval
        text = text.replace(
            "    timeout server 30s\n", "    timeout server 30s\n    timeout check 100ms\n"
        )
    return text


def spec(lab: LabEngine, host: str) -> ProcessSpec:
    d = lab.run.path / f"haproxy-{host}"
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "haproxy.cfg"
    cfg.write_text(config_text(lab, host))
    return lab.spec(
        f"haproxy-{host}",
        host,
        ["haproxy", "-W", "-db", "-f", str(cfg)],
        ready=UnixReady(str(socket_path(lab, host)), "show info", "Name: HAProxy"),
        ready_timeout_s=15,
    )


def servers_state(lab: LabEngine, host: str) -> list[dict[str, str]]:
    return parse_servers_state(runtime_command(str(socket_path(lab, host)), "show servers state"))


def wait_routing(lab: LabEngine, host: str, server: str = "primary", timeout_s: float = 20) -> None:
    """Block until every backend of the frontend sees ``server`` up (op state 2)."""
    deadline = time.monotonic() + timeout_s
    states: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        states = [s for s in servers_state(lab, host) if s.get("srv_name") == server]
        if len(states) == len(PORTS) and all(s.get("srv_op_state") == "2" for s in states):
            return
        time.sleep(0.1)
    raise LabError(f"HAProxy on {host} does not see {server} up after {timeout_s:g} s: {states}")


def reload(lab: LabEngine, host: str, autonomous: bool = False) -> None:
    """Write a new configuration and reload seamlessly: the master (``-W``) starts new workers
    on SIGUSR2 and the old ones finish their connections; the listening sockets never close."""
    import signal

    cfg = lab.run.path / f"haproxy-{host}" / "haproxy.cfg"
    cfg.write_text(config_text(lab, host, autonomous=autonomous))
    if not lab.sup.send(f"haproxy-{host}", signal.SIGUSR2):
        raise LabError(f"HAProxy on {host} is not running; cannot reload")
