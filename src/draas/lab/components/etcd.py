"""etcd on ``primary``, ``dr`` and ``witness``: one three-member cluster, the coordination
store of the agents."""

from __future__ import annotations

import json
import time
from typing import Any

from draas.coordination.etcd import Tls
from draas.errors import LabError
from draas.lab.engine import LabEngine
from draas.lab.pki import Pki, make_pki
from draas.lab.readiness import TcpReady
from draas.lab.supervisor import ProcessSpec

MEMBERS = ("primary", "dr", "witness")
CLIENT_PORT = 2379
PEER_PORT = 2380


def client_urls(lab: LabEngine) -> list[str]:
    return [f"https://{lab.topo.host(m).address}:{CLIENT_PORT}" for m in MEMBERS]


def pki(lab: LabEngine) -> Pki:
    """The lab's CA, the members' server certificate and the clients' certificate (made at the
    first use, in the lab's run directory): clients must present a certificate."""
    return make_pki(lab.run.path / "pki", [lab.topo.host(m).address for m in MEMBERS])


def ctl_tls(lab: LabEngine) -> list[str]:
    """The TLS flags of every etcdctl call."""
    p = pki(lab)
    return ["--cacert", str(p.ca), "--cert", str(p.client_cert), "--key", str(p.client_key)]


def tls(lab: LabEngine) -> Tls:
    p = pki(lab)
    return Tls(str(p.ca), str(p.client_cert), str(p.client_key))


def spec(lab: LabEngine, member: str) -> ProcessSpec:
    d = lab.run.path / f"etcd-{member}"
    d.mkdir(parents=True, exist_ok=True)
    addr = lab.topo.host(member).address
    certs = pki(lab)
    cluster = ",".join(f"{m}=http://{lab.topo.host(m).address}:{PEER_PORT}" for m in MEMBERS)
    argv = [
        "etcd",
        "--name",
        member,
        "--data-dir",
        str(d / "data"),
        "--listen-client-urls",
        f"https://{addr}:{CLIENT_PORT},https://127.0.0.1:{CLIENT_PORT}",
        "--advertise-client-urls",
        f"https://{addr}:{CLIENT_PORT}",
        # Clients over TLS, each with a certificate signed by the lab's CA (peers stay on
        # plain HTTP inside the lab's own network).
        "--cert-file",
        str(certs.server_cert),
        "--key-file",
        str(certs.server_key),
        "--trusted-ca-file",
        str(certs.ca),
        "--client-cert-auth",
        "--listen-peer-urls",
        f"http://{addr}:{PEER_PORT}",
        "--initial-advertise-peer-urls",
        f"http://{addr}:{PEER_PORT}",
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        f"draas-{lab.name}",
        "--heartbeat-interval",
        "100",
        "--election-timeout",
        "1000",
        # A member cut off (a network-failure disaster) campaigns with ever higher terms; on
        # its return, without pre-vote, it would depose the leader and force an election.
        "--pre-vote",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]
    return lab.spec(
        f"etcd-{member}", member, argv, ready=TcpReady(addr, CLIENT_PORT), ready_timeout_s=30
    )


def _endpoint_json(lab: LabEngine, what: str, from_host: str) -> list[dict[str, Any]]:
    """``etcdctl endpoint WHAT -w json`` over every member, asked from ``from_host``."""
    proc = lab.exec(
        from_host,
        [
            "etcdctl",
            *ctl_tls(lab),
            "--endpoints",
            ",".join(client_urls(lab)),
            "--command-timeout=2s",
            "endpoint",
            what,
            "-w",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=15,
    )
    try:
        return list(json.loads(proc.stdout or "[]"))
    except json.JSONDecodeError:
        return []


def health(lab: LabEngine, from_host: str = "witness") -> dict[str, bool]:
    """``etcdctl endpoint health`` of each member, asked from ``from_host``."""
    return {d["endpoint"]: bool(d.get("health")) for d in _endpoint_json(lab, "health", from_host)}


def wait_healthy(lab: LabEngine, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    got: dict[str, bool] = {}
    while time.monotonic() < deadline:
        got = health(lab)
        if len(got) == len(MEMBERS) and all(got.values()):
            return
        time.sleep(0.3)
    raise LabError(f"etcd cluster not healthy after {timeout_s:g} s: {got or 'no answer'}")


def status(lab: LabEngine, from_host: str = "witness") -> list[dict[str, object]]:
    """``etcdctl endpoint status`` of every member: member id, leader id (as hex strings)."""
    docs = _endpoint_json(lab, "status", from_host)
    return [
        {
            "endpoint": d["Endpoint"],
            "member": f"{d['Status']['header']['member_id']:x}",
            "leader": f"{d['Status']['leader']:x}",
        }
        for d in docs
    ]


def move_leader(lab: LabEngine, to: str = "witness") -> None:
    """Make ``to``'s member the raft leader. A leader lost with its site makes etcd elect a
    new one, and a new leader extends every lease by its TTL: the dead primary's lease would
    outlive it by seconds. The witness is the leader that no site disaster takes away."""
    docs = status(lab)
    url = f"https://{lab.topo.host(to).address}:{CLIENT_PORT}"
    mine = next((d for d in docs if d["endpoint"] == url), None)
    if mine is None:
        raise LabError(f"etcd member {to} does not answer: {docs}")
    if mine["leader"] == mine["member"]:
        return
    leader_url = next((d["endpoint"] for d in docs if d["member"] == d["leader"]), None)
    if leader_url is None:
        raise LabError(f"etcd has no leader: {docs}")
    argv = ["etcdctl", *ctl_tls(lab), "--endpoints", str(leader_url)]
    argv += ["move-leader", str(mine["member"])]
    proc = lab.exec(to, argv, capture_output=True, text=True, timeout=15)
    if proc.returncode != 0:
        raise LabError(f"etcdctl move-leader to {to} failed: {proc.stderr.strip()[:300]}")
