"""The failover, switchover and failback runbooks, run against the test kit: two in-memory
databases, an in-memory traffic switch, scripted probes, the in-memory store. What each step
does, and that a refused step leaves the service as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from draas.clock import FakeClock
from draas.coordination import ActiveRecord, SyncRecord
from draas.coordination.memory import MemoryStore
from draas.errors import ReplicationError, StaleEpoch
from draas.failover.runbook import RunbookRunner, RunContext
from draas.failover.runbooks import failover_runbook, switchover_runbook
from draas.failover.runs import FAILBACK_STEPS, FAILOVER_STEPS, SWITCHOVER_STEPS
from draas.replication.memory import MemoryReplicator
from draas.testkit import ScriptedProbe
from draas.traffic.memory import MemorySwitch


class Kit:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        self.primary = MemoryReplicator("primary")
        self.dr = MemoryReplicator("dr", writable=False)
        self.dr.replicate_from(self.primary, seed=True)
        self.reps = {"primary": self.primary, "dr": self.dr}
        self.dns = MemorySwitch("dns", target="198.51.100.1")
        self.probe = ScriptedProbe()
        self.taken: list[ActiveRecord] = []

    def failover(self, expected_epoch: int = 1, named_only: bool = False) -> RunContext:
        book = failover_runbook(
            self.store,
            target="dr",
            old_site="primary",
            expected_epoch=expected_epoch,
            holder="site-b",
            reps=self.reps,
            switches=[(self.dns, "198.51.100.2")],
            verify=[self.probe],
            ttl_s=5.0,
            on_taken=self.taken.append,
            named_only=named_only,
        )
        ctx = RunContext()
        RunbookRunner(self.store, "site-b", self.clock).run(book, "failover-dr-from-e1", ctx)
        return ctx

    def switchover(self, to: str, epoch: int, rejoin: Path | None = None) -> RunContext:
        source = "dr" if to == "primary" else "primary"
        book = switchover_runbook(
            self.store,
            source=source,
            target=to,
            holder=f"site-{to}",
            reps=self.reps,
            switches=[(self.dns, f"addr-{to}")],
            verify=[self.probe],
            ttl_s=5.0,
            rejoin_dir=rejoin,
            catch_up_s=1.0,
        )
        ctx = RunContext(epoch=epoch)
        run = f"{'failback' if rejoin else 'switchover'}-{to}-from-e{epoch}"
        RunbookRunner(self.store, "controller", self.clock).run(book, run, ctx)
        return ctx


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.store.take_active("primary", "site-a", 0, 5.0)
    for i in range(3):
        k.primary.write(f"t{i}")
    return k


def test_the_runbooks_steps_are_the_named_ones_in_order(kit: Kit, tmp_path: Path) -> None:
    kit.clock.advance(6.0)  # the primary's lease expired
    kit.failover()
    done = [e.step for e in kit.store.events() if e.outcome == "done"]
    assert tuple(done) == FAILOVER_STEPS


def test_a_failover_promotes_the_dr_site_with_every_write_it_received(kit: Kit) -> None:
    kit.dr.status()  # replicated up to the disaster
    kit.primary.reachable_now = False  # the primary site is powered off
    kit.clock.advance(6.0)
    ctx = kit.failover()
    assert ctx.epoch == 2
    assert kit.store.active() == ActiveRecord("dr", 2, "site-b", "2")
    assert kit.taken == [kit.store.active()]  # its holder renews it from the first step
    assert kit.dr.log == ["t0", "t1", "t2"] and not kit.dr.read_only and kit.dr.source is None
    assert kit.dns.target == "198.51.100.2"
    kit.dr.write("after the failover")


def test_a_failover_waits_for_a_held_record_and_changes_nothing(kit: Kit) -> None:
    with pytest.raises(StaleEpoch, match="holds the active record"):
        kit.failover()
    assert kit.dr.read_only and kit.dns.moves == []
    assert kit.store.active() == ActiveRecord("primary", 1, "site-a", "1")


def test_an_automatic_failover_takes_over_only_as_the_named_synchronous_standby(kit: Kit) -> None:
    holder = kit.store.active()
    assert holder is not None
    kit.store.set_sync(holder, None, SyncRecord(1, "dr", 0.0))
    removed = SyncRecord(1, None, 1.0, "a commit waited 1.0 s")
    kit.store.set_sync(holder, kit.store.sync(), removed)  # the link was cut: degraded
    kit.clock.advance(6.0)  # then the primary died: its lease expired
    with pytest.raises(StaleEpoch, match="not the named synchronous standby"):
        kit.failover(named_only=True)
    assert kit.store.active() is None and kit.dr.read_only and kit.store.last_epoch() == 1
    ctx = kit.failover(named_only=False)  # forced by an operator: it goes ahead
    assert ctx.epoch == 2 and not kit.dr.read_only


def name_dr(kit: Kit) -> ActiveRecord:
    """The primary holds epoch 1 and replicates to the DR site synchronously."""
    holder = kit.store.active()
    assert holder is not None
    kit.store.set_sync(holder, None, SyncRecord(1, "dr", 0.0, "caught up"))
    kit.primary.semi_on = True
    return holder


def test_the_named_standby_stops_acknowledging_then_takes_the_held_record(kit: Kit) -> None:
    """No wait for a live lease: once the DR site's receiver is stopped the old primary can
    complete no commit, the record moves under epoch + 1 and every acknowledged write is
    promoted with the DR site."""
    old = name_dr(kit)
    kit.primary.write("acked")  # acknowledged: the standby received it
    order: list[str] = []
    kit.dr.hooks["stop_receiving"] = lambda: order.append(f"stop, record {kit.store.active()}")
    refused: list[str] = []

    def old_primary_alive_meanwhile() -> None:  # not yet fenced: its commits must not complete
        with pytest.raises(ReplicationError, match="waits for an acknowledgement") as exc:
            kit.primary.write("never acknowledged")
        refused.append(str(exc.value))

    kit.dr.hooks["promote"] = old_primary_alive_meanwhile
    ctx = kit.failover(named_only=True)  # the primary's lease still runs
    assert order == [f"stop, record {old}"]  # the receiver stopped before the record moved
    assert ctx.epoch == 2 and kit.store.active() == ActiveRecord("dr", 2, "site-b", "2")
    assert kit.dr.log == ["t0", "t1", "t2", "acked"] and not kit.dr.read_only
    assert kit.store.renew_active(old, 5.0) is False  # the old holder learns it lost
    assert len(refused) == 1 and "never acknowledged" not in kit.dr.log
    done = [e.step for e in kit.store.events() if e.outcome == "done"]
    assert done.index("promote") < done.index("fence-old")  # fencing does not delay it


def test_a_standby_removed_first_is_not_promoted_and_acknowledges_again(kit: Kit) -> None:
    holder = name_dr(kit)
    removed = SyncRecord(1, None, 1.0, "a commit waited 1.0 s")

    def primary_degrades_meanwhile() -> None:  # the race with the holder's syncer: it wins
        kit.store.set_sync(holder, kit.store.sync(), removed)

    kit.dr.hooks["stop_receiving"] = primary_degrades_meanwhile
    with pytest.raises(StaleEpoch):
        kit.failover(named_only=True)
    assert kit.store.active() == holder and kit.dr.read_only and kit.dr.receiving
    assert "resume_receiving" in kit.dr.calls
    kit.primary.semi_on = False  # degraded: commits complete alone, the DR site still receives
    kit.primary.write("after")
    assert kit.dr.status().lag_trx == 0


def test_a_standby_that_is_not_named_stops_nothing_and_takes_nothing(kit: Kit) -> None:
    holder = kit.store.active()
    assert holder is not None
    kit.store.set_sync(holder, None, SyncRecord(1, None, 0.0, "never caught up"))
    with pytest.raises(StaleEpoch, match="not the named synchronous standby"):
        kit.failover(named_only=True)
    assert "stop_receiving" not in kit.dr.calls and kit.dr.receiving
    assert kit.store.active() == holder and kit.dr.read_only


def test_a_failover_fences_a_reachable_old_primary(kit: Kit) -> None:
    kit.clock.advance(6.0)
    kit.failover()
    assert kit.primary.read_only and "demote" in kit.primary.calls


def test_a_dns_switch_that_keeps_failing_fails_the_step_and_is_resumed_later(kit: Kit) -> None:
    kit.clock.advance(6.0)
    kit.dns.fail_next = 10
    with pytest.raises(Exception, match="cannot reach"):
        kit.failover()
    failed = [e for e in kit.store.events() if e.outcome == "failed"]
    assert [e.step for e in failed] == ["switch-traffic"]
    kit.dns.fail_next = 0
    kit.failover()  # the same run again: it resumes at the failed step
    done = [e.step for e in kit.store.events() if e.outcome == "done"]
    assert tuple(done) == FAILOVER_STEPS  # each step done once


def test_a_planned_switchover_loses_nothing_and_reverses_replication(kit: Kit) -> None:
    ctx = kit.switchover("dr", epoch=1)
    assert ctx.epoch == 2
    assert kit.store.active() == ActiveRecord("dr", 2, "site-dr", "2")
    assert kit.dr.log == ["t0", "t1", "t2"] and not kit.dr.read_only
    assert kit.primary.source is kit.dr and kit.primary.read_only
    kit.dr.write("t3")
    assert kit.primary.status().lag_trx == 0 and kit.primary.log[-1] == "t3"
    done = [e.step for e in kit.store.events() if e.outcome == "done"]
    assert tuple(done) == SWITCHOVER_STEPS


def test_a_switchover_whose_target_cannot_catch_up_reopens_the_source(kit: Kit) -> None:
    kit.dr.link_up = False  # the replica stopped receiving
    kit.primary.write("t3")
    with pytest.raises(ReplicationError):
        kit.switchover("dr", epoch=1)
    assert not kit.primary.read_only  # writes reopened: nothing changed
    assert kit.store.active() == ActiveRecord("primary", 1, "site-a", "1")


def test_a_failback_saves_what_only_the_old_primary_held(kit: Kit, tmp_path: Path) -> None:
    kit.dr.status()  # replicated up to here
    kit.primary.write("only-on-primary")  # acknowledged, never replicated (async)
    kit.primary.reachable_now = False
    kit.clock.advance(6.0)
    kit.failover()
    kit.dr.write("on-dr")
    kit.primary.reachable_now = True  # the old primary is back, still writable
    ctx = kit.switchover("primary", epoch=2, rejoin=tmp_path)
    assert ctx.errant == 1
    assert (tmp_path / "errant-primary.txt").read_text() == "only-on-primary\n"
    assert kit.primary.log == ["t0", "t1", "t2", "on-dr"] and not kit.primary.read_only
    assert kit.store.active() == ActiveRecord("primary", 3, "site-primary", "3")
    done = [
        e.step for e in kit.store.events() if e.run.startswith("failback") and e.outcome == "done"
    ]
    assert tuple(done) == FAILBACK_STEPS


def test_a_failback_that_failed_after_the_hand_over_resumes_under_the_new_epoch(
    kit: Kit, tmp_path: Path
) -> None:
    """Run again from the epoch it started from (as the controller does), the run acts for
    the epoch its hand-over took, not the one it started from (it was abandoned before)."""
    kit.primary.reachable_now = False
    kit.clock.advance(6.0)
    kit.failover()
    kit.primary.reachable_now = True

    def refuse() -> None:
        raise ReplicationError("dr cannot reach primary yet", retryable=True)

    kit.dr.hooks["replicate_from"] = refuse
    with pytest.raises(ReplicationError):
        kit.switchover("primary", epoch=2, rejoin=tmp_path)  # fails at reverse-replication
    assert kit.store.active() == ActiveRecord("primary", 3, "site-primary", "3")
    del kit.dr.hooks["replicate_from"]
    ctx = kit.switchover("primary", epoch=2, rejoin=tmp_path)  # resumed there
    assert ctx.epoch == 3
    failback = [e for e in kit.store.events() if e.run.startswith("failback")]
    assert [e.step for e in failback if e.outcome == "done"] == list(FAILBACK_STEPS)
    assert not any(e.outcome == "abandoned" for e in failback)
