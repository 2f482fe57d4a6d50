"""The agents in the lab, DNS scheme, real etcd/MariaDB/BIND/Keystone: the primary takes the
lease; a broken replication link causes no failover (only an event); a primary power-off moves
the service to the DR site in order, under a new epoch; the returning primary rejoins and
failback brings the service home with every write made at the DR site; a planned switchover
there and back keeps every write; then a witness whose clock is ten minutes fast (its agent
under ``faketime -f +10m``, as an NTP failure leaves it) is named by the status, never holds
the controller lease, moves nothing, and its vote counts on time (judged on receipt) when the
primary is powered off. The fault matrix (partitions, lost quorum members, flapping, gray
failures, ...) is in test_faults.py."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import (
    DR_URL,
    FAILBACK,
    FAILOVER,
    PRIMARY_URL,
    active,
    alert_events,
    authoritative,
    controller,
    done_steps,
    draas,
    events,
    in_sync_checksums,
    issue_token,
    keys_equal,
    keystone_call,
    lease_event,
    restart_agent,
    served_by,
    validate,
    wait_until,
    write_through_service,
)

from draas.lab.agents import start_agents
from draas.lab.components import bind9, keystone, mariadb
from draas.lab.disasters import PowerOff, ReplicationCut
from draas.lab.eventlog import read_events
from draas.lab.lab import Lab
from draas.lab.services import resolve
from draas.lab.writer import read_log
from draas.replication.files import snapshot

pytestmark = pytest.mark.lab

ACKED: set[str] = set()
KEPT: dict[str, str] = {}  # a token and a credential made at the primary before the failover
SKEWED: set[str] = set()  # writes acknowledged while the DR agent's clock was off
DR_IP = "198.18.2.10"
OUTAGE: list[PowerOff] = []  # the primary's power-off, reverted by the next test


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Iterator[Lab]:
    start_agents(dns_lab, preset="fast")
    yield dns_lab


def test_the_primary_agent_takes_the_active_lease(lab: Lab) -> None:
    wait_until("active record", lambda: active(lab) is not None, 30)
    assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}


def test_a_broken_replication_link_alone_is_an_event_not_a_failover(lab: Lab) -> None:
    with ReplicationCut(lab):
        wait_until(
            "the replication-broken event",
            lambda: any(
                e.get("run") == "replication-dr" and e["outcome"] == "broken" for e in events(lab)
            ),
            30,
        )
        time.sleep(3)  # past the confirmation window: nothing else may happen
        assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}
        assert authoritative(lab) == ["198.18.1.10"]
    wait_until(
        "the replication-healthy event",
        lambda: (
            [e["outcome"] for e in events(lab) if e.get("run") == "replication-dr"][-1:]
            == ["healthy"]
        ),
        30,
    )
    mariadb.wait_in_sync(lab, "dr", "primary")
    assert not [e for e in events(lab) if e.get("runbook") == "failover"]


def test_a_key_rotation_at_the_active_site_reaches_the_standby_through_the_agents(
    lab: Lab,
) -> None:
    # Twice: after one fernet rotation the new primary key is the old staged key, which the
    # DR site already has; after two, tokens are signed with a key only a copy can bring.
    rotate = ("--keystone-user", "root", "--keystone-group", "root")
    before = snapshot(keystone.key_dirs(lab, "dr")["fernet"]).checksum
    for _ in range(2):
        keystone.manage(lab, "primary", "fernet_rotate", *rotate)
    keystone.manage(lab, "primary", "credential_rotate", *rotate)
    took = wait_until("the DR site's keys equal the primary's", lambda: keys_equal(lab), 15)
    print(f"key directories equal {took:.1f} s after the last rotation")
    assert snapshot(keystone.key_dirs(lab, "dr")["fernet"]).checksum != before
    token = issue_token(lab, PRIMARY_URL)
    assert validate(lab, DR_URL, token) == 200
    KEPT["token"] = token  # validated again at the DR site after the failover
    # A credential, encrypted at rest with the credential key rotated in above.
    admin = issue_token(lab, PRIMARY_URL, scoped=True)
    status, doc = keystone_call(lab, "GET", f"{PRIMARY_URL}/v3/users?name=admin", admin)
    assert status == 200, doc
    blob = f"draas-{time.time_ns()}"
    body = {"credential": {"type": "cert", "blob": blob, "user_id": doc["users"][0]["id"]}}
    status, doc = keystone_call(lab, "POST", f"{PRIMARY_URL}/v3/credentials", admin, body)
    assert status == 201, doc
    KEPT.update(credential=doc["credential"]["id"], blob=blob)

    def reported() -> bool:
        st = json.loads(draas(lab, "status", "--json").stdout)
        keys = next(s for s in st["sites"] if s["name"] == "dr")["keys"]
        return bool(keys and keys["match"] and not keys["alert"] and keys["source"] == "primary")

    wait_until("the status to say the keys are in sync", reported, 15)
    copied = [e for e in events(lab) if e.get("runbook") == "keys"]
    assert copied and all("written" in str(e.get("detail")) for e in copied)
    assert not any(
        snapshot(d).files["0"].data.decode().strip() in json.dumps(copied)
        for d in keystone.key_dirs(lab, "primary").values()
    ), "a key travelled through the event log"


def test_primary_power_off_moves_the_service_to_dr_in_order(lab: Lab) -> None:
    off = PowerOff(lab, host="primary")
    t0 = time.monotonic()
    off.inject()
    try:
        dns_s = wait_until(
            "DNS at BIND points at dr", lambda: authoritative(lab) == ["198.18.2.10"], 30
        )
        client_s = (
            wait_until(
                "the client resolves dr",
                lambda: resolve(lab, bind9.SERVICE_NAME) == ["198.18.2.10"],
                15,
            )
            + dns_s
        )
        print(
            f"power-off to DNS switched: {dns_s:.1f} s; to the client's resolver: "
            f"{client_s:.1f} s (fast preset: window 2 s, TTL 5 s)"
        )
        # fall x interval + window + one cycle + the switch, with room for a loaded CI host.
        assert dns_s < 3 * 0.5 + 2.0 + 15
        assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
        # Traffic moves before the replication threads are stopped (the last step, detach).
        wait_until("the failover runbook", lambda: "detach" in done_steps(lab, "failover-"), 15)
        assert mariadb.replication_status(lab, "dr")["role"] == "primary"
        run = [e for e in events(lab) if e.get("runbook") == "failover"]
        assert [e["step"] for e in run if e["outcome"] == "done"] == FAILOVER
        assert {e["epoch"] for e in run if e["outcome"] == "done"} == {2}
        assert served_by(lab) == "dr"
        ACKED.update(write_through_service(lab, "wdns", 3.0))
        assert ACKED, "the DR site took no write through the service name"
    finally:
        off.revert()
    assert time.monotonic() - t0 < 120


def test_a_token_and_a_credential_made_before_the_failover_work_at_the_new_active_site(
    lab: Lab,
) -> None:
    """The keys travelled before the disaster: a token issued at the primary after the key
    rotation validates at dr, and the credential encrypted there decrypts at dr."""
    assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
    assert validate(lab, DR_URL, KEPT["token"]) == 200
    fresh = issue_token(lab, DR_URL, scoped=True)
    status, doc = keystone_call(lab, "GET", f"{DR_URL}/v3/credentials/{KEPT['credential']}", fresh)
    assert status == 200, doc
    assert doc["credential"]["blob"] == KEPT["blob"]


def test_the_returning_primary_rejoins_and_failback_brings_the_service_home(lab: Lab) -> None:
    lab.sup.wait_ready("mariadb-primary")
    took = wait_until("failback", lambda: "verify" in done_steps(lab, "failback-"), 60)
    print(f"primary powered on to failback done: {took:.1f} s")
    assert active(lab) == {"site": "primary", "epoch": 3, "holder": "site-primary"}
    assert done_steps(lab, "failback-") == FAILBACK
    assert authoritative(lab) == ["198.18.1.10"]
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 15)
    assert ACKED and keystone.project_names(lab, "primary", "wdns") >= ACKED
    p, d = in_sync_checksums(lab)
    assert p == d
    assert mariadb.replication_status(lab, "dr")["role"] == "replica"


def test_a_planned_switchover_there_and_back_keeps_every_write(lab: Lab) -> None:
    spec, out = keystone.writer_spec(lab, "wsw", "http://keystone.draas.test:5000", "wsw", 8.0, 0.1)
    lab.sup.launch(spec)
    there = draas(lab, "switchover", "--to", "dr", "--yes")
    assert there.returncode == 0, there.stderr
    assert active(lab) == {"site": "dr", "epoch": 4, "holder": "site-dr"}
    assert authoritative(lab) == ["198.18.2.10"]
    time.sleep(4)  # past the confirmation window: a switchover is not undone automatically
    assert active(lab) == {"site": "dr", "epoch": 4, "holder": "site-dr"}
    back = draas(lab, "switchover", "--to", "primary", "--yes")
    assert back.returncode == 0, back.stderr
    assert active(lab) == {"site": "primary", "epoch": 5, "holder": "site-primary"}
    assert done_steps(lab, "switchover-dr-") == FAILBACK[1:]
    wait_until("the writer", lambda: lab.sup.state("wsw") == "exited", 60)
    acked = {r["name"] for r in read_log(out) if r["outcome"] == "acked"}
    assert acked and acked <= keystone.project_names(lab, "primary", "wsw")
    p, d = in_sync_checksums(lab)
    assert p == d
    again = draas(lab, "switchover", "--to", "primary", "--yes")
    assert again.returncode == 3 and "already active" in again.stderr


def status(lab: Lab) -> dict[str, Any]:
    got = draas(lab, "status", "--json")
    return dict(json.loads(got.stdout)) if got.stdout.strip().startswith("{") else {}


def test_a_witness_ten_minutes_fast_is_named_and_moves_nothing(lab: Lab) -> None:
    restart_agent(lab, "witness", fast=True)
    epoch = int(active(lab)["epoch"])  # type: ignore[index]

    took = wait_until(
        "the status names the witness's skew",
        lambda: "CLOCK SKEW: witness +6" in str(status(lab).get("summary", "")),
        30,
    )
    print(f"the status names the witness's clock skew {took:.1f} s after its restart")
    offset = status(lab)["clock"]["offsets_s"]["witness"]
    assert 590 <= offset <= 610, offset
    wait_until(
        "a controller with the right time", lambda: controller(lab) not in (None, "witness"), 20
    )
    wait_until(
        "the clock-skew alert",
        lambda: any("witness +6" in str(e.get("detail")) for e in alert_events(lab, "clock-skew")),
        30,
    )
    time.sleep(6)  # no false failover on its account
    assert active(lab) == {"site": "primary", "epoch": epoch, "holder": "site-primary"}
    assert controller(lab) != "witness"


def test_the_fast_witness_votes_on_time_when_the_primary_is_powered_off(lab: Lab) -> None:
    """DNS scheme: the DR site's agent and the witness are the only voters; compared by its
    own clock, the witness's "down" would count ten minutes late and nothing would move."""
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        dns_s = wait_until(
            "DNS at BIND points at dr", lambda: authoritative(lab) == ["198.18.2.10"], 30
        )
        print(f"the witness 10 minutes fast: power-off to DNS switched in {dns_s:.1f} s")
        assert dns_s < 3 * 0.5 + 2.0 + 15  # the bound of the power-off test above
        wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
        assert controller(lab) != "witness"
    finally:
        off.revert()
    lab.sup.wait_ready("mariadb-primary")
    wait_until("failback", lambda: "verify" in done_steps(lab, "failback-primary-from-e6"), 120)


def test_a_dr_agent_ten_minutes_fast_fails_over_with_the_dns_signed_in_time(lab: Lab) -> None:
    """The issue's first sequence: the DR site's agent ten minutes fast, then the primary
    powered off. The skewed agent never holds the controller lease, so the DNS update is
    signed by an agent with the right time (BIND refuses a signature ten minutes off)."""
    restart_agent(lab, "witness", fast=False)
    wait_until("no skew named", lambda: "CLOCK SKEW" not in str(status(lab)["summary"]), 30)
    restart_agent(lab, "site-dr", fast=True)
    wait_until(
        "the status names site-dr's skew",
        lambda: "CLOCK SKEW: site-dr +6" in str(status(lab).get("summary", "")),
        30,
    )
    wait_until("a controller with the right time", lambda: controller(lab) == "witness", 20)
    wait_until(
        "the clock-skew alert",
        lambda: any("site-dr +6" in str(e.get("detail")) for e in alert_events(lab, "clock-skew")),
        30,
    )
    epoch = int(active(lab)["epoch"])  # type: ignore[index]
    time.sleep(6)  # no false failover on its account
    assert int(active(lab)["epoch"]) == epoch  # type: ignore[index]
    off = PowerOff(lab, host="primary")
    OUTAGE.append(off)
    off.inject()
    dns_s = wait_until("DNS at BIND points at dr", lambda: authoritative(lab) == [DR_IP], 30)
    served_s = dns_s + wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
    print(
        f"site-dr 10 minutes fast: power-off to DNS switched {dns_s:.1f} s, served {served_s:.1f} s"
    )
    assert dns_s < 3 * 0.5 + 2.0 + 15  # the bound of the power-off test above
    assert active(lab) == {"site": "dr", "epoch": epoch + 1, "holder": "site-dr"}
    assert not [e for e in events(lab) if "time" in str(e.get("error") or "").lower()]
    SKEWED.update(write_through_service(lab, "wskew", 3.0))
    assert SKEWED, "the DR site took no write through the service name"


def test_the_skewed_dr_agent_stopped_and_started_right_keeps_the_service(lab: Lab) -> None:
    """The second sequence: the skewed DR agent (holding the record) is stopped with SIGTERM
    and started with the right time, the primary still powered off. The service stays at
    dr, writable, under a holder; nothing acknowledged is lost when the primary comes home."""
    before = active(lab)
    assert before is not None and before["site"] == "dr"
    # A client writes through the service name all along (the agent's stop and restart).
    spec, out = keystone.writer_spec(
        lab, "wterm", "http://keystone.draas.test:5000", "wterm", 10.0, 0.1
    )
    lab.sup.launch(spec)

    def holdings() -> int:
        # Counted, not compared by time: the skewed agent's own times are 600 s ahead.
        return sum(
            1
            for e in read_events(lab)
            if e.runbook == "lease"
            and e.node == "site-dr"
            and e.outcome == "done"
            and e.step in ("adopt", "take-back")
        )

    held_before = holdings()
    wall, t0 = time.time(), time.monotonic()
    restart_agent(lab, "site-dr", fast=False, sig=signal.SIGTERM)
    assert lease_event(lab, "site-dr", "leave", since=wall) is not None

    def holds_again() -> bool:
        return holdings() > held_before

    wait_until("the restarted site-dr agent holds the record again", holds_again, 30)
    held = time.monotonic() - t0
    assert (active(lab) or {}).get("site") == "dr"
    wait_until("the writer", lambda: lab.sup.state("wterm") == "exited", 60)
    rows = read_log(out)
    acked = {r["name"] for r in rows if r["outcome"] == "acked"}
    print(
        f"skewed site-dr agent SIGTERMed and restarted right: holds the record again after "
        f"{held:.1f} s; {len(acked)} of {len(rows)} writes acknowledged meanwhile"
    )
    assert len(acked) >= len(rows) * 0.9  # the service stayed up through the restart
    SKEWED.update(acked)
    assert served_by(lab) == "dr"
    wait_until("no skew named", lambda: "CLOCK SKEW" not in str(status(lab)["summary"]), 30)
    while OUTAGE:
        OUTAGE.pop().revert()
    lab.sup.wait_ready("mariadb-primary")
    took = wait_until("failback", lambda: (active(lab) or {}).get("site") == "primary", 120)
    print(f"the primary back to failback done: {took:.1f} s")
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 30)
    home = keystone.project_names(lab, "primary", "wskew")
    assert home | keystone.project_names(lab, "primary", "wterm") >= SKEWED
