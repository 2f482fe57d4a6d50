"""The agents in the lab, DNS scheme, real etcd/MariaDB/BIND/Keystone: the primary takes the
lease; a partition the witness does not share causes no failover, nor does a broken
replication link (only an event); a primary power-off moves the service to the DR site in
order, under a new epoch; the returning primary rejoins and failback brings the service home
with every write made at the DR site."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import (
    active,
    authoritative,
    done_steps,
    events,
    in_sync_checksums,
    served_by,
    wait_until,
    write_through_service,
)

from draas.lab.agents import start_agents
from draas.lab.components import bind9, keystone, mariadb
from draas.lab.disasters import Partition, PowerOff, ReplicationLink
from draas.lab.lab import Lab
from draas.lab.services import resolve

pytestmark = pytest.mark.lab

FAILOVER = ["take-lease", "fence-old", "promote", "switch-traffic", "verify"]
FAILBACK = ["rejoin", "catch-up", "pause-and-drain", "hand-over", "promote",
            "reverse-replication", "switch-traffic", "verify"]  # fmt: skip
ACKED: set[str] = set()


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Iterator[Lab]:
    start_agents(dns_lab, preset="fast")
    yield dns_lab


def test_the_primary_agent_takes_the_active_lease(lab: Lab) -> None:
    wait_until("active record", lambda: active(lab) is not None, 30)
    assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}


def test_a_partition_the_witness_does_not_share_causes_no_failover(lab: Lab) -> None:
    with Partition(lab, hosts=["dr"], peers=["primary"]):
        time.sleep(8)  # well past fall x interval + the confirmation window of the preset
    assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}
    assert authoritative(lab) == ["198.18.1.10"]
    log = lab.sup.log_path("agent-site-dr").read_text()
    assert "site-dr sees primary down" in log
    assert "failover to dr done" not in log


def test_a_broken_replication_link_alone_is_an_event_not_a_failover(lab: Lab) -> None:
    with ReplicationLink(lab):
        wait_until("the replication-broken event", lambda: any(
            e.get("run") == "replication-dr" and e["outcome"] == "broken"
            for e in events(lab)), 30)  # fmt: skip
        time.sleep(3)  # past the confirmation window: nothing else may happen
        assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}
        assert authoritative(lab) == ["198.18.1.10"]
    wait_until("the replication-healthy event", lambda: [
        e["outcome"] for e in events(lab) if e.get("run") == "replication-dr"][-1:] ==
        ["healthy"], 30)  # fmt: skip
    mariadb.wait_in_sync(lab, "dr", "primary")
    assert not [e for e in events(lab) if e.get("runbook") == "failover"]


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
        assert mariadb.replication_status(lab, "dr")["role"] == "primary"
        wait_until("the failover runbook", lambda: "verify" in done_steps(lab, "failover-"), 15)
        run = [e for e in events(lab) if e.get("runbook") == "failover"]
        assert [e["step"] for e in run if e["outcome"] == "done"] == FAILOVER
        assert {e["epoch"] for e in run if e["outcome"] == "done"} == {2}
        assert served_by(lab) == "dr"
        ACKED.update(write_through_service(lab, "wdns", 3.0))
        assert ACKED, "the DR site took no write through the service name"
    finally:
        off.revert()
    assert time.monotonic() - t0 < 120


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
