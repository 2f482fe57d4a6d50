"""The controller lease task of a candidate agent (``failover.controllership`` decides): claim
the lease when it is free, renew it while held, hand it on from the active site between runs.
On its own thread and timer (a third of the lease's TTL), never behind a runbook: a long run
keeps its lease. While it holds the lease it also renews the active record of a site whose
own agent is not running (custody): the site keeps serving under its epoch instead of losing
the record for want of a renewer; only while the controller's last decision saw that site up
by a quorum and moved nothing (a dead site's record must run out; an asynchronous failover
waits for it to be free)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from draas.clock import Clock
from draas.config import Config, Node
from draas.coordination import ActiveRecord, CoordinationStore, Event
from draas.errors import CoordinationError
from draas.failover.controllership import controller_action
from draas.failover.receipts import Receipts, skewed

log = logging.getLogger("draas.agent")


class ControllerLease:
    def __init__(
        self,
        *,
        cfg: Config,
        node: Node,
        store: CoordinationStore,
        clock: Clock,
        emit: Callable[[Event], object],
        busy: Callable[[], bool],
        may_keep: Callable[[str], bool],
        receipts: Receipts | None = None,
    ) -> None:
        self.cfg = cfg
        self.node = node
        self.store = store
        self.clock = clock
        self.emit = emit
        self.busy = busy  # a runbook runs on this agent's controller now
        self.may_keep = may_keep  # the controller finds the site up and moves nothing
        self.receipts = receipts or Receipts()  # the others' clocks, measured on receipt
        self.ttl_s = cfg.controller.ttl_s
        self.every_s = self.ttl_s / 3
        self._lock = threading.Lock()
        self._held_until = 0.0  # monotonic: the lease is ours until then (renewed + TTL)
        self._custody_at = -1e9  # clock time of the last renewal on a site's behalf
        self._custody: ActiveRecord | None = None

    def holding(self) -> bool:
        """Whether this agent holds the controller lease now (by its last renewal)."""
        with self._lock:
            return time.monotonic() < self._held_until

    def tick(self) -> str:
        try:
            return self._tick()
        except CoordinationError as exc:
            return f"controller lease not checked: coordination store unreachable: {exc}"

    def _tick(self) -> str:
        me = self.node.name
        holder = self.store.controller()
        active: ActiveRecord | None = None
        alive: set[str] = set()
        if holder in (None, me):
            active = self.store.active()
            shown = active or self.store.last_active()
            seen = self.store.observations()
            alive = set(seen)
            self.receipts.rebase(seen, self.clock.now())
            site = None if shown is None else shown.site
        else:
            site = None
        me_off = skewed(self.receipts.offsets()).get("")
        elsewhere = [
            n.name
            for n in self.cfg.nodes
            if n.name in self.cfg.controller_candidates() and n.site != site and n.name in alive
        ]
        action = controller_action(
            node=me,
            site=self.node.site,
            holder=holder,
            active_site=site,
            alive_elsewhere=elsewhere,
            busy=self.busy(),
            clock_off_s=me_off,
        )
        was = self.holding()
        started = time.monotonic()
        if action.kind in ("claim", "renew"):
            if self.store.claim_controller(me, self.ttl_s):
                with self._lock:
                    self._held_until = started + self.ttl_s
            else:
                self._lose()
        elif action.kind == "release":
            self._lose()
            self.store.release_controller(me)
        elif holder != me:
            self._lose()
        now = self.holding()
        said = ""
        if now and not was:
            said = f"{me} holds the controller lease: it runs the runbooks ({action.reason})"
            self._event("taken", said)
        elif was and not now:
            said = f"{me} no longer holds the controller lease: {action.reason}"
            self._event("released" if action.kind == "release" else "lost", said)
        if now and active is not None:
            kept = self._keep(active, alive)
            said = "; ".join(s for s in (said, kept) if s)
        return said

    def _lose(self) -> None:
        with self._lock:
            self._held_until = 0.0

    def _keep(self, active: ActiveRecord, alive: set[str]) -> str:
        """Custody: renew ``active`` while its holder's agent is not running."""
        if (
            active.holder == self.node.name
            or active.holder in alive
            or not self.may_keep(active.site)
        ):
            self._custody = None
            return ""
        if self.clock.now() - self._custody_at < self.every_s:
            return ""
        if not self.store.renew_active(active, self.cfg.timings.lease_ttl_s):
            return ""
        self._custody_at = self.clock.now()
        if self._custody is None or not self._custody.same_grant(active):
            self._custody = active
            said = (
                f"{active.holder} (the agent of active site {active.site}) is not running: "
                f"{self.node.name} renews its record (epoch {active.epoch}) until it is back"
            )
            self._event("custody", said, active)
            return said
        return ""

    def release(self) -> str:
        """At shutdown: give the lease up so another agent takes over at once."""
        if not self.holding():
            return ""
        self._lose()
        try:
            self.store.release_controller(self.node.name)
        except CoordinationError as exc:
            return f"controller lease not released (it expires): {exc}"
        return f"{self.node.name} released the controller lease"

    def _event(self, outcome: str, detail: str, record: ActiveRecord | None = None) -> None:
        self.emit(
            Event(
                ts=self.clock.now(),
                node=self.node.name,
                runbook="controller",
                run="controller",
                step="lease" if record is None else "custody",
                outcome=outcome,
                epoch=None if record is None else record.epoch,
                target=None if record is None else record.site,
                detail=detail,
            )
        )
        log.info("%s", detail)
