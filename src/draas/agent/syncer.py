"""The active site's agent keeps the sync record true (``failover.sync`` decides, this carries
it out, on a thread of its own so that a stalled database or store never holds up the lease),
and publishes its GTID position for asynchronous mode's bound. Every change of the record is
an event (runbook ``sync``, run ``sync-STANDBY``: ``named`` or ``removed``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from draas.clock import Clock
from draas.coordination import (
    ActiveRecord,
    CoordinationStore,
    Event,
    Observation,
    Position,
    SyncRecord,
)
from draas.errors import CoordinationError, DraasError, StaleEpoch
from draas.failover.sync import SyncAction, SyncView, decide_sync
from draas.replication import Replicator, SemiSyncState, gtid

log = logging.getLogger(__name__)

Emit = Callable[[Event], object]
OBSERVATIONS_S = 2.0  # how long the standby's published report is reused (it changes every 2 s)
SYNC_READ_S = 2.0  # the sync record is read again at least this often (we are its only writer)
POSITION_S = 0.5  # how often the position is published (when it moved)
RETRY_S = 5.0  # after a removal, the least time before the standby is named again


class Syncer:
    def __init__(
        self,
        *,
        node: str,
        site: str,
        standby: str,
        own: Replicator,
        partner: Replicator | None,
        standby_agents: list[str],
        store: CoordinationStore,
        clock: Clock,
        emit: Emit,
        held: Callable[[], ActiveRecord | None],
        degrade_after_s: float,
        semi_sync: bool,
        retry_s: float = RETRY_S,
    ) -> None:
        self.node, self.site, self.standby = node, site, standby
        self.own, self.partner = own, partner
        self.standby_agents = standby_agents
        self.store = store
        self.clock = clock
        self.emit = emit
        self.held = held
        self.degrade_after_s = degrade_after_s
        self.semi_sync = semi_sync
        self.retry_s = retry_s
        self._observations: tuple[float, dict[str, Observation]] = (-1e9, {})
        self._published: tuple[float, str] = (-1e9, "")
        self._removed_at = -1e9  # monotonic time of the last removal (or failed naming)
        # The record as last read or written by us, and when (None: read it again): under our
        # epoch only we write it; any failed or uncertain write drops the copy.
        self._sync: tuple[float, SyncRecord | None] | None = None

    # -- gathering -----------------------------------------------------------------------------
    def _standby_report(self) -> Observation | None:
        at, seen = self._observations
        if time.monotonic() - at > OBSERVATIONS_S:
            seen = self.store.observations()
            self._observations = (time.monotonic(), seen)
        for agent in self.standby_agents:
            obs = seen.get(agent)
            if obs is not None and obs.database is not None:
                return obs
        return None

    def _record(self) -> SyncRecord | None:
        cached = self._sync
        if cached is None or time.monotonic() - cached[0] > SYNC_READ_S:
            self._sync = None
            cached = (time.monotonic(), self.store.sync())
            self._sync = cached
        return cached[1]

    def view(self, record: ActiveRecord, semi: SemiSyncState | None) -> SyncView:
        sync = self._record()
        obs = self._standby_report()
        db = None if obs is None else obs.database
        source_ok = db is not None and db.source == self.own.endpoint.host
        behind = None
        if db is not None and semi is not None and db.gtid_slave_pos is not None:
            behind = gtid.behind(gtid.parse(semi.gtid_binlog_pos), gtid.parse(db.gtid_slave_pos))
        return SyncView(
            epoch=record.epoch,
            record=sync,
            standby=self.standby,
            semi=semi,
            standby_db=db,
            standby_source_ok=source_ok,
            degrade_after_s=self.degrade_after_s,
            standby_behind=behind,
            retry_in_s=max(0.0, self.retry_s - (time.monotonic() - self._removed_at)),
        )

    # -- the round -----------------------------------------------------------------------------
    def tick(self) -> str:
        """Up to three actions (clear, then disable or name) so a new holder stops stalling
        its writes within one round; returns what changed ('' for nothing)."""
        record = self.held()
        if record is None or record.site != self.site:
            return ""
        said: list[str] = []
        try:
            for _ in range(3):
                try:
                    semi: SemiSyncState | None = self.own.semi_sync_state()
                except DraasError:
                    semi = None
                if not said:
                    self._publish_position(record, semi)
                if not self.semi_sync:
                    return ""
                view = self.view(record, semi)
                action = decide_sync(view)
                if action.kind == "none":
                    break
                said.append(self.apply(action, view, record) or action.kind)
        except (CoordinationError, StaleEpoch) as exc:
            self._sync = None  # read it again
            said.append(f"sync record not checked: {exc}")
        return "; ".join(s for s in said if s not in ("", "clear"))

    def _publish_position(self, record: ActiveRecord, semi: SemiSyncState | None) -> None:
        at, last = self._published
        if time.monotonic() - at < POSITION_S or semi is None:
            return
        pos = semi.gtid_binlog_pos
        if pos != last or time.monotonic() - at > 10 * POSITION_S:
            self.store.publish_position(Position(self.site, record.epoch, pos, self.clock.now()))
            self._published = (time.monotonic(), pos)

    def apply(self, action: SyncAction, view: SyncView, record: ActiveRecord) -> str:
        now = self.clock.now()
        if action.kind == "clear":
            self._write(record, view, None, action.reason, now)
            return ""
        if action.kind == "disable":
            self.own.set_semi_sync(False)
            return f"semi-sync off: {action.reason}"
        if action.kind == "degrade":
            return self._degrade(action, view, record, now)
        return self._name(action, view, record)

    def _degrade(self, action: SyncAction, view: SyncView, record: ActiveRecord, now: float) -> str:
        try:
            self._write(record, view, None, action.reason, now)
        except (CoordinationError, StaleEpoch) as exc:
            # Not removed from the record: commits keep waiting (the lease rules fence us if
            # the store stays out of reach); never acknowledge without the named standby.
            return f"{self.standby} NOT removed from the sync record ({exc}); writes wait"
        self.own.set_semi_sync(False)  # only now may commits complete without the standby
        self._removed_at = time.monotonic()
        self._event("removed", action.reason, record.epoch, now)
        return f"{self.standby} is no longer eligible for failover: {action.reason}"

    def _name(self, action: SyncAction, view: SyncView, record: ActiveRecord) -> str:
        if self.partner is None:
            return ""
        if not self.partner.reachable(timeout_s=0.5):
            self._removed_at = time.monotonic()
            return f"{self.standby} not named: its database does not answer"
        self.own.set_semi_sync(True)  # from now on every commit waits for the standby
        try:
            self.partner.wait_caught_up(self.own, timeout_s=max(0.5, self.degrade_after_s))
        except DraasError as exc:
            self.own.set_semi_sync(False)
            self._removed_at = time.monotonic()
            return f"{self.standby} not named: it did not catch up ({exc})"
        now = self.clock.now()
        self._write(record, view, self.standby, action.reason, now)
        self._event("named", action.reason, record.epoch, now)
        return f"{self.standby} is eligible for failover: {action.reason}"

    def _write(
        self, record: ActiveRecord, view: SyncView, standby: str | None, why: str, now: float
    ) -> None:
        """Compare-and-swap the sync record under our epoch (StaleEpoch: it changed)."""
        new = SyncRecord(record.epoch, standby, now, why)
        self._sync = None  # a failed or uncertain write: read it again
        self.store.set_sync(record, view.record, new)
        self._sync = (time.monotonic(), new)

    def _event(self, outcome: str, detail: str, epoch: int, now: float) -> None:
        self.emit(
            Event(
                ts=now,
                node=self.node,
                runbook="sync",
                run=f"sync-{self.standby}",
                step="eligibility",
                outcome=outcome,
                epoch=epoch,
                target=self.standby,
                detail=detail,
            )
        )
        log.log(logging.INFO if outcome == "named" else logging.WARNING, "%s: %s", outcome, detail)
