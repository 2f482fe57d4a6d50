"""The controller converges: the pure repair rules, each repair made by the controller on the
test kit, and a property test that drives the real controller and lease keepers (in memory, a
fake clock) through random interleavings of crashes, restarts, stopped agents, powered-off
sites and a misdirected DNS name, then checks that the deployment ends with exactly one
writable active site that takes the traffic and has every acknowledged write."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from test_agent_tasks import KitDeployment, config, publish_views

from draas.agent.controller import REPAIR_GRACE_S, Controller
from draas.agent.dbwatch import report_of
from draas.agent.gate import RunbookGate
from draas.agent.keeper import LeaseKeeper
from draas.clock import FakeClock
from draas.config import Config
from draas.coordination import ActiveRecord, Position
from draas.coordination.memory import MemoryStore
from draas.failover.convergence import Deployed, repair
from draas.failover.lease import LeaseTimings
from draas.failover.runbook import Runbook, RunbookRunner, RunContext, RunState, Step
from draas.replication.memory import MemoryReplicator
from draas.testkit import event, observation

PRIMARY, DR = "192.0.2.10", "198.51.100.10"


def deployed(**kw: Any) -> Deployed:
    base: dict[str, Any] = {
        "active": ActiveRecord("dr", 2, "site-b", "2"),
        "last_active": None,
        "last_epoch": 2,
        "roles": {"primary": "read-only", "dr": "primary"},
        "traffic": "dr",
        "agents_alive": ["primary", "dr"],
        "quorum_up": ["primary", "dr"],
    }
    return Deployed(**(base | kw))


# -- the pure rules --------------------------------------------------------------------------
def test_a_converged_deployment_needs_no_repair() -> None:
    assert repair(deployed()).kind == "none"
    replica = deployed(roles={"primary": "replica", "dr": "primary"}, traffic=None)
    assert repair(replica).kind == "none"


def test_a_writable_site_without_the_record_is_fenced_first() -> None:
    fix = repair(deployed(roles={"primary": "primary", "dr": "primary"}, traffic="primary"))
    assert (fix.kind, fix.site) == ("fence", "primary")
    assert "two sites could acknowledge a write" in fix.reason


def test_traffic_follows_the_record() -> None:
    fix = repair(deployed(traffic="primary"))
    assert (fix.kind, fix.site) == ("switch-traffic", "dr")
    assert "points at primary while dr holds the record (epoch 2)" in fix.reason


def test_a_free_record_is_reinstated_only_for_its_last_holder_when_safe() -> None:
    last = ActiveRecord("dr", 2, "site-b", "2")
    free = {"active": None, "last_active": last, "agents_alive": ["primary"]}
    fix = repair(deployed(**free))
    assert (fix.kind, fix.site) == ("reinstate", "dr") and "for site-b" in fix.reason
    # Each condition that makes it unsafe or someone else's job:
    assert repair(deployed(**free | {"last_epoch": 3})).kind == "none"  # someone took over
    assert repair(deployed(**free | {"quorum_up": ["primary"]})).kind == "none"  # failover's
    assert repair(deployed(**free | {"agents_alive": ["dr"]})).kind == "none"  # take-back
    replica = free | {"roles": {"primary": "read-only", "dr": "replica"}}
    assert repair(deployed(**replica)).kind == "none"


# -- the controller's repairs ----------------------------------------------------------------
@pytest.fixture
def kit(tmp_path: Path) -> tuple[Controller, KitDeployment, FakeClock]:
    cfg = config(tmp_path)
    clock = FakeClock()
    store = MemoryStore(clock)
    d = KitDeployment(cfg, store)
    c = Controller(
        cfg=cfg,
        node="witness",
        store=store,
        clock=clock,
        runner=RunbookRunner(store, "witness", clock),
        deployment=d,
        gate=RunbookGate(),
        on_taken=lambda rec: None,
        emit=store.append_event,
    )
    store.take_active("primary", "site-a", 0, 600.0)
    return c, d, clock


def everyone_sees_both_up(d: KitDeployment, clock: FakeClock) -> None:
    store = d.store
    assert isinstance(store, MemoryStore)
    reports = {"site-a": report_of(d.primary.status()), "site-b": report_of(d.dr.status())}
    publish_views(store, clock.now(), reports, primary=("up", 0.0), dr=("up", 0.0))


def repairs(store: Any) -> list[tuple[str, str, str]]:
    return [
        (e.run.split("-e")[0], e.step, e.outcome)
        for e in store.events()
        if e.run.startswith("repair-")
    ]


def test_the_controller_points_a_misdirected_name_back_after_the_grace(
    kit: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = kit
    clock.advance(20.0)
    d.memory_dns.target = DR  # someone pointed the name at the standby
    everyone_sees_both_up(d, clock)
    assert c.duty().startswith("decision: none")  # seen once: not yet
    assert d.memory_dns.target == DR
    clock.advance(REPAIR_GRACE_S)
    everyone_sees_both_up(d, clock)
    said = c.duty()
    assert "repaired: switch-traffic primary: the DNS name points at dr" in said
    assert d.memory_dns.target == PRIMARY
    assert repairs(d.store) == [
        ("repair-switch-traffic-primary", "switch-traffic", "started"),
        ("repair-switch-traffic-primary", "switch-traffic", "done"),
    ]


def test_the_controller_fences_a_writable_standby(
    kit: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = kit
    clock.advance(20.0)
    d.dr.promote()  # a failover abandoned after its promotion: dr takes writes too
    for _ in range(2):
        everyone_sees_both_up(d, clock)
        said = c.duty()
        clock.advance(REPAIR_GRACE_S)
    assert "repaired: fence dr: dr's database takes writes while primary holds" in said
    assert d.dr.read_only and not d.primary.read_only


def test_the_controller_reinstates_a_free_record_whose_agent_is_gone(
    kit: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    c, d, clock = kit
    store = d.store
    assert isinstance(store, MemoryStore)
    rec = store.active()
    assert rec is not None
    store.release_active(rec)
    d.primary.demote()  # fenced itself when its lease ran out; its agent is not running
    clock.advance(20.0 - REPAIR_GRACE_S)
    for _ in range(2):
        clock.advance(REPAIR_GRACE_S)
        reports = {"dr": report_of(d.dr.status())}
        for node in ("site-b", "witness"):
            store.publish(
                dataclasses.replace(
                    observation(node, clock.now(), primary=("up", 0.0), dr=("up", 0.0)),
                    database=reports["dr"] if node == "site-b" else None,
                ),
                10.0,
            )
        said = c.duty()
    assert "repaired: reinstate primary" in said
    assert store.active() == ActiveRecord("primary", 2, "site-a", "2")
    assert not d.primary.read_only and d.dr.read_only
    # A record another holder took meanwhile is never reinstated over.
    assert c.may_keep("primary")  # the controller renews it until site-a is back


# -- the property: converge after anything ---------------------------------------------------
class Crash(BaseException):
    """The controller's process dies here (SIGKILL): no event, no clean-up."""


class CrashingRunner(RunbookRunner):
    """Dies inside the step the test arms, before or after its work (the step's ``done``
    event is never written either way)."""

    armed: Literal["", "before", "after"] = ""
    skip = 0  # steps to let through first

    def run(self, book: Runbook, run_id: str, ctx: RunContext) -> RunState:
        def wrap(step: Step) -> Step:
            def fn(c: RunContext) -> None:
                how = self.armed
                if how and self.skip > 0:
                    self.skip -= 1
                    how = ""
                elif how:
                    self.armed = ""
                if how == "before":
                    raise Crash(step.name)
                step.run(c)
                if how == "after":
                    raise Crash(step.name)

            return dataclasses.replace(step, run=fn)

        return super().run(Runbook(book.name, [wrap(s) for s in book.steps]), run_id, ctx)


class _Role:
    def __init__(self, rep: MemoryReplicator) -> None:
        self.rep = rep

    def role(self) -> str | None:
        try:
            return self.rep.status().role
        except Exception:
            return None

    def learned(self, role: str) -> None:
        return None


TIMINGS = LeaseTimings(ttl_s=5.0, renew_s=1.0, margin_s=1.0, tick_s=1.0)
NODES = {"primary": "site-a", "dr": "site-b"}


class World:
    """Two sites' lease keepers, a witness, the controller (on the witness), clients."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        self.d = KitDeployment(cfg, self.store)
        self.reps: Mapping[str, MemoryReplicator] = {"primary": self.d.primary, "dr": self.d.dr}
        self.running = {"primary": True, "dr": True}
        self.keepers = {s: self.keeper(s) for s in self.reps}
        self.since: dict[str, tuple[str, float]] = {s: ("up", 0.0) for s in self.reps}
        self.acked: list[str] = []
        self.writes = 0
        self.epochs = [0]
        self.crashes = 0
        self.controller = self.new_controller()

    def keeper(self, site: str) -> LeaseKeeper:
        return LeaseKeeper(
            node=NODES[site],
            site=site,
            home="primary",
            timings=TIMINGS,
            store=self.store,
            replicator=self.reps[site],
            clock=self.clock,
            quorum=lambda active, epoch: "none",
            db_role=_Role(self.reps[site]),
            emit=self.store.append_event,
        )

    def new_controller(self) -> Controller:
        c = Controller(
            cfg=self.cfg,
            node="witness",
            store=self.store,
            clock=self.clock,
            runner=CrashingRunner(self.store, "witness", self.clock),
            deployment=self.d,
            gate=RunbookGate(),
            on_taken=self.taken,
            emit=self.store.append_event,
        )
        self.d._reps = dict(self.reps)  # the same databases, a fresh process around them
        return c

    def arm(self, crash: tuple[Literal["before", "after"], int]) -> None:
        runner = self.controller.runner
        assert isinstance(runner, CrashingRunner)
        runner.armed, runner.skip = crash

    def taken(self, rec: ActiveRecord) -> None:
        site = next(s for s, n in NODES.items() if n == rec.holder)
        if self.up(site):
            self.keepers[site].took_over(rec)

    def up(self, site: str) -> bool:
        return self.reps[site].reachable_now

    # -- what happens -----------------------------------------------------------------------
    def power(self, site: str, on: bool) -> None:
        rep = self.reps[site]
        if rep.reachable_now == on:
            return
        rep.reachable_now = on
        if on:
            if rep.source is None:
                rep.read_only = True  # every server starts read-only
            self.keepers[site] = self.keeper(site)  # its agent starts afresh
        self.since[site] = ("up" if on else "down", self.clock.now())

    def stop_agent(self, site: str) -> None:
        if self.running[site] and self.up(site):
            self.keepers[site].leave()
        self.running[site] = False

    def start_agent(self, site: str) -> None:
        if not self.running[site]:
            self.running[site] = True
            self.keepers[site] = self.keeper(site)

    def write(self) -> None:
        """A client writes where the name points; acknowledged when both sites have it
        (or the standby is gone: then the active site alone acknowledged it)."""
        by_address = {PRIMARY: "primary", DR: "dr"}
        site = by_address.get(self.d.memory_dns.target or "")
        if site is None or not self.up(site):
            return
        self.writes += 1
        txn = f"t{self.writes}"
        try:
            self.reps[site].write(txn)
        except Exception:
            return
        other = self.reps["dr" if site == "primary" else "primary"]
        try:
            other.status()  # a replica pulls what it can
        except Exception:
            return
        if txn in other.log:
            self.acked.append(txn)

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)
        now = self.clock.now()
        for site, keeper in self.keepers.items():
            if self.running[site] and self.up(site):
                keeper.tick()
                rec = self.store.active()
                if rec is not None and rec.site == site and rec.holder == NODES[site]:
                    pos = self.reps[site].position()
                    self.store.publish_position(Position(site, rec.epoch, pos, now))
        self.publish(now)
        self.custody()
        try:
            self.controller.duty()
        except Crash:
            self.crashes += 1
            self.controller = self.new_controller()  # restarted (or another agent took over)
        self.epochs.append(self.store.last_epoch())

    def publish(self, now: float) -> None:
        targets = {s: self.since[s] for s in self.reps}
        for site, node in NODES.items():
            if not (self.running[site] and self.up(site)):
                continue
            obs = observation(node, now, **targets)
            report = report_of(self.reps[site].status())
            self.store.publish(dataclasses.replace(obs, database=report), 3.0)
        self.store.publish(observation("witness", now, **targets), 3.0)

    def custody(self) -> None:
        rec = self.store.active()
        if rec is None:
            return
        site = rec.site
        if not (self.running[site] and self.up(site)) and self.controller.may_keep(site):
            self.store.renew_active(rec, TIMINGS.ttl_s)


Move = tuple[str, Any]
# A crash inside the next run: before or after the work of the step after ``skip`` others.
crashes = st.tuples(st.sampled_from(["before", "after"]), st.integers(0, 8))
outages = st.tuples(
    st.just("outage"),
    st.tuples(st.sampled_from(["primary", "primary", "dr"]), st.integers(3, 25), crashes, crashes),
)
moves = st.one_of(
    st.tuples(st.just("tick"), st.integers(1, 6)),
    st.tuples(st.just("write"), st.just(None)),
    st.tuples(st.just("crash"), crashes),
    *[outages] * 3,  # the disasters the controller exists for, most often
    st.tuples(st.just("power-off"), st.sampled_from(["primary", "dr"])),
    st.tuples(st.just("power-on"), st.sampled_from(["primary", "dr"])),
    st.tuples(st.just("stop-agent"), st.sampled_from(["primary", "dr"])),
    st.tuples(st.just("start-agent"), st.sampled_from(["primary", "dr"])),
    st.tuples(st.just("misdirect"), st.sampled_from([PRIMARY, DR])),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=st.lists(moves, min_size=3, max_size=25))
def test_the_controller_converges_after_any_interleaving(
    tmp_path: Path, program: list[Move]
) -> None:
    w = World(config(tmp_path))
    for _ in range(3):
        w.tick()
    for what, arg in program:
        if what == "tick":
            for _ in range(arg):
                w.tick()
                w.write()
        elif what == "write":
            w.write()
        elif what == "crash":
            w.arm(arg)
        elif what == "outage":  # a crash in the failover, another in what follows
            site, ticks, during, after = arg
            w.arm(during)
            w.power(site, False)
            for _ in range(ticks):
                w.tick()
                w.write()
            w.power(site, True)
            w.arm(after)
        elif what == "power-off":
            w.power(arg, False)
        elif what == "power-on":
            w.power(arg, True)
        elif what == "stop-agent":
            w.stop_agent(arg)
        elif what == "start-agent":
            w.start_agent(arg)
        elif what == "misdirect":
            w.d.memory_dns.target = arg
    # Everything comes back and nothing else fails: the deployment must converge.
    for site in w.reps:
        w.power(site, True)
        w.start_agent(site)
    for _ in range(90):
        w.tick()
        w.write()
    rec = w.store.active()
    assert rec is not None, "nobody holds the record"
    site, other = w.reps[rec.site], w.reps["dr" if rec.site == "primary" else "primary"]
    assert not site.read_only and site.source is None, f"{rec.site} does not take writes"
    assert other.read_only or other.source is site, "two sites take writes"
    assert w.d.memory_dns.target == (PRIMARY if rec.site == "primary" else DR)
    lost = [t for t in w.acked if t not in site.log]
    assert not lost, f"acknowledged writes lost: {lost}"
    kinds = {
        e.run.split("-")[0] + ("-" + e.step if e.run.startswith("repair") else "")
        for e in w.store.events()
        if e.outcome == "done"
    }
    for kind in sorted(kinds - {"lease", "decision"}):
        tally(f"done: {kind}")
    tally(f"crashes: {min(w.crashes, 2)}")
    # The epoch never went back; no step of any run was done twice.
    assert w.epochs == sorted(w.epochs)
    done = Counter((e.run, e.step) for e in w.store.events() if e.outcome == "done")
    assert [k for k, n in done.items() if n > 1 and k[0].split("-")[0] != "lease"] == []


def test_a_record_taken_back_after_a_failover_still_goes_home(
    kit: tuple[Controller, KitDeployment, FakeClock],
) -> None:
    """The DR agent restarted after its record expired takes it back under a new epoch: the
    service still came to dr by a failover, so failback still follows; after a planned
    switchover it does not."""
    c, d, clock = kit
    store = d.store
    log = [
        ("failover-dr-from-e1", "take-lease", 2),
        ("lease-dr", "take-back", 3),
        ("switchover-dr-from-e4", "hand-over", 5),
        ("lease-dr", "take-back", 6),
        ("repair-reinstate-dr-e6-1.000", "take-lease", 7),
    ]
    for run, step, epoch in log:
        store.append_event(event(run, step, "done", clock.now(), epoch=epoch))
    assert [c.came_by_failover(n) for n in (2, 3, 5, 6, 7)] == [True, True, False, False, False]
    assert not c.came_by_failover(9)  # no event took it: not by a failover
