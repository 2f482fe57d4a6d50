"""Helpers shared by the lab tests that run the agents: the active record, the event log,
which site a client reaches through the service name, bounded waits."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from draas.coordination import Event
from draas.failover.runs import FAILBACK_STEPS, FAILOVER_STEPS
from draas.lab.agents import etcd_get
from draas.lab.components import keystone, mariadb
from draas.lab.eventlog import read_events
from draas.lab.lab import Lab
from draas.lab.secrets import secret
from draas.lab.supervisor import ProcessSpec
from draas.lab.writer import read_log

PRIMARY_URL = "http://198.18.1.10:5000"
DR_URL = "http://198.18.2.10:5000"

# The runbooks' steps, in order, as the event log must show them done.
FAILOVER = list(FAILOVER_STEPS)
FAILBACK = list(FAILBACK_STEPS)


def new_lab_name() -> str:
    return "t" + secrets.token_hex(3)


def active(lab: Lab) -> dict[str, Any] | None:
    got = etcd_get(lab, "active")
    return json.loads(got[0]) if got else None


def events(lab: Lab) -> list[dict[str, Any]]:
    return [json.loads(e) for e in etcd_get(lab, "events/", prefix=True)]


def lease_event(lab: Lab, node: str, step: str, since: float) -> Event | None:
    """The first lease event ``step`` (fence, step-down, release...) ``node`` recorded at or
    after ``since`` (an agent cut off from the store records it when the store is back)."""
    found = [
        e
        for e in read_events(lab, since)
        if e.runbook == "lease" and e.node == node and e.step == step and e.outcome == "done"
    ]
    return min(found, key=lambda e: e.ts) if found else None


def done_steps(lab: Lab, run_prefix: str) -> list[str]:
    """Steps done, in order, by the runs whose id starts with ``run_prefix``."""
    return [
        e["step"]
        for e in events(lab)
        if str(e.get("run", "")).startswith(run_prefix) and e["outcome"] == "done"
    ]


def wait_until(what: str, check: Callable[[], object], timeout: float) -> float:
    """Poll ``check`` every 0.2 s; return the seconds it took to hold, fail after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"{what} not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - t0


def served_by(lab: Lab) -> str | None:
    """The site whose web page a client gets through the service name (None: no answer)."""
    proc = lab.exec(
        "client",
        ["curl", "-s", "-m", "2", "http://keystone.draas.test/"],
        capture_output=True,
        text=True,
    )
    for site in ("primary", "dr"):
        if f"site={site}<" in proc.stdout:
            return site
    return None


def authoritative(lab: Lab) -> list[str]:
    """What BIND itself answers for the service name (no cache in between)."""
    proc = lab.exec(
        "witness",
        ["dig", "+short", "+time=1", "+tries=1", "@198.18.0.53", "keystone.draas.test"],
        capture_output=True,
        text=True,
    )
    return list(proc.stdout.split())


def write_through_service(lab: Lab, name: str, seconds: float) -> set[str]:
    """Create projects through the service name for ``seconds``; return the acknowledged."""
    spec, out = keystone.writer_spec(
        lab, name, "http://keystone.draas.test:5000", name, seconds, 0.1
    )
    lab.sup.launch(spec)
    wait_until(f"writer {name} to finish", lambda: lab.sup.state(name) == "exited", seconds + 60)
    return {r["name"] for r in read_log(out) if r["outcome"] == "acked"}


def in_sync_checksums(lab: Lab) -> tuple[dict[str, Any], dict[str, Any]]:
    mariadb.wait_in_sync(lab, "dr", "primary")
    p = mariadb.replicator(lab, "primary")
    d = mariadb.replicator(lab, "dr")
    return p.checksums(), d.checksums()


def issue_token(lab: Lab, url: str, scoped: bool = False) -> str:
    """The admin's token from ``url`` (``scoped``: on the admin project, for admin calls)."""
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": "admin",
                    "domain": {"name": "Default"},
                    "password": secret(lab.run, "keystone-admin"),
                }
            },
        }
    }
    if scoped:
        auth["scope"] = {"project": {"name": "admin", "domain": {"name": "Default"}}}
    body = json.dumps({"auth": auth})
    argv = [
        "curl",
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-m",
        "10",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        f"{url}/v3/auth/tokens",
    ]
    proc = lab.exec("client", argv, capture_output=True, text=True)
    match = re.search(r"(?im)^x-subject-token:\s*(\S+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


def validate(lab: Lab, url: str, token: str) -> int:
    argv = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-m",
        "10",
        "-H",
        f"X-Auth-Token: {token}",
        "-H",
        f"X-Subject-Token: {token}",
        f"{url}/v3/auth/tokens",
    ]
    proc = lab.exec("client", argv, capture_output=True, text=True)
    return int(proc.stdout or 0)


def draas(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """The draas command line, run on the DR site's host against the lab's draas.toml."""
    cmd = [
        sys.executable,
        "-m",
        "draas.cli",
        args[0],
        "--config",
        str(lab.run.path / "draas.toml"),
        *args[1:],
    ]
    return lab.exec("dr", cmd, capture_output=True, text=True, timeout=120)


def controller(lab: Lab) -> str | None:
    """The agent that holds the controller lease (None: nobody)."""
    got = etcd_get(lab, "controller")
    return got[0] if got else None


def keystone_call(
    lab: Lab, method: str, url: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """A Keystone API call from the client host: (HTTP status, JSON body)."""
    argv = ["curl", "-s", "-m", "10", "-X", method, "-w", "\n%{http_code}"]
    argv += ["-H", f"X-Auth-Token: {token}", "-H", "Content-Type: application/json"]
    if body is not None:
        argv += ["-d", json.dumps(body)]
    proc = lab.exec("client", [*argv, url], capture_output=True, text=True)
    text, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), json.loads(text) if text.strip() else {}


def keys_equal(lab: Lab) -> bool:
    """Whether every key directory (fernet, credential) is the same at both sites."""
    from draas.replication.files import snapshot

    there = [keystone.key_dirs(lab, h) for h in ("primary", "dr")]
    return all(snapshot(there[0][k]).checksum == snapshot(there[1][k]).checksum for k in there[0])


# libfaketime preloaded straight into the agent (the faketime(1) wrapper forks: a signal to it
# would not reach the agent). ``$LIB`` is expanded by the dynamic linker.
FAST = {
    "LD_PRELOAD": "/usr/$LIB/faketime/libfaketimeMT.so.1",
    "FAKETIME": "+10m",
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
}


def restart_agent(lab: Lab, node: str, *, fast: bool, sig: int | None = None) -> None:
    """Stop ``node``'s agent (SIGKILL, or ``sig``) and start it again ten minutes fast (as an
    NTP failure leaves a machine) or with the right time."""
    name = f"agent-{node}"
    spec = ProcessSpec.from_dict(lab.sup.record(name)["spec"])
    if sig is None:
        lab.sup.crash(name)
    else:
        lab.sup.send(name, sig)
    wait_until(f"{name} is gone", lambda: lab.sup.state(name) == "exited", 20)
    env = {k: v for k, v in spec.env.items() if k not in FAST}
    spec.env = {**env, **FAST} if fast else env
    lab.sup.start(spec)


def alert_events(lab: Lab, name: str, outcome: str = "raised") -> list[dict[str, Any]]:
    """The controller's ``alert-NAME`` events with that outcome."""
    return [
        e for e in events(lab) if e.get("run") == f"alert-{name}" and e.get("outcome") == outcome
    ]
