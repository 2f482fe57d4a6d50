"""A site agent's lease task, carried out against the test kit: the fake clock, the in-memory
store (made unreachable to cut the site off), the in-memory replicator and the database
watch. What the lab proves in minutes, in milliseconds."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from draas.agent.dbwatch import DatabaseWatch
from draas.agent.keeper import LeaseKeeper
from draas.agent.outbox import Outbox
from draas.clock import FakeClock
from draas.coordination import ActiveRecord, Event
from draas.coordination.memory import MemoryStore
from draas.errors import CoordinationError
from draas.failover.lease import LeaseTimings
from draas.failover.policy import Action
from draas.replication.memory import MemoryReplicator
from draas.testkit import event

T = LeaseTimings(ttl_s=5.0, renew_s=1.0, margin_s=1.0)


@dataclass
class Site:
    """One site's agent: its lease task, its database and its database watch."""

    clock: FakeClock
    store: MemoryStore
    db: MemoryReplicator
    watch: DatabaseWatch
    keeper: LeaseKeeper
    outbox: Outbox
    quorum: list[Action] = field(default_factory=lambda: ["none"])

    def tick(self) -> str:
        said = self.keeper.tick()
        self.outbox.flush()
        return said

    def fence_tick(self) -> str:
        return self.keeper.fence_tick()

    def lease_events(self, step: str) -> list[Event]:
        self.outbox.flush()
        return [e for e in self.store.events() if e.runbook == "lease" and e.step == step]


def make_site(
    store: MemoryStore, clock: FakeClock, name: str = "primary", node: str = "site-a"
) -> Site:
    db = MemoryReplicator(name)
    outbox = Outbox(store)
    holder: list[LeaseKeeper] = []
    watch = DatabaseWatch(
        node=node,
        site=name,
        rep=db,
        store=store,
        clock=clock,
        emit=outbox.emit,
        holding=lambda: holder[0].state.snapshot().record is not None,
        db_hosts={name: db.endpoint.host},
    )
    quorum: list[Action] = ["none"]
    keeper = LeaseKeeper(
        node=node,
        site=name,
        home="primary",
        timings=T,
        store=store,
        replicator=db,
        clock=clock,
        quorum=lambda active, epoch: quorum[0],
        db_role=watch,
        emit=outbox.emit,
    )
    holder.append(keeper)
    watch.check()
    return Site(clock, store, db, watch, keeper, outbox, quorum)


@pytest.fixture
def site() -> Site:
    clock = FakeClock()
    s = make_site(MemoryStore(clock), clock)
    assert s.tick() == "took the active record for primary (epoch 1)"
    return s


def test_the_home_site_takes_the_record_first_and_renews_it_when_due(site: Site) -> None:
    assert site.store.active() == ActiveRecord("primary", 1, "site-a", "1")
    calls = site.store.calls
    site.clock.advance(0.5)
    assert site.tick() == "" and site.store.calls - calls == 1  # the record read: not yet due
    site.clock.advance(0.6)
    site.tick()
    assert site.keeper.state.snapshot().last_renewal == site.clock.now()
    site.clock.advance(4.5)  # the renewal extended the lease: still there after 5.6 s
    assert site.store.active() is not None


def test_a_renewal_is_tried_even_when_the_record_cannot_be_read(site: Site) -> None:
    """A store that times out on reads (a member rejoining, an election) may still take the
    renewal: the holder tries it rather than count down to a fence."""
    reads = {"n": 0}
    real = site.store.active

    def flaky_active() -> ActiveRecord | None:
        reads["n"] += 1
        raise CoordinationError("read timed out")

    site.store.active = flaky_active  # type: ignore[method-assign]
    for _ in range(8):  # 4 s of rounds whose reads all fail
        site.clock.advance(0.5)
        site.tick()
        assert site.fence_tick() == ""
    site.store.active = real  # type: ignore[method-assign]
    assert reads["n"] == 8 and not site.db.read_only
    assert site.keeper.state.snapshot().last_renewal == site.clock.now()


def test_a_holder_cut_off_from_the_store_fences_itself_before_its_lease_can_expire(
    site: Site,
) -> None:
    site.db.write("t1")
    site.store.reachable = False  # the site is cut off: every store call fails
    for _ in range(15):  # 3.75 s of ticks: renewals fail, nothing fenced yet
        site.clock.advance(0.25)
        site.tick()
        site.fence_tick()
    assert not site.db.read_only
    site.clock.advance(0.25)
    said = site.fence_tick()  # the fence watch alone: no store call needed
    assert said == "fenced primary (database read-only): could not renew the lease for 4.0 s"
    assert site.db.read_only and site.keeper.state.snapshot().fenced
    with pytest.raises(Exception, match="read-only"):
        site.db.write("t2")
    assert site.fence_tick() == ""  # fenced once
    site.store.reachable = True
    site.outbox.flush()  # the fence reaches the event log once the store is back
    (fence,) = site.lease_events("fence")
    assert fence.node == "site-a" and fence.epoch == 1 and fence.ts == site.clock.now()


def test_after_a_blip_nobody_used_the_holder_takes_the_record_back_and_reopens(
    site: Site,
) -> None:
    site.store.reachable = False
    site.clock.advance(4.0)
    site.fence_tick()
    assert site.db.read_only
    site.clock.advance(1.5)  # the lease expired meanwhile; nobody took the record
    site.store.reachable = True
    assert site.store.active() is None
    site.watch.check()
    said = site.tick()
    assert said.startswith("took the active record for primary back")
    assert site.store.active() == ActiveRecord("primary", 2, "site-a", "2")
    assert not site.db.read_only  # writes reopened: the site still holds every write
    site.db.write("after the blip")
    assert [e.outcome for e in site.lease_events("take-back")] == ["done"]


def test_no_take_back_once_another_site_took_over(site: Site) -> None:
    site.store.reachable = False
    site.clock.advance(4.0)
    site.fence_tick()
    site.clock.advance(1.5)
    site.store.reachable = True
    site.store.take_active("dr", "site-b", 1, 5.0)  # a failover took epoch 2
    site.tick()
    assert site.db.read_only and site.store.active() == ActiveRecord("dr", 2, "site-b", "2")


def test_no_take_back_while_the_quorum_sees_the_site_down(site: Site) -> None:
    site.store.reachable = False
    site.clock.advance(4.0)
    site.fence_tick()
    site.clock.advance(1.5)
    site.store.reachable = True
    site.quorum[0] = "failover"
    assert site.tick() == "" and site.store.active() is None and site.db.read_only


def test_the_home_site_steps_down_on_the_quorums_word(site: Site) -> None:
    site.quorum[0] = "await-release"
    said = site.tick()
    assert said.startswith("fenced primary (database read-only): a quorum of vantage points")
    assert said.endswith("released the active lease (epoch 1)")
    assert site.db.read_only and site.store.active() is None  # released: no lease wait
    assert [e.step for e in site.store.events() if e.runbook == "lease"] == [
        "take",
        "fence",
        "step-down",
    ]
    site.quorum[0] = "failover"
    site.clock.advance(1.0)
    assert site.tick() == ""  # the DR site's turn: no take-back


def test_a_database_closed_behind_the_holders_back_is_reopened(site: Site) -> None:
    site.db.read_only = True  # someone ran SET GLOBAL read_only = ON
    site.watch.check()
    site.clock.advance(0.5)
    said = site.tick()
    assert said.endswith("reopened for writes") and not site.db.read_only
    reopened = [e for e in site.store.events() if e.run == "database-primary"]
    assert [e.outcome for e in reopened] == ["reopened"]


def test_no_reopen_while_a_planned_move_drains_the_site(site: Site) -> None:
    run = "switchover-dr-from-e1"
    site.store.append_event(
        event(run, "pause-and-drain", "started", site.clock.now(), runbook="switchover")
    )
    site.db.read_only = True  # paused on purpose by the switchover
    site.watch.check()
    for _ in range(3):
        site.clock.advance(0.5)
        site.tick()
    assert site.db.read_only  # left closed while the move runs
    site.store.append_event(
        event(run, "pause-and-drain", "failed", site.clock.now(), runbook="switchover")
    )
    for _ in range(2):  # a renewal first if one is due, then the reopen
        site.clock.advance(0.5)
        site.tick()
    assert not site.db.read_only  # the move ended: the holder reopens


def test_a_handed_over_record_is_adopted_and_renewed() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    primary = make_site(store, clock)
    dr = make_site(store, clock, "dr", "site-b")
    primary.tick()
    current = store.active()
    assert current is not None
    store.hand_over(current, "dr", "site-b", 5.0)  # a switchover's hand-over step
    said = dr.tick()
    assert said == "holds the active record for dr (epoch 2)"
    assert dr.keeper.state.snapshot().record == store.active()
    primary.tick()  # the old holder sees the record moved: it fences
    assert primary.db.read_only and primary.keeper.state.snapshot().fenced
    for _ in range(12):  # the new holder keeps it alive
        clock.advance(0.5)
        dr.tick()
    assert store.active() is not None and store.active().site == "dr"  # type: ignore[union-attr]


def test_fence_and_reopen_never_interleave(site: Site) -> None:
    """A reopen is under way (its promote is slow) when the fence watch finds the time run
    out: the fence waits for the reopen to end, then fences. Demote never runs inside
    promote, and the database ends read-only."""
    inside: list[str] = []
    overlaps: list[str] = []
    release = threading.Event()

    def slow_promote() -> None:
        inside.append("promote")
        release.wait(5)
        inside.remove("promote")

    def demote() -> None:
        if inside:
            overlaps.append("demote inside " + inside[0])

    site.db.hooks["promote"] = slow_promote
    site.db.hooks["demote"] = demote
    site.db.read_only = True
    site.watch.check()
    site.clock.advance(0.5)
    reopening = threading.Thread(target=site.keeper.tick)
    reopening.start()
    deadline = time.monotonic() + 5
    while "promote" not in inside and time.monotonic() < deadline:
        time.sleep(0.001)
    assert inside == ["promote"]
    site.clock.advance(4.0)  # no renewal for 4.5 s: the fence rule fires
    fencing = threading.Thread(target=site.keeper.fence_tick)
    fencing.start()
    time.sleep(0.05)
    assert fencing.is_alive() and not site.keeper.state.snapshot().fenced  # it waits
    release.set()
    reopening.join(5)
    fencing.join(5)
    assert overlaps == []
    roles = [c for c in site.db.calls if c in ("promote", "demote")]
    assert roles[-2:] == ["promote", "demote"]
    assert site.db.read_only and site.keeper.state.snapshot().fenced


def test_stopping_leaves_the_record_and_the_restarted_agent_adopts_it(site: Site) -> None:
    before = site.store.active()
    assert before is not None
    said = site.keeper.leave()
    assert said.startswith("stopping; the active record of primary stays")
    assert site.store.active() == before and not site.db.read_only
    assert site.keeper.leave() == ""  # nothing held any more: nothing said twice
    site.outbox.flush()
    assert [e.step for e in site.store.events() if e.runbook == "lease"] == ["take", "leave"]
    # The agent runs again: it adopts the same grant (a run under way keeps its epoch).
    restarted = site.keeper.tick()
    assert restarted.startswith("holds the active record for primary")
    assert site.store.active() == before
