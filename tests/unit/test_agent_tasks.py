"""The agent's other tasks against the test kit: what a vantage point publishes and records,
the outbox that keeps events while the store is away, a frontend following the lease, and the
controller deciding, failing over and failing back (in-memory databases, DNS and probes)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from draas.agent.controller import Controller
from draas.agent.dbwatch import report_of
from draas.agent.gate import RunbookGate
from draas.agent.observer import Observer
from draas.agent.outbox import Outbox
from draas.agent.routing import RouteFollower
from draas.clock import FakeClock
from draas.config import Config, parse_config
from draas.coordination import ActiveRecord, DatabaseReport, Event, Pause, Position
from draas.coordination.memory import MemoryStore
from draas.deployment import Deployment
from draas.failover.runbook import RunbookRunner
from draas.failover.runs import RunId
from draas.health.probes import Probe
from draas.replication import Replicator
from draas.replication.memory import MemoryReplicator
from draas.testkit import ScriptedProbe, event, observation
from draas.traffic.memory import MemorySwitch


# -- a vantage point -------------------------------------------------------------------------
def test_a_vantage_point_records_each_change_it_sees_and_publishes_it() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    outbox = Outbox(store)
    primary, dr = ScriptedProbe(), ScriptedProbe()
    obs = Observer(
        node="witness",
        probes={"primary": [primary], "dr": [dr]},
        rise=2,
        fall=2,
        ttl_s=3.0,
        store=store,
        clock=clock,
        emit=outbox.emit,
    )
    obs.database = lambda: DatabaseReport("replica", True, lag_s=0.0)
    for _ in range(2):
        said = asyncio.run(obs.observe())
        clock.advance(0.5)
    assert said == ["witness sees primary up", "witness sees dr up"]
    primary.ok = False
    assert asyncio.run(obs.observe()) == []  # one failure is not a fall
    clock.advance(0.5)
    assert asyncio.run(obs.observe()) == ["witness sees primary down"]
    obs.publish()
    outbox.flush()
    seen = store.observations()["witness"]
    assert seen.state_of("primary") == observation("", 0.0, primary=("down", clock.now())).state_of(
        "primary"
    )
    assert seen.database == DatabaseReport("replica", True, lag_s=0.0)
    detections = [(e.target, e.outcome) for e in store.events() if e.step == "detect"]
    assert detections == [("primary", "up"), ("dr", "up"), ("primary", "down")]
    assert all(e.node == "witness" and e.run == f"sees-{e.target}" for e in store.events())


def test_a_vantage_point_finds_a_site_unreachable_on_its_own_short_rounds() -> None:
    """The reach rounds: reach_fall rounds without a TCP connection make the site
    unreachable (an event, and the published observation says since when), one accepted
    connection makes it reachable again; the service's checks are not involved."""
    clock = FakeClock()
    store = MemoryStore(clock)
    outbox = Outbox(store)
    gone, deep = ScriptedProbe(), ScriptedProbe()
    obs = Observer(
        node="fe-a",
        probes={"primary": [deep]},
        rise=2,
        fall=3,
        ttl_s=3.0,
        store=store,
        clock=clock,
        emit=outbox.emit,
        reach={"primary": gone},
        reach_fall=3,
    )
    gone.ok = False
    said = []
    for _ in range(3):
        said += asyncio.run(obs.reach_round())
        clock.advance(0.1)
    assert said == ["fe-a finds primary unreachable"] and obs.unreachable() == ["primary"]
    obs.publish()
    outbox.flush()
    seen = store.observations()["fe-a"].state_of("primary")
    assert seen is not None and seen.unreachable_since == pytest.approx(clock.now() - 0.1)
    assert deep.calls == 0  # the service's checks run on their own interval
    gone.ok = True
    assert asyncio.run(obs.reach_round()) == ["fe-a finds primary reachable"]
    assert obs.unreachable() == []
    reach = [(e.step, e.outcome) for e in store.events() if e.run == "sees-primary"]
    assert reach == [("reach", "unreachable")]  # the second is still in the outbox
    outbox.flush()
    assert [e.outcome for e in store.events() if e.step == "reach"] == ["unreachable", "reachable"]


def test_events_wait_in_the_outbox_while_the_store_is_away_and_keep_their_order() -> None:
    store = MemoryStore(FakeClock())
    outbox = Outbox(store, limit=3)
    store.reachable = False
    for i in range(4):
        outbox.emit(event("r", f"s{i}", "done", float(i)))
    assert outbox.flush() == 0 and outbox.dropped == 1  # bounded: the oldest went
    store.reachable = True
    assert outbox.flush() == 3 and outbox.waiting() == []
    assert [(e.step, e.ts) for e in store.events()] == [("s1", 1.0), ("s2", 2.0), ("s3", 3.0)]


def test_a_frontend_follows_the_lease_and_records_each_move() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    outbox = Outbox(store)
    engine = MemorySwitch("fe-a", target="primary")
    published: list[str] = []
    follower = RouteFollower(
        node="fe-a",
        engine=engine,
        store=store,
        clock=clock,
        emit=outbox.emit,
        on_move=lambda: published.append("now"),
    )
    follower.read_back()
    assert follower.follow() == ""  # no record: routing stays where it is
    store.take_active("dr", "site-b", 0, 5.0)
    assert follower.follow() == "fe-a routes to dr (was primary, epoch 1)"
    assert engine.target == "dr" and published == ["now"]
    store.reachable = False
    assert follower.follow() == ""  # the store away: traffic stays with the last lease
    store.reachable = True
    outbox.flush()
    (moved,) = [e for e in store.events() if e.step == "route"]
    assert (moved.node, moved.target, moved.epoch) == ("fe-a", "dr", 1)
    # Watching: a round returns as soon as the record moves, not when its watch times out.
    rec = store.active()
    assert rec is not None
    mover = threading.Timer(0.2, lambda: store.hand_over(rec, "primary", "site-a", 5.0))
    mover.start()
    t0 = time.monotonic()
    said = follower.follow(watch_s=10.0)
    mover.join()
    assert said == "fe-a routes to primary (was dr, epoch 2)" and time.monotonic() - t0 < 5


# -- the controller --------------------------------------------------------------------------
def config(tmp_path: Path) -> Config:
    def site(addr: str) -> dict[str, Any]:
        db = {"host": addr, "password_file": str(tmp_path / "pw")}
        return {"address": addr, "database": db}

    return parse_config(
        {
            "scheme": "dns",
            "service": {
                "name": "keystone",
                "dns_name": "keystone.example.org.",
                "checks": [{"name": "web", "port": 80}],
            },
            "sites": {
                "primary": {"role": "primary", **site("192.0.2.10")},
                "dr": {"role": "dr", **site("198.51.100.10")},
            },
            "nodes": [
                {"name": "site-a", "role": "site", "site": "primary", "address": "192.0.2.10"},
                {"name": "site-b", "role": "site", "site": "dr", "address": "198.51.100.10"},
                {"name": "witness", "role": "witness", "address": "203.0.113.30"},
            ],
            "dns": {
                "provider": "rfc2136",
                "zone": "example.org.",
                "record": "keystone.example.org.",
                "server": "203.0.113.53",
                "tsig_key_file": str(tmp_path / "tsig"),
            },
            "coordination": {"backend": "memory"},
            "replication": {"recovery_dir": str(tmp_path / "recovery")},
            "timings": {"preset": "fast"},
        }
    )


class KitDeployment(Deployment):
    """The deployment with the test kit's parts: in-memory databases and DNS, scripted
    checks (the wiring under test is everything else: run ids, runbooks, holders)."""

    def __init__(self, cfg: Config, store: MemoryStore) -> None:
        super().__init__(cfg, store)
        self.primary = MemoryReplicator("primary", "192.0.2.10")
        self.dr = MemoryReplicator("dr", "198.51.100.10", writable=False)
        self.dr.replicate_from(self.primary, seed=True)
        reps: dict[str, Replicator] = {"primary": self.primary, "dr": self.dr}
        self._reps = reps
        self.memory_dns = MemorySwitch("dns", target="192.0.2.10")
        self._dns = self.memory_dns
        self.check = ScriptedProbe()

    def verify_probes(self, site: str, via: Sequence[str] | None = None) -> list[Probe]:
        return [self.check]


def publish_all(
    store: MemoryStore,
    now: float,
    dr_db: DatabaseReport | None = None,
    **targets: tuple[str, float],
) -> None:
    """Every agent publishes ``targets``; the DR site's agent its database ``dr_db``."""
    for node in ("site-a", "site-b", "witness"):
        obs = observation(node, now, **targets)
        if node == "site-b" and dr_db is not None:
            obs = dataclasses.replace(obs, database=dr_db)
        store.publish(obs, 10.0)


@pytest.fixture
def controller(tmp_path: Path) -> tuple[Controller, KitDeployment, FakeClock]:
    cfg = config(tmp_path)
    clock = FakeClock()
    store = MemoryStore(clock)
    deployment = KitDeployment(cfg, store)
    taken: list[ActiveRecord] = []
    c = Controller(
        cfg=cfg,
        node="site-b",
        store=store,
        clock=clock,
        runner=RunbookRunner(store, "site-b", clock),
        deployment=deployment,
        gate=RunbookGate(),
        on_taken=taken.append,
        emit=store.append_event,
    )
    store.take_active("primary", "site-a", 0, 5.0)
    deployment.primary.write("t0")
    deployment.dr.status()
    # What the active site's agent publishes (asynchronous mode measures the DR site by it).
    store.publish_position(Position("primary", 1, deployment.primary.position(), clock.now()))
    return c, deployment, clock


def decisions(store: MemoryStore) -> list[tuple[str, Any]]:
    return [(e.outcome, e.extra.get("cause")) for e in store.events() if e.runbook == "decision"]


def test_the_controller_fails_over_on_the_quorum_then_fails_back_after_the_hold(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    publish_all(store, clock.now(), primary=("up", clock.now()), dr=("up", clock.now()))
    assert c.duty().startswith("decision: none")
    down = clock.advance(1.0)
    applied = report_of(d.dr.status())  # it had everything the primary last published
    publish_all(store, down, applied, primary=("down", down), dr=("up", down - 1))
    clock.advance(3.0)  # past the 2 s window: confirmed, but the primary still holds
    assert c.duty().startswith("decision: await-release")
    d.primary.reachable_now = False  # powered off: its lease runs out
    clock.advance(2.0)
    publish_all(store, clock.now(), applied, primary=("down", down), dr=("up", down - 1))
    said = c.duty()
    assert said.startswith("failover-dr-from-e1 done (epoch 2)")
    assert store.active() == ActiveRecord("dr", 2, "site-b", "2")
    assert d.memory_dns.target == "198.51.100.10" and not d.dr.read_only
    assert d.dr.log == ["t0"]
    d.dr.write("t1")
    for _ in range(3):
        c.duty()  # the same decision again: no new event
    assert decisions(store) == [
        ("none", "not-confirmed"),
        ("await-release", "held"),
        ("failover", "confirmed"),
        ("none", "not-confirmed"),  # now protecting dr, which nobody sees down
    ]
    # The primary comes back; failback waits for the hold (10 s in the fast preset).
    d.primary.reachable_now = True
    back = clock.advance(1.0)
    publish_all(store, back, primary=("up", back), dr=("up", back))
    store.renew_active(store.active(), 60.0)  # type: ignore[arg-type]  # its holder renews
    assert c.duty().startswith("decision: none")  # up for 1 s: not yet
    clock.advance(10.0)
    publish_all(store, clock.now(), primary=("up", back), dr=("up", back))
    said = c.duty()
    assert said.startswith("failback-primary-from-e2 done (epoch 3)")
    assert store.active() == ActiveRecord("primary", 3, "site-a", "3")
    assert d.primary.log == ["t0", "t1"] and not d.primary.read_only
    assert d.dr.source is d.primary and d.memory_dns.target == "192.0.2.10"


def test_a_pause_holds_the_failover_and_the_failback_and_resume_lets_them_run(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    store.set_pause(Pause("patching the primary", "site-b:cli", clock.now()))
    down = clock.now()
    applied = report_of(d.dr.status())
    d.primary.reachable_now = False  # powered off: its lease runs out
    clock.advance(6.0)
    publish_all(store, clock.now(), applied, primary=("down", down), dr=("up", down - 1))
    said = c.duty()
    assert said.startswith("decision: wait: automatic action paused by site-b:cli")
    assert "would failover" in said and store.active() is None and d.dr.read_only
    assert decisions(store)[-1] == ("wait", "paused")
    clock.advance(6.0)  # the alert holds for 5 s
    publish_all(store, clock.now(), applied, primary=("down", down), dr=("up", down - 1))
    assert "alert paused raised: automatic action paused by site-b:cli" in c.duty()
    assert store.clear_pause()
    publish_all(store, clock.now(), applied, primary=("down", down), dr=("up", down - 1))
    assert c.duty().startswith("failover-dr-from-e1 done (epoch 2)")
    # Paused again: the primary comes back and stays up past the hold; nothing moves home.
    store.set_pause(Pause("watching dr", "site-b:cli", clock.now(), for_s=30.0))
    d.primary.reachable_now = True
    back = clock.advance(1.0)
    for _ in range(3):
        publish_all(store, clock.now(), primary=("up", back), dr=("up", back))
        store.renew_active(store.active(), 60.0)  # type: ignore[arg-type]
        assert "failback" not in c.duty()
        clock.advance(6.0)
    assert store.active() == ActiveRecord("dr", 2, "site-b", "2")
    clock.advance(30.0)  # the pause ends by itself (the store's lease)
    publish_all(store, clock.now(), primary=("up", back), dr=("up", back))
    store.renew_active(store.active(), 60.0)  # type: ignore[arg-type]
    assert c.duty().startswith("failback-primary-from-e2 done (epoch 3)")


def test_an_unfit_replica_is_recorded_and_never_promoted(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    down = clock.now()
    store.release_active(store.active())  # type: ignore[arg-type]
    clock.advance(3.0)
    unfit = DatabaseReport("replica", False, unfit="disk full at site dr")
    for node in ("site-a", "site-b", "witness"):
        o = observation(node, clock.now(), primary=("down", down), dr=("up", down))
        store.publish(o if node != "site-b" else dataclasses.replace(o, database=unfit), 10)
    said = c.duty()
    assert said.startswith("decision: wait") and "disk full at site dr" in said
    assert d.dr.read_only and store.active() is None
    (refusal,) = [e for e in store.events() if e.runbook == "decision"]
    assert isinstance(refusal, Event) and refusal.extra["cause"] == "unfit-replica"


def publish_views(
    store: MemoryStore, now: float, reports: dict[str, DatabaseReport], **targets: tuple[str, float]
) -> None:
    """Every agent publishes ``targets``; a site's agent its database's report too."""
    for node in ("site-a", "site-b", "witness"):
        obs = dataclasses.replace(observation(node, now, **targets), database=reports.get(node))
        store.publish(obs, 10.0)


def test_after_a_switchover_the_dr_site_is_protected_and_its_failure_goes_home(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    """Roles are symmetric: switched over to dr, a disaster there fails over to the home
    site (no failback: it is home), and the returning dr site rejoins as its standby once."""
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    said = c.run(RunId("switchover", "dr", 1), "planned")
    assert said.startswith("switchover-dr-from-e1 done (epoch 2)")
    assert store.active() == ActiveRecord("dr", 2, "site-b", "2")
    d.dr.write("t1")
    store.publish_position(Position("dr", 2, d.dr.position(), clock.now()))
    home = {"site-a": report_of(d.primary.status())}  # it had everything dr published
    publish_views(store, clock.now(), home, primary=("up", 0), dr=("up", 0))
    assert c.duty().startswith("decision: none: dr confirmed down by 0")
    down = clock.advance(1.0)
    d.dr.reachable_now = False  # powered off: its lease runs out
    clock.advance(6.0)
    publish_views(store, clock.now(), home, primary=("up", 0), dr=("down", down))
    said = c.duty()
    assert said.startswith("failover-primary-from-e2 done (epoch 3)"), said
    assert store.active() == ActiveRecord("primary", 3, "site-a", "3")
    assert d.primary.log == ["t0", "t1"] and not d.primary.read_only
    assert d.memory_dns.target == "192.0.2.10"
    # dr comes back: not a failback (the service is home), but a rejoin, after the hold.
    d.dr.reachable_now = True
    back = clock.advance(1.0)
    store.renew_active(store.active(), 60.0)  # type: ignore[arg-type]  # its holder renews
    both = {"site-a": report_of(d.primary.status()), "site-b": report_of(d.dr.status())}
    publish_views(store, back, both, primary=("up", 0), dr=("up", back))
    assert c.duty().startswith("decision: none")  # up for 1 s: not yet
    clock.advance(10.0)
    publish_views(store, clock.now(), both, primary=("up", 0), dr=("up", back))
    assert c.duty().startswith("rejoin-dr-from-e3 done (epoch 3)")
    assert d.dr.source is d.primary and d.dr.read_only
    assert store.active() == ActiveRecord("primary", 3, "site-a", "3")  # nothing moved
    assert c.duty().startswith("decision: none")  # done once: not run again


def test_a_controller_without_the_lease_decides_nothing(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    holding = [False]
    c.holding = lambda: holding[0]
    down = clock.now()
    store.release_active(store.active())  # type: ignore[arg-type]
    clock.advance(3.0)
    applied = report_of(d.dr.status())
    publish_all(store, clock.now(), applied, primary=("down", down), dr=("up", down))
    assert c.duty() == "" and store.active() is None and not decisions(store)
    holding[0] = True  # it takes the lease: it decides at once
    assert c.duty().startswith("failover-dr-from-e1 done (epoch 2)")


def test_a_witness_ten_minutes_fast_still_confirms_a_disaster_on_time(
    controller: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    """Its observation's times are 600 s ahead of the controller's clock: judged on receipt,
    its vote counts after the same window as everyone's (compared as they are, it would have
    counted only ten minutes later)."""
    c, d, clock = controller
    store = d.store
    assert isinstance(store, MemoryStore)
    applied = report_of(d.dr.status())
    skew = 600.0

    def publish(now: float, down_since: float) -> None:
        b = observation("site-b", now, primary=("down", down_since), dr=("up", 0))
        store.publish(dataclasses.replace(b, database=applied), 10.0)
        w = observation("witness", now + skew, primary=("down", down_since + skew), dr=("up", 0))
        store.publish(w, 10.0)

    store.release_active(store.active())  # type: ignore[arg-type]  # the primary is gone
    down = clock.now()
    publish(down, down)
    c.duty()  # both publications received now
    clock.advance(2.5)  # past the 2 s window (fast preset)
    publish(clock.now(), down)
    said = c.duty()
    assert said.startswith("failover-dr-from-e1 done (epoch 2)"), said
    assert c.receipts.offsets()["witness"] == skew
