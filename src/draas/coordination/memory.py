"""The in-memory coordination store: same contract as etcd, one process, a controllable clock.
Part of the product's test kit (with ``FakeClock``), not a throwaway mock: ``reachable =
False`` makes every call fail as an unreachable etcd does, so the agent's handling of a lost
store is tested without a network."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from draas.clock import Clock, SystemClock
from draas.coordination import (
    ActiveRecord,
    CoordinationStore,
    Event,
    Observation,
    Pause,
    Position,
    SyncRecord,
)
from draas.errors import CoordinationError, StaleEpoch


class MemoryStore(CoordinationStore):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.reachable = True
        self.calls = 0  # every call, reachable or not (tests count store traffic)
        self._lock = threading.Lock()
        self._active: ActiveRecord | None = None
        self._last: ActiveRecord | None = None
        self._active_expires = 0.0
        self._epoch = 0
        self._sync: SyncRecord | None = None
        self._position: Position | None = None
        # Stored as the JSON documents etcd would hold: what goes in comes out parsed.
        self._obs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._leases = itertools.count(1)
        self._controller: tuple[str, float] | None = None  # holder, expiry
        self._pause: tuple[Pause, float] | None = None  # the record, its expiry (inf: none)

    def _enter(self, what: str) -> None:
        self.calls += 1
        if not self.reachable:
            raise CoordinationError(f"memory store {what}: unreachable (set by the test)")

    def _live_active(self) -> ActiveRecord | None:
        if self._active is not None and self.clock.now() >= self._active_expires:
            self._active = None  # the lease expired: the record goes, the epoch stays
        return self._active

    def active(self) -> ActiveRecord | None:
        self._enter("read active")
        with self._lock:
            return self._live_active()

    def last_active(self) -> ActiveRecord | None:
        self._enter("read the last record")
        with self._lock:
            return self._last

    def last_epoch(self) -> int:
        self._enter("read epoch")
        with self._lock:
            return self._epoch

    def _grant(self, site: str, holder: str, ttl_s: float) -> ActiveRecord:
        self._epoch += 1
        self._active = ActiveRecord(site, self._epoch, holder, str(next(self._leases)))
        self._last = self._active
        self._active_expires = self.clock.now() + ttl_s
        return self._active

    def take_active(
        self,
        site: str,
        holder: str,
        expected_epoch: int,
        ttl_s: float,
        named: SyncRecord | None = None,
        replace: ActiveRecord | None = None,
    ) -> ActiveRecord:
        self._enter("take active")
        with self._lock:
            if named is not None and self._sync != named:
                raise StaleEpoch(f"the sync record is {self._sync}, not {named}")
            current = self._live_active()
            if replace is not None:
                if current is None or not current.same_grant(replace):
                    raise StaleEpoch(f"the active record is {current}, not {replace}")
            elif current is not None:
                raise StaleEpoch(
                    f"site {current.site} holds the active record (epoch "
                    f"{current.epoch}, holder {current.holder})"
                )
            if self._epoch != expected_epoch:
                raise StaleEpoch(f"epoch is {self._epoch}, not {expected_epoch}")
            return self._grant(site, holder, ttl_s)

    def hand_over(
        self, current: ActiveRecord, site: str, holder: str, ttl_s: float
    ) -> ActiveRecord:
        self._enter("hand over")
        with self._lock:
            live = self._live_active()
            if live is None or not live.same_grant(current):
                raise StaleEpoch(f"the active record is {live}, not {current}")
            return self._grant(site, holder, ttl_s)

    def renew_active(self, record: ActiveRecord, ttl_s: float) -> bool:
        self._enter("renew active")
        with self._lock:
            live = self._live_active()
            if live is None or live != record:
                return False
            self._active_expires = self.clock.now() + ttl_s
            return True

    def release_active(self, record: ActiveRecord) -> None:
        self._enter("release active")
        with self._lock:
            if self._live_active() == record:
                self._active = None

    def _live_controller(self) -> str | None:
        if self._controller is not None and self.clock.now() >= self._controller[1]:
            self._controller = None
        return None if self._controller is None else self._controller[0]

    def controller(self) -> str | None:
        self._enter("read the controller")
        with self._lock:
            return self._live_controller()

    def claim_controller(self, node: str, ttl_s: float) -> bool:
        self._enter("claim the controller")
        with self._lock:
            if self._live_controller() not in (None, node):
                return False
            self._controller = (node, self.clock.now() + ttl_s)
            return True

    def release_controller(self, node: str) -> None:
        self._enter("release the controller")
        with self._lock:
            if self._live_controller() == node:
                self._controller = None

    def sync(self) -> SyncRecord | None:
        self._enter("read sync")
        with self._lock:
            return self._sync

    def set_sync(
        self, holder: ActiveRecord, expected: SyncRecord | None, new: SyncRecord
    ) -> SyncRecord:
        self._enter("write sync")
        with self._lock:
            live = self._live_active()
            if live != holder:
                raise StaleEpoch(f"the active record is {live}, not {holder}")
            if self._sync != expected:
                raise StaleEpoch(f"the sync record is {self._sync}, not {expected}")
            self._sync = new
            return new

    def publish_position(self, position: Position) -> None:
        self._enter("publish position")
        with self._lock:
            self._position = position

    def position(self) -> Position | None:
        self._enter("read position")
        with self._lock:
            return self._position

    def publish(self, observation: Observation, ttl_s: float) -> None:
        self._enter("publish")
        with self._lock:
            doc = observation.to_dict()
            self._obs[observation.observer] = (self.clock.now() + ttl_s, doc)

    def withdraw(self, observer: str) -> None:
        self._enter("withdraw")
        with self._lock:
            self._obs.pop(observer, None)

    def observations(self) -> dict[str, Observation]:
        self._enter("read observations")
        now = self.clock.now()
        with self._lock:
            live = {k: d for k, (exp, d) in self._obs.items() if now < exp}
        return {k: Observation.from_dict(d, observer=k) for k, d in live.items()}

    def append_event(self, event: Event) -> str:
        self._enter("append event")
        with self._lock:
            eid = f"{len(self._events) + 1:020d}"
            self._events.append({**copy.deepcopy(event.to_dict()), "id": eid})
            return eid

    def events(self) -> list[Event]:
        self._enter("read events")
        with self._lock:
            stored = list(self._events)
        # The store's order is the order they were appended in.
        return [Event.from_dict({**e, "order": i}) for i, e in enumerate(stored, 1)]

    # -- maintenance ---------------------------------------------------------------------------
    def set_pause(self, pause: Pause) -> None:
        self._enter("set pause")
        with self._lock:
            until = float("inf") if pause.for_s is None else self.clock.now() + pause.for_s
            self._pause = (pause, until)

    def pause(self) -> Pause | None:
        self._enter("read pause")
        with self._lock:
            if self._pause is not None and self.clock.now() >= self._pause[1]:
                self._pause = None  # its lease ran out
            return None if self._pause is None else self._pause[0]

    def clear_pause(self) -> bool:
        had = self.pause() is not None
        self._enter("clear pause")
        with self._lock:
            self._pause = None
        return had
