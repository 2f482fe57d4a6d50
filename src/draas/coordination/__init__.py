"""The coordination store: who is active, under which epoch, and what every observer sees.

One interface, two implementations: ``etcd`` (the real one: three members, leases,
transactions) and ``memory`` (tests, with a controllable clock). The ``active`` record names
the site that may take writes and serve traffic, with an ``epoch`` that grows on every change:
the fencing token carried by every promote, demote and traffic switch. It lives under a lease
that its holder renews; if the holder cannot renew in time, the record disappears and the epoch
stays, so the next holder takes ``epoch + 1``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from draas.config import Coordination
from draas.coordination.records import (
    STATES,
    ActiveRecord,
    DatabaseReport,
    Event,
    KeysReport,
    Observation,
    Pause,
    Position,
    Seen,
    State,
    SyncRecord,
)

__all__ = [
    "STATES",
    "ActiveRecord",
    "CoordinationStore",
    "DatabaseReport",
    "Event",
    "KeysReport",
    "Observation",
    "Pause",
    "Position",
    "Seen",
    "State",
    "SyncRecord",
    "another_grant",
    "make_store",
]


class CoordinationStore(ABC):
    """What the agents share. Every write that changes who is active is a compare-and-swap."""

    # -- the active record ---------------------------------------------------------------------
    @abstractmethod
    def active(self) -> ActiveRecord | None:
        """The current record, or None when no one holds it (never taken, or lease expired)."""

    @abstractmethod
    def last_epoch(self) -> int:
        """The highest epoch ever granted (it survives the record's expiry)."""

    @abstractmethod
    def last_active(self) -> ActiveRecord | None:
        """The record as last granted (it survives the lease's expiry and a release): who
        held the highest epoch. None before the first grant."""

    @abstractmethod
    def take_active(
        self,
        site: str,
        holder: str,
        expected_epoch: int,
        ttl_s: float,
        named: SyncRecord | None = None,
        replace: ActiveRecord | None = None,
    ) -> ActiveRecord:
        """Become active with epoch ``expected_epoch + 1``, if no one holds the record (or,
        with ``replace``, the record is still exactly ``replace``), the epoch is still
        ``expected_epoch`` and (``named``) the sync record is still exactly ``named``; else
        raise ``StaleEpoch`` and change nothing. An automatic failover passes the record that
        names its site: a holder that removed it first wins the race. ``replace`` takes the
        record from a holder that still has a lease (a promotion that does not wait for a
        dead primary's lease): only with ``named``, by a standby that has already stopped
        acknowledging the holder's commits; the old lease is revoked."""

    @abstractmethod
    def hand_over(
        self, current: ActiveRecord, site: str, holder: str, ttl_s: float
    ) -> ActiveRecord:
        """Planned switchover: replace exactly ``current`` with a record for ``site`` under
        epoch + 1, atomically; ``StaleEpoch`` if ``current`` is no longer the record."""

    @abstractmethod
    def renew_active(self, record: ActiveRecord, ttl_s: float) -> bool:
        """Extend the holder's lease; False if the record is gone or not this one anymore."""

    @abstractmethod
    def release_active(self, record: ActiveRecord) -> None:
        """Give the record up (only if it is still this one)."""

    def wait_active(self, seen: ActiveRecord | None, timeout_s: float) -> ActiveRecord | None:
        """The active record as soon as it is another grant than ``seen`` (a watch: a
        frontend acts on a move at once), or as it is after ``timeout_s``. This default
        looks every 50 ms; a store that can watch does better."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = self.active()
            if another_grant(seen, current) or time.monotonic() >= deadline:
                return current
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def lead_away_from(self, hosts: Sequence[str]) -> str:
        """Keep the store's own leader off ``hosts`` (the active site's): a disaster there
        must not also cost the store a leader election before anyone can act. Returns what
        was done ('' for nothing). A store without a leader does nothing."""
        return ""

    # -- the controller lease ------------------------------------------------------------------
    @abstractmethod
    def controller(self) -> str | None:
        """The node that holds the controller lease (None: nobody, or it expired)."""

    @abstractmethod
    def claim_controller(self, node: str, ttl_s: float) -> bool:
        """Take the controller lease for ``node`` when nobody holds it, or renew it when
        ``node`` does; False (nothing changed) when another node holds it."""

    @abstractmethod
    def release_controller(self, node: str) -> None:
        """Give the controller lease up (only if ``node`` holds it)."""

    # -- who may be promoted -------------------------------------------------------------------
    @abstractmethod
    def sync(self) -> SyncRecord | None:
        """The sync record (None: never written)."""

    @abstractmethod
    def set_sync(
        self, holder: ActiveRecord, expected: SyncRecord | None, new: SyncRecord
    ) -> SyncRecord:
        """Replace the sync record ``expected`` (None: absent) with ``new``, only while
        ``holder`` is still the active record; else raise ``StaleEpoch``, change nothing."""

    @abstractmethod
    def publish_position(self, position: Position) -> None:
        """The holder's GTID position (a plain key: it outlives its writer)."""

    @abstractmethod
    def position(self) -> Position | None:
        """The last published position (None: never published)."""

    # -- observations --------------------------------------------------------------------------
    @abstractmethod
    def publish(self, observation: Observation, ttl_s: float) -> None:
        """What its observer sees now; it expires unless published again within ``ttl_s``."""

    @abstractmethod
    def observations(self) -> dict[str, Observation]:
        """The unexpired observations, by observer."""

    @abstractmethod
    def withdraw(self, observer: str) -> None:
        """Remove ``observer``'s observation now (its agent is stopping): it no longer votes,
        and the others treat it as not running at once, not when the observation expires."""

    # -- maintenance ---------------------------------------------------------------------------
    @abstractmethod
    def set_pause(self, pause: Pause) -> None:
        """Pause automatic action (replacing any pause); with ``pause.for_s`` the record
        expires by itself after that long, by the store's clock."""

    @abstractmethod
    def pause(self) -> Pause | None:
        """The pause in force (None: automatic action allowed)."""

    @abstractmethod
    def clear_pause(self) -> bool:
        """Resume automatic action; whether a pause was in force."""

    # -- event log -----------------------------------------------------------------------------
    @abstractmethod
    def append_event(self, event: Event) -> str:
        """Store ``event``; return its id (unique; made from the writer's clock)."""

    @abstractmethod
    def events(self) -> list[Event]:
        """Every event in the order the store received them (never by the writers' clocks),
        each with its ``id`` and its place in that order (``order``)."""

    # -- the store's clock ---------------------------------------------------------------------
    def clock_offset(self) -> float | None:
        """The store's clock minus this machine's (s), when the store tells its time: one
        more clock for an agent to check its own against. None when unknown."""
        return None


def another_grant(seen: ActiveRecord | None, current: ActiveRecord | None) -> bool:
    """Whether ``current`` is another grant of the record than ``seen`` (None: no record)."""
    if seen is None or current is None:
        return seen is not current
    return not seen.same_grant(current)


def make_store(
    cfg: Coordination, *, timeout_s: float = 2.0, prefer: Sequence[str] = ()
) -> CoordinationStore:
    """The store named by a validated ``coordination`` config section (``prefer``: hosts
    whose members are tried first, in that order)."""
    if cfg.backend == "memory":
        from draas.coordination.memory import MemoryStore

        return MemoryStore()
    from draas.coordination.etcd import EtcdStore, Login, Tls, nearest_first

    endpoints = nearest_first(cfg.endpoints, prefer)
    tls = Tls(*(None if f is None else str(f) for f in (cfg.ca_file, cfg.cert_file, cfg.key_file)))
    login = None
    if cfg.user is not None and cfg.password_file is not None:
        login = Login(cfg.user, str(cfg.password_file))
    return EtcdStore(endpoints, prefix=cfg.prefix, timeout_s=timeout_s, tls=tls, login=login)
