"""draas itself in the lab: the deployment's ``draas.toml`` (written into the run directory,
pointing at the lab's real etcd, BIND, MariaDB and Keystone) and one agent per node, each in its
own host's namespace."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from draas.errors import LabError
from draas.lab.components import bind9, etcd, haproxy, keystone
from draas.lab.lab import Lab
from draas.lab.secrets import secret, secret_file
from draas.lab.supervisor import ProcessSpec

NODES = {
    "site-primary": ("primary", "site"),
    "site-dr": ("dr", "site"),
    "witness": ("witness", "witness"),
}
FRONTEND_NODES = {"fe-a": ("fe-a", "frontend"), "fe-b": ("fe-b", "frontend")}


def nodes_for(scheme: str) -> dict[str, tuple[str, str]]:
    """The agents of a scheme's deployment: node name -> (lab host, role)."""
    from draas.lab.services import frontends_for

    fes = frontends_for(scheme)
    return {**NODES, **{n: v for n, v in FRONTEND_NODES.items() if v[0] in fes}}


def tsig_key_file(lab: Lab) -> Path:
    path = lab.run.path / "secrets" / "tsig.key"
    key = secret(lab.run, "tsig", kind="tsig")
    path.write_text(
        f'key "{bind9.TSIG_NAME}" {{\n\talgorithm {bind9.TSIG_ALGORITHM};\n\tsecret "{key}";\n}};\n'
    )
    path.chmod(0o600)
    return path


def write_config(
    lab: Lab,
    preset: str = "fast",
    scheme: str = "dns",
    replication: str = "async",
    timings: dict[str, float] | None = None,
    deep_check: bool = True,
    controllers: list[str] | None = None,
) -> Path:
    """The lab deployment's draas.toml (TOML written by hand: values are ours, all quoted).
    ``deep_check``: the Keystone check through the database, beside the web page and the
    version document (the seed profiles, which reproduce the original system, have none).
    ``controllers``: the agents that may hold the controller lease (None: every agent)."""
    db_pw = secret_file(lab.run, "mariadb-draas")
    q = json.dumps  # a JSON string is a valid TOML basic string
    lines = [
        f"scheme = {q(scheme)}",
        "[service]",
        'name = "keystone"',
        f"dns_name = {q(bind9.SERVICE_NAME)}",
        "[[service.checks]]",
        'name = "web"',
        "port = 80",
        'path = "/"',
        "[[service.checks]]",
        'name = "api"',
        "port = 5000",
        'path = "/v3"',
        'expect_body = "stable"',
    ]
    if deep_check:
        lines += [
            "[[service.checks]]",
            'name = "db"',
            'kind = "keystone"',
            "port = 5000",
            'username = "admin"',
            f"password_file = {q(str(secret_file(lab.run, 'keystone-admin')))}",
            "interval_s = 1.0",
            "timeout_s = 1.5",
        ]
    for site, role in (("primary", "primary"), ("dr", "dr")):
        addr = lab.topo.host(site).address
        lines += [
            f"[sites.{site}]",
            f"role = {q(role)}",
            f"address = {q(addr)}",
            f'database = {{ host = {q(addr)}, user = "draas", password_file = {q(str(db_pw))} }}',
            # Keystone's fernet and credential keys: the agents keep the standby's copy equal.
            "key_directories = "
            + json.dumps([str(d) for d in keystone.key_dirs(lab, site).values()]),
        ]
    for name, (host, role) in nodes_for(scheme).items():
        lines += [
            "[[nodes]]",
            f"name = {q(name)}",
            f"role = {q(role)}",
            f"address = {q(lab.topo.host(host).address)}",
        ]
        if role == "site":
            lines.append(f"site = {q(host)}")
        if role == "frontend":
            lines.append(f"admin_socket = {q(str(haproxy.socket_path(lab, host)))}")
    if scheme != "frontend":
        lines += [
            "[dns]",
            'provider = "rfc2136"',
            f"zone = {q(bind9.ZONE)}",
            f"record = {q(bind9.SERVICE_NAME)}",
            f"ttl_s = {int(lab.settings.dns_ttl_s)}",
            f"server = {q(lab.topo.host('dns').address)}",
            f"tsig_key_file = {q(str(tsig_key_file(lab)))}",
        ]
    if scheme != "dns":
        lines += ["[frontend]", 'engine = "haproxy"', 'preferred = "fe-a"']
    recovery = lab.run.path / "recovery"
    lines += [
        "[replication]",
        f"mode = {q(replication)}",
        f"recovery_dir = {q(str(recovery))}",
        "[coordination]",
        'backend = "etcd"',
        f"endpoints = {json.dumps(etcd.client_urls(lab))}",
        f"ca_file = {q(str(etcd.pki(lab).ca))}",
        f"cert_file = {q(str(etcd.pki(lab).client_cert))}",
        f"key_file = {q(str(etcd.pki(lab).client_key))}",
        "[api]",
        f"token_file = {q(str(secret_file(lab.run, 'api-token')))}",
        'read_networks = ["198.18.0.0/15", "127.0.0.0/8"]',
        # The lab's agents talk over one machine's bridge; a real deployment uses TLS.
        "insecure_key_transfer = true",
        "[drill]",
        'username = "admin"',
        'project = "admin"',
        f"password_file = {q(str(secret_file(lab.run, 'keystone-admin')))}",
        "[timings]",
        f"preset = {q(preset)}",
        *(f"{k} = {v}" for k, v in (timings or {}).items()),
    ]
    if controllers is not None:
        lines += ["[controller]", f"candidates = {json.dumps(controllers)}"]
    path = lab.run.path / "draas.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def agent_specs(
    lab: Lab, config: Path, scheme: str, env: dict[str, str] | None = None
) -> list[ProcessSpec]:
    return [
        lab.spec(
            f"agent-{name}",
            host,
            [sys.executable, "-m", "draas.cli", "agent", "--config", str(config), "--node", name],
            env=dict(env or {}),
        )
        for name, (host, _) in nodes_for(scheme).items()
    ]


def start_agents(
    lab: Lab,
    preset: str = "fast",
    replication: str = "async",
    timings: dict[str, float] | None = None,
    deep_check: bool = True,
    env: dict[str, str] | None = None,
    controllers: list[str] | None = None,
) -> Path:
    """Write the lab's draas.toml for the lab's scheme and start every node's agent (``env``:
    added to each agent's environment, e.g. a test's failpoint). With
    ``replication="semi-sync"`` the sites are switched to semi-synchronous replication first
    (the primary waits for the DR site's acknowledgement before it answers a commit). Returns
    once the DR site is eligible for failover (semi-sync: named the synchronous standby;
    async: both positions published): before that, no automatic failover can happen."""
    scheme = lab.settings.scheme
    config = write_config(lab, preset, scheme, replication, timings, deep_check, controllers)
    etcd.move_leader(lab, "witness")
    if replication == "semi-sync":
        from draas.lab.components import mariadb

        primary = mariadb.replicator(lab, "primary", semi_sync=True)
        primary.promote()
        mariadb.replicator(lab, "dr", semi_sync=True).replicate_from(primary, seed=False)
    for spec in agent_specs(lab, config, scheme, env):
        lab.sup.launch(spec)
    wait_eligible(lab, "dr")
    wait_observing(lab, list(nodes_for(scheme)))
    return config


def eligible(lab: Lab, site: str) -> bool:
    """Whether ``site`` may be promoted automatically as far as the store shows: semi-sync,
    it is named under the active epoch in the sync record; async (no sync record), the active
    site has published its position and ``site``'s agent its applied one."""
    got = etcd_get(lab, "sync")
    if not got:
        obs = etcd_get(lab, f"observers/site-{site}")
        applied = json.loads(obs[0]).get("replication", {}).get("gtid_slave_pos") if obs else None
        return bool(etcd_get(lab, "position")) and applied is not None
    record = json.loads(got[0])
    active = etcd_get(lab, "active")
    epoch = json.loads(active[0])["epoch"] if active else None
    return bool(record.get("standby") == site and record.get("epoch") == epoch)


def wait_eligible(lab: Lab, site: str, timeout_s: float = 40.0) -> None:
    """Until ``site`` is the named synchronous standby (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not eligible(lab, site):
        if time.monotonic() > deadline:
            got = etcd_get(lab, "sync")
            raise LabError(f"{site} not named the synchronous standby in {timeout_s:g} s: {got}")
        time.sleep(0.3)


def not_observing(observations: Mapping[str, Mapping[str, Any]], nodes: list[str]) -> list[str]:
    """Why a freshly started lab is not yet ready to use, from the published observations
    (node -> its document): a node that has published nothing, or that does not see a target
    it probes up yet (in a lab just built, everything is up: a target seen unknown or down is
    a probe still rising). Empty: every agent is alive and sees every target up."""
    why = []
    for node in nodes:
        doc = observations.get(node)
        if doc is None:
            why.append(f"{node}: nothing published")
            continue
        targets = doc.get("targets") or {}
        pending = sorted(
            f"{t} {seen.get('state')}" for t, seen in targets.items() if seen.get("state") != "up"
        )
        if not targets:
            why.append(f"{node}: no target judged yet")
        elif pending:
            why.append(f"{node} sees {', '.join(pending)}")
    return why


def wait_observing(lab: Lab, nodes: list[str], timeout_s: float = 90.0) -> None:
    """Until every agent in ``nodes`` has published an observation that sees every target up
    (bounded): from then a drill or a status shows the deployment as built."""
    deadline = time.monotonic() + timeout_s
    while True:
        docs = [json.loads(v) for v in etcd_get(lab, "observers/", prefix=True)]
        why = not_observing({str(d.get("observer")): d for d in docs}, nodes)
        if not why:
            return
        if time.monotonic() > deadline:
            raise LabError(f"agents not all observing after {timeout_s:g} s: {'; '.join(why)}")
        time.sleep(0.3)


def etcd_get(lab: Lab, key: str, prefix: bool = False) -> list[str]:
    """Values under the lab's draas keys, read with etcdctl from the witness (a prefix: in the
    order the store created them, as the agents read the event log)."""
    argv = [
        "etcdctl",
        *etcd.ctl_tls(lab),
        "--endpoints",
        ",".join(etcd.client_urls(lab)),
        "get",
        f"/draas/{key}",
        "--print-value-only",
    ] + (["--prefix", "--sort-by=CREATE", "--order=ASCEND"] if prefix else [])
    proc = lab.exec("witness", argv, capture_output=True, text=True, timeout=10)
    return [line for line in proc.stdout.splitlines() if line.strip()]
