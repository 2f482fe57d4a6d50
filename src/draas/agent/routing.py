"""A frontend's agent routes its data plane to the site that holds the ``active`` record
(traffic follows the lease, never raw health), reads back where it routes every few rounds (a
restarted data plane may route elsewhere), and records each move as an event. It watches the
record (``wait_active``): a move is followed as soon as the store has it."""

from __future__ import annotations

import time
from collections.abc import Callable

from draas.clock import Clock
from draas.coordination import ActiveRecord, CoordinationStore, Event
from draas.errors import CoordinationError, DraasError
from draas.traffic import TrafficSwitch

READ_BACK_EVERY = 5  # rounds
WATCH_S = 1.0  # the longest a watch is held open (then the round reads back and watches anew)


class RouteFollower:
    def __init__(
        self,
        *,
        node: str,
        engine: TrafficSwitch,
        store: CoordinationStore,
        clock: Clock,
        emit: Callable[[Event], object],
        on_move: Callable[[], None],
    ) -> None:
        self.node = node
        self.engine = engine
        self.store = store
        self.clock = clock
        self.emit = emit
        self.on_move = on_move  # republish the observation at once
        self.routes_to: str | None = None
        self.rounds = 0
        self.seen: ActiveRecord | None = None  # the record as last read

    def read_back(self) -> None:
        try:
            self.routes_to = self.engine.current()
        except DraasError:
            self.routes_to = None

    def follow(self, watch_s: float = 0.0) -> str:
        """One round: the record (as soon as it moves, within ``watch_s``), then route to its
        site if the data plane does not."""
        try:
            if watch_s > 0:
                active = self.store.wait_active(self.seen, watch_s)
            else:
                active = self.store.active()
        except CoordinationError:
            time.sleep(min(watch_s, 0.2))  # the store is out of reach: not a busy loop
            return ""  # keep routing where we route: traffic moves only with the lease
        self.seen = active
        self.rounds += 1
        if self.rounds % READ_BACK_EVERY == 0:
            self.read_back()
        if active is None or active.site == self.routes_to:
            return ""
        try:
            self.engine.point_to(active.site)
        except DraasError as exc:
            return f"FAILED to route {self.node} to {active.site}: {exc}"
        before, self.routes_to = self.routes_to, active.site
        self.on_move()
        said = f"{self.node} routes to {active.site} (was {before}, epoch {active.epoch})"
        self.emit(
            Event(
                ts=self.clock.now(),
                node=self.node,
                runbook="monitor",
                run=f"route-{self.node}",
                step="route",
                outcome="moved",
                epoch=active.epoch,
                target=active.site,
                detail=said,
            )
        )
        return said
