"""Fence before promote, with the agents in the lab (DNS scheme): a primary cut off from the DR
site and the witness fences itself within its lease time, before the DR site is promoted; a
crashed service whose agent lives on steps down (fences, releases) and the DR site takes over."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support import lease_event, wait_until

from draas.lab.agents import etcd_get, start_agents
from draas.lab.components import mariadb
from draas.lab.disasters import Partition, ServiceCrash
from draas.lab.lab import Lab, LabSettings

pytestmark = pytest.mark.lab

TTL = 5.0  # the fast preset's lease


@pytest.fixture
def lab(lab_name: str) -> Iterator[Lab]:
    lab = Lab(lab_name)
    try:
        lab.up(LabSettings(scheme="dns"))
        start_agents(lab, preset="fast")
        deadline = time.monotonic() + 30
        while not etcd_get(lab, "active"):
            assert time.monotonic() < deadline, "no agent took the active record"
            time.sleep(0.2)
        yield lab
    finally:
        lab.down()


def active(lab: Lab) -> dict[str, object] | None:
    got = etcd_get(lab, "active")
    return json.loads(got[0]) if got else None


def lease_step_at(lab: Lab, step: str, since: float, timeout: float = 20) -> float:
    """When the primary's agent recorded the lease event ``step`` (it may reach the log only
    once the agent reaches the store again)."""
    wait_until(
        f"the primary's {step} event",
        lambda: lease_event(lab, "site-primary", step, since),
        timeout,
    )
    found = lease_event(lab, "site-primary", step, since)
    assert found is not None
    return found.ts


def promoted_at(lab: Lab) -> float | None:
    events = [json.loads(e) for e in etcd_get(lab, "events/", prefix=True)]
    starts = [e["ts"] for e in events if e["step"] == "promote" and e["outcome"] == "started"]
    return starts[0] if starts else None


def wait_dr_active(lab: Lab, timeout: float = 40) -> float:
    """Wait until the DR site holds the record and its promotion started; return that time."""
    deadline = time.monotonic() + timeout
    while (active(lab) or {}).get("site") != "dr" or (when := promoted_at(lab)) is None:
        assert time.monotonic() < deadline, f"no failover: {active(lab)}"
        time.sleep(0.3)
    return when


def test_a_cut_off_primary_fences_itself_before_dr_is_promoted(lab: Lab) -> None:
    t0 = time.time()
    with Partition(lab, hosts=["primary"], peers=["dr", "witness"]):  # clients still reach it
        promoted = wait_dr_active(lab)
        assert mariadb.replication_status(lab, "primary")["read_only"] is True
    fenced = lease_step_at(lab, "fence", t0)  # recorded when the store is back
    print(
        f"partition at 0 s; primary fenced itself at {fenced - t0:.1f} s; DR promoted at "
        f"{promoted - t0:.1f} s"
    )
    assert fenced - t0 <= TTL + 0.5  # within its lease time
    assert fenced < promoted  # never two writable sites
    wait_until(  # the promotion started before the heal; it may still be applying its relay log
        "the DR database open for writes",
        lambda: mariadb.replication_status(lab, "dr")["role"] == "primary",
        30,
    )


def test_a_crashed_service_steps_its_site_down_and_dr_takes_over(lab: Lab) -> None:
    t0 = time.time()
    ServiceCrash(lab, process="web-primary").inject()  # the agent and the database live on
    promoted = wait_dr_active(lab)
    released = lease_step_at(lab, "step-down", t0)
    print(
        f"service crash at 0 s; primary stepped down at {released - t0:.1f} s; DR promoted "
        f"at {promoted - t0:.1f} s"
    )
    assert released < promoted
    assert mariadb.replication_status(lab, "primary")["read_only"] is True
    assert active(lab) == {"site": "dr", "epoch": 2, "holder": "site-dr"}
