"""Events an agent records on its own (detections, lease changes, replication reports): kept
here first, stored when the coordination store answers. A site cut off from the store still
records that it fenced itself, with the time it did; the event reaches the log when the store
is back. Bounded: the oldest are dropped (and counted) when too many wait."""

from __future__ import annotations

import collections
import logging
import threading

from draas.coordination import CoordinationStore, Event
from draas.errors import CoordinationError

log = logging.getLogger(__name__)

MAX_WAITING = 1000


class Outbox:
    def __init__(self, store: CoordinationStore, limit: int = MAX_WAITING) -> None:
        self.store = store
        self._waiting: collections.deque[Event] = collections.deque(maxlen=limit)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self.dropped = 0

    def emit(self, event: Event) -> None:
        """Record ``event``: never blocks on the store (it is stored by ``flush``)."""
        with self._lock:
            if len(self._waiting) == self._waiting.maxlen:
                self.dropped += 1
                log.warning(
                    "outbox full: dropped the oldest waiting event (%d so far)", self.dropped
                )
            self._waiting.append(event)

    def waiting(self) -> list[Event]:
        with self._lock:
            return list(self._waiting)

    def flush(self) -> int:
        """Store what waits, oldest first; stop at the first failure (tried again next
        time). Returns how many were stored."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is flushing
        stored = 0
        try:
            while True:
                with self._lock:
                    if not self._waiting:
                        return stored
                    event = self._waiting[0]
                try:
                    self.store.append_event(event)
                except CoordinationError:
                    return stored
                with self._lock:
                    if self._waiting and self._waiting[0] is event:
                        self._waiting.popleft()
                stored += 1
        finally:
            self._flushing.release()
