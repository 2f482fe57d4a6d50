"""The in-memory coordination store: same contract as etcd, one process, a controllable clock.
Part of the product's test kit (with ``FakeClock``), not a throwaway mock."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from draas.clock import Clock, SystemClock
from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import StaleEpoch


class MemoryStore(CoordinationStore):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._active: ActiveRecord | None = None
        self._last: ActiveRecord | None = None
        self._active_expires = 0.0
        self._epoch = 0
        self._obs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._leases = itertools.count(1)

    def _live_active(self) -> ActiveRecord | None:
        if self._active is not None and self.clock.now() >= self._active_expires:
            self._active = None  # the lease expired: the record goes, the epoch stays
        return self._active

    def active(self) -> ActiveRecord | None:
        with self._lock:
            return self._live_active()

    def last_active(self) -> ActiveRecord | None:
        with self._lock:
            return self._last

    def last_epoch(self) -> int:
        with self._lock:
            return self._epoch

    def take_active(
        self, site: str, holder: str, expected_epoch: int, ttl_s: float
    ) -> ActiveRecord:
        with self._lock:
            current = self._live_active()
            if current is not None:
                raise StaleEpoch(
                    f"site {current.site} holds the active record (epoch "
                    f"{current.epoch}, holder {current.holder})"
                )
            if self._epoch != expected_epoch:
                raise StaleEpoch(f"epoch is {self._epoch}, not {expected_epoch}")
            self._epoch += 1
            self._active = ActiveRecord(site, self._epoch, holder, str(next(self._leases)))
            self._last = self._active
            self._active_expires = self.clock.now() + ttl_s
            return self._active

    def hand_over(
        self, current: ActiveRecord, site: str, holder: str, ttl_s: float
    ) -> ActiveRecord:
        with self._lock:
            live = self._live_active()
            if live is None or (live.site, live.epoch, live.holder) != (
                current.site,
                current.epoch,
                current.holder,
            ):
                raise StaleEpoch(f"the active record is {live}, not {current}")
            self._epoch += 1
            self._active = ActiveRecord(site, self._epoch, holder, str(next(self._leases)))
            self._last = self._active
            self._active_expires = self.clock.now() + ttl_s
            return self._active

    def renew_active(self, record: ActiveRecord, ttl_s: float) -> bool:
        with self._lock:
            live = self._live_active()
            if live is None or live != record:
                return False
            self._active_expires = self.clock.now() + ttl_s
            return True

    def release_active(self, record: ActiveRecord) -> None:
        with self._lock:
            if self._live_active() == record:
                self._active = None

    def publish(self, observer: str, doc: dict[str, Any], ttl_s: float) -> None:
        with self._lock:
            self._obs[observer] = (self.clock.now() + ttl_s, copy.deepcopy(doc))

    def observations(self) -> dict[str, dict[str, Any]]:
        now = self.clock.now()
        with self._lock:
            return {k: copy.deepcopy(d) for k, (exp, d) in self._obs.items() if now < exp}

    def append_event(self, event: dict[str, Any]) -> str:
        with self._lock:
            eid = f"{len(self._events) + 1:020d}"
            self._events.append({**copy.deepcopy(event), "id": eid})
            return eid

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._events)
