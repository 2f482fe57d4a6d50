"""Who may be promoted: the sync record's rules (table-driven), eligibility in both modes, the
active site's syncer against the in-memory store and replicators (order: the record first, then
semi-sync off; semi-sync on and caught up, then the record), and the race between a holder that
degrades and a standby that takes over: exactly one wins."""

from __future__ import annotations

import dataclasses

import pytest

from draas.agent.dbwatch import report_of
from draas.agent.syncer import Syncer
from draas.clock import FakeClock
from draas.coordination import ActiveRecord, DatabaseReport, Event, Position, SyncRecord
from draas.coordination.memory import MemoryStore
from draas.errors import StaleEpoch
from draas.failover.sync import SyncView, decide_sync, eligibility
from draas.replication import SemiSyncState
from draas.replication.memory import MemoryReplicator
from draas.testkit import observation

FIT = DatabaseReport("replica", True, io_running="Yes", sql_running="Yes", source="db.a")
ON = SemiSyncState(enabled=True, clients=1, waiting_s=0.0)
OFF = SemiSyncState(enabled=False, clients=1, waiting_s=0.0)


def view(
    record: SyncRecord | None,
    semi: SemiSyncState | None = ON,
    db: DatabaseReport | None = FIT,
    epoch: int = 3,
) -> SyncView:
    return SyncView(
        epoch=epoch,
        record=record,
        standby="b",
        semi=semi,
        standby_db=db,
        standby_source_ok=db is not None and db.source == "db.a",
        degrade_after_s=1.0,
        standby_behind=0,
    )


NAMED = SyncRecord(3, "b", 100.0)
NOBODY = SyncRecord(3, None, 100.0)
STALE = SyncRecord(2, "b", 50.0)


@pytest.mark.parametrize(
    ("v", "kind"),
    [
        (view(NAMED, epoch=0), "none"),  # not active: not ours to change
        (view(NAMED), "none"),  # named, acknowledging
        (view(NAMED, semi=None), "none"),  # our database unreadable: change nothing
        (view(NAMED, dataclasses.replace(ON, waiting_s=0.9)), "none"),  # within the bound
        (view(NAMED, dataclasses.replace(ON, waiting_s=1.0)), "degrade"),  # stalled too long
        (view(NAMED, OFF), "degrade"),  # semi-sync off behind our back (a restart)
        (view(NAMED, db=dataclasses.replace(FIT, unfit="SQL thread stopped")), "degrade"),
        (view(None), "clear"),  # never written
        (view(STALE), "clear"),  # an older holder's naming is no one's
        (view(NOBODY), "disable"),  # nobody named: commits need not wait
        (view(NOBODY, OFF), "name"),  # ready: enable, catch up, then name
        (view(NOBODY, OFF, db=None), "none"),  # the standby publishes nothing
        (view(NOBODY, OFF, db=dataclasses.replace(FIT, source="db.x")), "none"),  # elsewhere
        (view(NOBODY, dataclasses.replace(OFF, clients=0)), "none"),  # not connected
        (view(NOBODY, OFF, db=dataclasses.replace(FIT, healthy=False)), "none"),
        (view(NOBODY, OFF, db=dataclasses.replace(FIT, unfit="disk full")), "none"),
        (dataclasses.replace(view(NOBODY, OFF), retry_in_s=2.0), "none"),  # just removed
        (dataclasses.replace(view(NOBODY, OFF), standby_behind=21), "none"),  # far behind
        (dataclasses.replace(view(NOBODY, OFF), standby_behind=None), "none"),  # unknown
    ],
)
def test_the_sync_rules(v: SyncView, kind: str) -> None:
    assert decide_sync(v).kind == kind


def test_eligibility_in_semi_sync_mode_is_being_named_under_the_last_epoch() -> None:
    def fit(record: SyncRecord | None, last_epoch: int = 3) -> str:
        return eligibility(
            mode="semi-sync",
            standby="b",
            last_epoch=last_epoch,
            record=record,
            report=FIT,
            position=None,
            max_lag_trx=0,
        ).why_not

    assert fit(NAMED) == ""
    assert "never named" in fit(NAMED, last_epoch=4)  # a newer holder never named it
    assert "never named" in fit(None)
    removed = SyncRecord(3, None, 100.0, "a commit has waited 1.0 s")
    assert fit(removed) == "b is not the named synchronous standby: a commit has waited 1.0 s"


def test_eligibility_in_async_mode_is_a_bounded_lag_behind_the_published_position() -> None:
    def fit(applied: str, published: str | None, bound: int = 10) -> tuple[str, int | None]:
        e = eligibility(
            mode="async",
            standby="b",
            last_epoch=3,
            record=None,
            report=dataclasses.replace(FIT, gtid_slave_pos=applied),
            position=None if published is None else Position("a", 3, published, 1.0),
            max_lag_trx=bound,
        )
        return e.why_not, e.behind

    assert fit("0-1-100", "0-1-105") == ("", 5)
    why, behind = fit("0-1-100", "0-1-111")
    assert behind == 11 and "lacks 11 transaction(s)" in why
    assert fit("0-1-100", "0-1-100", bound=0) == ("", 0)
    assert "never published" in fit("0-1-100", None)[0]


# -- the syncer, against the in-memory store and replicators ---------------------------------
class Kit:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        self.a = MemoryReplicator("a", "db.a")
        self.b = MemoryReplicator("b", "db.b", writable=False)
        self.b.replicate_from(self.a, seed=True)
        self.record = self.store.take_active("a", "agent-a", 0, 60.0)
        self.events: list[Event] = []
        self.syncer = Syncer(
            node="agent-a",
            site="a",
            standby="b",
            own=self.a,
            partner=self.b,
            standby_agents=["agent-b"],
            store=self.store,
            clock=self.clock,
            emit=self.events.append,
            held=lambda: self.record,
            degrade_after_s=1.0,
            semi_sync=True,
            retry_s=0.0,
        )

    def publish_standby(self) -> None:
        obs = dataclasses.replace(observation("agent-b", self.clock.now()))
        self.store.publish(dataclasses.replace(obs, database=report_of(self.b.status())), 60.0)
        self.syncer._observations = (-1e9, {})  # read again at once

    def tick(self) -> str:
        self.publish_standby()
        return self.syncer.tick()


def test_the_holder_names_its_standby_only_once_it_acknowledges_and_removes_it_first() -> None:
    kit = Kit()
    kit.a.semi_on = True  # as a promote leaves it
    said = kit.tick()  # clear, then disable (nobody named), then name
    assert "b is eligible for failover" in said
    assert kit.store.sync() == SyncRecord(1, "b", kit.clock.now(), kit.store.sync().reason)  # type: ignore[union-attr]
    assert kit.a.semi_on is True
    assert [e.outcome for e in kit.events] == ["named"]
    assert kit.tick() == ""  # named and acknowledging: nothing to do

    # The link is cut and a commit waits: after the bound, the record first, then semi off.
    seen_when_off: list[SyncRecord | None] = []
    kit.a.hooks["set_semi_sync"] = lambda: seen_when_off.append(kit.store.sync())
    kit.b.link_up = False
    kit.a.waiting_s = 0.5
    assert kit.tick() == ""  # within the bound: writes wait
    kit.a.waiting_s = 1.2
    said = kit.tick()
    assert "b is no longer eligible for failover" in said
    assert seen_when_off and seen_when_off[0] is not None and seen_when_off[0].standby is None
    assert kit.a.semi_on is False and kit.events[-1].outcome == "removed"

    # Healed: caught up and connected, it is named again (semi-sync on before the record).
    kit.a.hooks.clear()
    kit.b.link_up, kit.a.waiting_s = True, 0.0
    kit.a.write("t1")
    said = kit.tick()
    assert "b is eligible for failover" in said and kit.a.semi_on
    assert kit.b.log == kit.a.log
    assert [e.outcome for e in kit.events] == ["named", "removed", "named"]


def test_a_holder_that_cannot_write_the_record_does_not_degrade_its_writes_wait() -> None:
    kit = Kit()
    kit.tick()
    assert kit.store.sync() is not None and kit.store.sync().standby == "b"  # type: ignore[union-attr]
    kit.b.link_up = False
    kit.a.waiting_s = 5.0
    kit.publish_standby()
    kit.store.reachable = False
    said = kit.syncer.tick()
    assert "not checked" in said or "NOT removed" in said
    assert kit.a.semi_on is True  # never acknowledges alone while still named
    kit.store.reachable = True
    assert kit.store.sync().standby == "b"  # type: ignore[union-attr]


def test_a_degrading_holder_and_a_standby_taking_over_never_both_win() -> None:
    kit = Kit()
    kit.tick()
    named = kit.store.sync()
    assert named is not None and named.standby == "b"
    # Standby first: the holder's lease ran out and the standby takes the record with the
    # naming it saw; the old holder's removal then fails (its record is gone): it stays named.
    kit.clock.advance(61.0)
    taken = kit.store.take_active("b", "agent-b", 1, 60.0, named=named)
    assert taken.epoch == 2
    with pytest.raises(StaleEpoch):
        kit.store.set_sync(kit.record, named, SyncRecord(1, None, kit.clock.now()))

    # Holder first: it removes the standby while it holds; the take with that naming fails.
    kit2 = Kit()
    kit2.tick()
    named2 = kit2.store.sync()
    assert named2 is not None
    kit2.store.set_sync(kit2.record, named2, SyncRecord(1, None, kit2.clock.now(), "stalled"))
    kit2.clock.advance(61.0)
    with pytest.raises(StaleEpoch):
        kit2.store.take_active("b", "agent-b", 1, 60.0, named=named2)
    assert kit2.store.active() is None


def test_the_holder_publishes_its_position_for_async_mode() -> None:
    kit = Kit()
    kit.syncer.semi_sync = False
    kit.a.write("t1")
    kit.tick()
    pos = kit.store.position()
    assert pos == Position("a", 1, "0-1-1", kit.clock.now())
    assert kit.store.sync() is None  # async mode names no one


def test_an_active_record_of_another_site_is_not_ours_to_sync() -> None:
    kit = Kit()
    kit.record = ActiveRecord("b", 1, "agent-b")
    assert kit.tick() == "" and kit.store.sync() is None
