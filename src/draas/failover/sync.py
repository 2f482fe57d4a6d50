"""Who may be promoted: the rules the active site's agent follows for the sync record. Pure: a
snapshot in, one action out (the agent's ``syncer`` reads and carries it out).

The promise (DESIGN.md, invariant 3) is kept by order, as in Patroni's synchronous mode:

- **name** a standby only once commits wait for its acknowledgement and it holds everything
  committed before (semi-sync on, the standby caught up), then write it into the record;
- **degrade** by removing the standby from the record first (compare-and-swap under the
  holder's epoch), and only then let commits complete without it (semi-sync off). A holder
  that cannot write the record does not degrade: its writes stall and the lease rules fence it;
- a standby removed is named again only after a pause (``retry_in_s``) and once its own
  report shows it caught up (at most ``CATCH_UP_TRX`` behind): a cut link does not turn into
  a stall every few seconds;
- a commit waiting longer than ``degrade_after_s`` for the named standby, semi-sync found off
  (a restarted server), or a standby that cannot apply what it receives (stopped by an error,
  stalled on a full disk) each end its naming;
- with no standby named under this epoch, commits need not wait: semi-sync goes off at once
  (after a failover the new active site acknowledges alone until its partner is back).

Semi-sync's own timeout is effectively infinite and ``wait_no_slave`` is on: MariaDB never
falls back to asynchronous replication by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from draas.coordination import DatabaseReport, Position, SyncRecord
from draas.replication import SemiSyncState, gtid

SyncKind = Literal["none", "clear", "name", "degrade", "disable"]
# A standby is named again only once its own report shows it at most this many transactions
# behind (then enabling semi-sync stalls commits only while it applies those).
CATCH_UP_TRX = 20


@dataclass(frozen=True)
class SyncView:
    epoch: int  # the epoch this site holds (0: it holds none)
    record: SyncRecord | None  # as the store has it now
    standby: str  # the site that would be named
    semi: SemiSyncState | None  # our database's semi-sync side (None: unreadable)
    standby_db: DatabaseReport | None  # the standby's database as its agent published it
    standby_source_ok: bool  # that report says it replicates from our database
    degrade_after_s: float
    standby_behind: int | None = None  # transactions of ours its report had not applied
    retry_in_s: float = 0.0  # removed this recently: not named again before this has passed


@dataclass(frozen=True)
class SyncAction:
    kind: SyncKind
    reason: str


def named(view: SyncView) -> bool:
    return view.record is not None and view.record.names(view.standby, view.epoch)


def not_ready(view: SyncView) -> str:
    """Why the standby cannot be named now ('' when it can)."""
    db, semi = view.standby_db, view.semi
    if db is None:
        return f"{view.standby}'s agent publishes no database report"
    if db.unfit:
        return f"{view.standby} cannot apply what it receives: {db.unfit}"
    if db.role != "replica" or not view.standby_source_ok:
        return f"{view.standby} does not replicate from this site (its role: {db.role})"
    if not db.healthy:
        return f"{view.standby}'s replication is not running: {db.last_error or 'no error'}"
    if semi is None or semi.clients < 1:
        return f"{view.standby} is not connected to acknowledge commits"
    if view.retry_in_s > 0:
        return f"removed from the record a moment ago: tried again in {view.retry_in_s:.1f} s"
    if view.standby_behind is None or view.standby_behind > CATCH_UP_TRX:
        behind = "an unknown number of" if view.standby_behind is None else view.standby_behind
        return f"{view.standby} is {behind} transaction(s) behind (at most {CATCH_UP_TRX})"
    return ""


def decide_sync(view: SyncView) -> SyncAction:
    if view.epoch == 0:
        return SyncAction("none", "this site is not active")
    semi = view.semi
    if semi is None:
        return SyncAction("none", "our database cannot be read: nothing is changed")
    if named(view):
        if not semi.enabled:
            return SyncAction(
                "degrade",
                f"semi-sync is off on this site's database: commits would complete without "
                f"{view.standby}'s acknowledgement",
            )
        if semi.waiting_s >= view.degrade_after_s:
            return SyncAction(
                "degrade",
                f"a commit has waited {semi.waiting_s:.1f} s for {view.standby}'s "
                f"acknowledgement ({semi.clients} standby connected)",
            )
        unfit = None if view.standby_db is None else view.standby_db.unfit
        if unfit:
            return SyncAction("degrade", f"{view.standby} cannot apply what it receives: {unfit}")
        return SyncAction("none", f"{view.standby} is the named synchronous standby")
    record = view.record
    if record is None or record.epoch != view.epoch or record.standby is not None:
        return SyncAction("clear", f"no standby is named under epoch {view.epoch} yet")
    if semi.enabled:
        return SyncAction("disable", "no standby is named: commits need not wait for one")
    why = not_ready(view)
    if why:
        return SyncAction("none", f"not named: {why}")
    return SyncAction("name", f"{view.standby} replicates from this site and is connected")


@dataclass(frozen=True)
class Eligibility:
    """Whether ``standby`` may be promoted automatically: '' when it may, else why not, with
    the transactions it lacked at the last report (None: not known)."""

    why_not: str
    behind: int | None = None
    since: float | None = None  # when it stopped being eligible (semi-sync: record's time)


def eligibility(
    *,
    mode: str,
    standby: str,
    last_epoch: int,
    record: SyncRecord | None,
    report: DatabaseReport | None,
    position: Position | None,
    max_lag_trx: int,
) -> Eligibility:
    """Semi-sync: the record names ``standby`` under the last epoch granted. Async: the
    standby had applied all but at most ``max_lag_trx`` of the transactions in the position
    the active site last published."""
    behind = transactions_behind(report, position)
    if mode == "semi-sync":
        if record is not None and record.names(standby, last_epoch):
            return Eligibility("", behind)
        if record is None or record.epoch != last_epoch:
            return Eligibility(
                f"{standby} is not the named synchronous standby of epoch {last_epoch} "
                "(never named under it)",
                behind,
            )
        why = f": {record.reason}" if record.reason else ""
        return Eligibility(
            f"{standby} is not the named synchronous standby{why}", behind, record.since
        )
    if position is None:
        return Eligibility(
            f"the active site never published its position: {standby} may lack writes"
        )
    if behind is None:
        return Eligibility(f"{standby}'s applied position is not known")
    if behind > max_lag_trx:
        return Eligibility(
            f"{standby} lacks {behind} transaction(s) of the last published position "
            f"(at most {max_lag_trx} allowed: replication.max_failover_lag_trx)",
            behind,
        )
    return Eligibility("", behind)


def transactions_behind(report: DatabaseReport | None, position: Position | None) -> int | None:
    """Transactions of ``position`` the reported database had not applied (None: unknown)."""
    if report is None or position is None:
        return None
    applied = report.gtid_slave_pos if report.role == "replica" else report.gtid_binlog_pos
    if applied is None:
        return None
    return gtid.behind(gtid.parse(position.gtid), gtid.parse(applied))
