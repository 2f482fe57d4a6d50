"""The agents in the lab, DNS scheme, real etcd/MariaDB/BIND/Keystone: the primary takes the
lease; a partition the witness does not share causes no failover; a primary power-off moves
the service to the DR site in order, under a new epoch; the returning primary stays fenced."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from draas.lab.agents import etcd_get, start_agents
from draas.lab.components import bind9, mariadb
from draas.lab.disasters import Partition, PowerOff
from draas.lab.lab import Lab
from draas.lab.services import resolve

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Iterator[Lab]:
    start_agents(dns_lab, preset="fast")
    yield dns_lab


def active(lab: Lab) -> dict[str, object] | None:
    got = etcd_get(lab, "active")
    return json.loads(got[0]) if got else None


def wait_until(what: str, check: object, timeout: float) -> float:
    t0 = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - t0 < timeout, f"{what} not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - t0


def authoritative(lab: Lab) -> list[str]:
    proc = lab.exec(
        "witness",
        ["dig", "+short", "+time=1", "+tries=1", "@198.18.0.53", "keystone.draas.test"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.split()


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
        events = [json.loads(e) for e in etcd_get(lab, "events/", prefix=True)]
        done = [e["step"] for e in events if e["outcome"] == "done"]
        assert done == ["take-lease", "fence-old", "promote", "switch-traffic", "verify"]
        assert {e["epoch"] for e in events if e["outcome"] == "done"} == {2}
        proc = lab.exec(
            "client",
            ["curl", "-s", "-m", "5", "http://keystone.draas.test/"],
            capture_output=True,
            text=True,
        )
        assert "site=dr" in proc.stdout
    finally:
        off.revert()
    assert time.monotonic() - t0 < 120


def test_the_returning_primary_stays_fenced(lab: Lab) -> None:
    lab.sup.wait_ready("mariadb-primary")
    time.sleep(3)  # its agent is back and has run a few cycles
    assert mariadb.replication_status(lab, "primary")["read_only"] is True
    assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
    assert authoritative(lab) == ["198.18.2.10"]
