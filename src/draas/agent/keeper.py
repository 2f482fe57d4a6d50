"""The lease task of a site's agent: gathers a ``LeaseView``, asks ``failover.lease`` what to
do, and carries it out (store calls, the database's demote or promote), recording each change
as an event. ``tick`` is the full round (store read); ``fence_tick`` the self-fencing rule
alone, on a timer that no store call can delay."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

from draas.clock import Clock
from draas.coordination import ActiveRecord, CoordinationStore, Event
from draas.errors import CoordinationError, DraasError, StaleEpoch
from draas.failover.lease import (
    LeaseAction,
    LeaseState,
    LeaseTimings,
    LeaseView,
    StoreView,
    decide_lease,
    wants_planned_move,
    wants_quorum,
)
from draas.failover.policy import Action
from draas.failover.runbook import planned_move_under_way
from draas.replication import Replicator

log = logging.getLogger(__name__)

# The failover policy's action on the store's current observations, given the record read.
Quorum = Callable[[ActiveRecord | None, int], Action]
Emit = Callable[[Event], object]


class DatabaseRole(Protocol):
    """This site's database role as last read (by the database watch), and what the keeper
    itself just made it (so that the next round does not wait for the next reading)."""

    def role(self) -> str | None: ...

    def learned(self, role: str) -> None: ...


class LeaseKeeper:
    def __init__(
        self,
        *,
        node: str,
        site: str,
        home: str,
        timings: LeaseTimings,
        store: CoordinationStore,
        replicator: Replicator | None,
        clock: Clock,
        quorum: Quorum,
        db_role: DatabaseRole,
        emit: Emit,
    ) -> None:
        self.node, self.site, self.home = node, site, home
        self.timings = timings
        self.store = store
        self.rep = replicator
        self.clock = clock
        self.quorum = quorum
        self.db_role = db_role
        self.emit = emit
        self.state = LeaseState()

    # -- views ---------------------------------------------------------------------------------
    def _view(self, store: StoreView | None = None) -> LeaseView:
        return LeaseView(
            now=self.clock.now(),
            node=self.node,
            site=self.site,
            home=self.home,
            held=self.state.snapshot(),
            timings=self.timings,
            store=store,
            db_role=self.db_role.role() if self.rep is not None else None,
        )

    def _read(self) -> LeaseView:
        """The full view: the store read (what the rules may need of it, no more)."""
        active = self.store.active()
        if active is None:
            store = StoreView(None, self.store.last_epoch(), self.store.last_active())
        else:  # the epoch key is written with the record: they are equal
            store = StoreView(active, active.epoch)
        view = self._view(store)
        if wants_quorum(self.node, store):
            view = dataclasses.replace(view, quorum=self.quorum(active, store.last_epoch))
        if wants_planned_move(view):
            planned = planned_move_under_way(self.store.events(), view.now) is not None
            view = dataclasses.replace(view, planned_move=planned)
        return view

    # -- the rounds ----------------------------------------------------------------------------
    def tick(self) -> str:
        """One round: read the store, decide, act. Returns what it did ('' for nothing)."""
        try:
            view = self._read()
        except CoordinationError as exc:
            log.warning("%s: coordination store unreachable: %s", self.node, exc)
            view = self._view()
        said: list[str] = []
        for _ in range(2):  # a renewal, then what else is due on the renewed state
            action = decide_lease(view)
            try:
                said.append(self.carry_out(action, view))
            except CoordinationError as exc:
                said.append(f"{action.kind} failed, coordination store unreachable: {exc}")
                break
            if action.kind != "renew":
                break
            view = dataclasses.replace(view, held=self.state.snapshot(), now=self.clock.now())
        return "; ".join(s for s in said if s)

    def fence_tick(self) -> str:
        """The self-fencing rule alone (no store call)."""
        view = self._view()
        action = decide_lease(view)
        return self.fence(action.reason, view) if action.kind == "fence" else ""

    def took_over(self, record: ActiveRecord) -> None:
        """A failover runbook running here just took ``record``: renew it from now on (the
        runbook's later steps may outlast the lease)."""
        if record.holder == self.node:
            self.state.hold(record, self.clock.now())

    # -- carrying out --------------------------------------------------------------------------
    def carry_out(self, action: LeaseAction, view: LeaseView) -> str:
        kind = action.kind
        if kind == "fence":
            return self.fence(action.reason, view)
        if kind == "take":
            rec = self.store.take_active(self.site, self.node, 0, self.timings.ttl_s)
            self.state.hold(rec, self.clock.now())
            return self._record("take", f"took the active record for {self.site}", rec)
        if kind == "take-back":
            return self._take_back(action, view)
        if kind == "step-down":
            assert action.record is not None
            said = self.fence(action.reason, view)
            # Released even when the database could not be fenced: it is then unreachable
            # (the quorum sees the site down), and the DR site need not wait for the lease.
            self.store.release_active(action.record)
            return self._record("step-down", f"{said}; released the active lease", action.record)
        if kind == "adopt":
            ours = action.record
            assert ours is not None
            if not self.store.renew_active(ours, self.timings.ttl_s):
                return ""
            self.state.hold(ours, self.clock.now())
            return self._record("adopt", f"holds the active record for {self.site}", ours)
        if kind == "renew":
            assert action.record is not None
            if self.store.renew_active(action.record, self.timings.ttl_s):
                self.state.renewed(action.record, self.clock.now())
            return ""
        if kind == "reopen":
            return self.reopen(action, view)
        return ""

    def _record(self, step: str, said: str, rec: ActiveRecord, outcome: str = "done") -> str:
        said = f"{said} (epoch {rec.epoch})"
        self.emit(self._event(step, outcome, said, rec.epoch))
        return said

    def _event(self, step: str, outcome: str, detail: str, epoch: int | None) -> Event:
        return Event(
            ts=self.clock.now(),
            node=self.node,
            runbook="lease",
            run=f"lease-{self.site}",
            step=step,
            outcome=outcome,
            epoch=epoch,
            target=self.site,
            detail=detail,
        )

    def fence(self, why: str, view: LeaseView) -> str:
        """Demote this site's database (read-only, sessions ended) and hold nothing. The rule
        is checked again under the lock, on the state as it is then: a renewal that landed
        meanwhile cancels a fence by time, and a fence already done is not done twice."""
        with self.state.exclusive() as held:
            again = decide_lease(dataclasses.replace(view, held=held))
            if again.kind not in ("fence", "step-down"):
                return ""
            epoch = None if held.record is None else held.record.epoch
            log.warning("fencing %s: %s", self.site, why)
            try:
                if self.rep is not None:
                    self.rep.demote()
                    self.db_role.learned("read-only")
            except DraasError as exc:
                said = f"FAILED to fence {self.site}: {exc}"
                self.emit(self._event("fence", "failed", said, epoch))
                return said
            self.state.fenced()
        said = f"fenced {self.site} (database read-only): {why}"
        self.emit(self._event("fence", "done", said, epoch))
        return said

    def reopen(self, action: LeaseAction, view: LeaseView) -> str:
        """Open this site's database for writes again (the lease says it takes them)."""
        rec = action.record
        if self.rep is None or rec is None:
            return ""
        with self.state.exclusive() as held:
            if decide_lease(dataclasses.replace(view, held=held)).kind != "reopen":
                return ""
            try:
                role = self.rep.status().role
                if role != "read-only":
                    self.db_role.learned(role)
                    return ""
                self.rep.promote(detach=False)
                self.db_role.learned("primary")
            except DraasError as exc:
                said = f"{self.site}'s database is read-only and could not be reopened: {exc}"
                outcome = "failed"
            else:
                said = f"{action.reason}: reopened for writes"
                outcome = "reopened"
        self.emit(
            Event(
                ts=self.clock.now(),
                node=self.node,
                runbook="monitor",
                run=f"database-{self.site}",
                step="writes",
                outcome=outcome,
                epoch=rec.epoch,
                target=self.site,
                detail=said,
            )
        )
        return said

    def _take_back(self, action: LeaseAction, view: LeaseView) -> str:
        last = action.record
        assert last is not None
        try:
            rec = self.store.take_active(self.site, self.node, last.epoch, self.timings.ttl_s)
        except StaleEpoch:
            return ""
        self.state.hold(rec, self.clock.now())
        if view.db_role != "primary" and self.rep is not None:
            with self.state.exclusive():
                try:
                    self.rep.promote(detach=False)
                    self.db_role.learned("primary")
                except DraasError as exc:  # writes stay shut: give the lease up for a failover
                    self.store.release_active(rec)
                    self.state.dropped()
                    said = f"could not reopen writes on {self.site} ({exc}); released the lease"
                    return self._record("take-back", said, rec, outcome="failed")
        return self._record(
            "take-back", f"took the active record for {self.site} back: {action.reason}", rec
        )

    def leave(self) -> str:
        """The agent is stopping: the record it holds stays in the store. While the site is up
        the controller renews it (custody) and this agent adopts it when it runs again; a
        runbook under way keeps its epoch. (Releasing it would leave the service without a
        holder and abandon such a run; when no controller renews it, it expires and this agent
        takes it back when it runs again.)"""
        held = self.state.snapshot()
        if held.record is None or held.fenced:
            return ""
        self.state.dropped()
        return self._record(
            "leave",
            f"stopping; the active record of {self.site} stays: the controller renews it while "
            f"{self.site} is up, and this agent adopts it when it runs again. Until then "
            f"nothing fences {self.site}'s database by time",
            held.record,
        )
