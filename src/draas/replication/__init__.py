"""Keeping the service's data in sync between the sites: the replicator interface.

A ``Replicator`` manages one site's database server: it reports replication status, promotes
(writable, no source), demotes (read-only at once), makes the server a replica of another, and
rejoins an old primary without silently losing what only it holds. ``mariadb.MariaDBReplicator``
implements it with MariaDB's GTID replication.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pymysql

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where replication steps are recorded (the agent's event log; by default the log)."""

    def __call__(self, step: str, outcome: str, **fields: Any) -> None: ...


def log_event(step: str, outcome: str, **fields: Any) -> None:
    shown = " ".join(f"{k}={v}" for k, v in fields.items())
    log.info("%s: %s %s", step, outcome, shown)


@dataclass(frozen=True)
class DbEndpoint:
    """How to reach one site's database server with the draas account."""

    site: str
    host: str
    port: int = 3306
    user: str = "draas"
    password: str = field(default="", repr=False)
    unix_socket: str | None = None


# A replication thread waiting for something that will not come by itself (free disk space).
STALLED = "Stalled"


@dataclass(frozen=True)
class ReplicationStatus:
    site: str
    role: str  # "primary" (writable, no source), "replica", "read-only" (no source, fenced)
    read_only: bool
    gtid_binlog_pos: str
    gtid_slave_pos: str
    source: str | None = None
    io_running: str | None = None
    sql_running: str | None = None
    last_error: str = ""
    lag_s: float | None = None
    lag_trx: int | None = None
    semi_sync: str = "off"  # "off", "on" (acknowledged by the standby), "fell back to async"
    started_at: float | None = None  # when the server started (epoch seconds), if known
    # A replica: whether its receiver acknowledges the source's commits (semi-sync's replica
    # side connected); None when not known or not a replica.
    acknowledging: bool | None = None

    @property
    def healthy_replica(self) -> bool:
        return self.role == "replica" and self.io_running == "Yes" and self.sql_running == "Yes"

    @property
    def unfit(self) -> str | None:
        """Why this replica must not be promoted automatically (it is missing what its
        source acknowledged and cannot get it), or None. A lost connection to the source is
        not a reason: that is what a disaster at the source looks like."""
        if self.role != "replica":
            return None
        if STALLED in (self.io_running, self.sql_running):
            return self.last_error or "replication stalled"
        if self.sql_running == "No" and self.last_error:
            return f"the SQL thread stopped: {self.last_error}"
        if self.io_running == "No" and self.last_error:
            return f"the IO thread stopped: {self.last_error}"
        return None


@dataclass(frozen=True)
class SemiSyncState:
    """The active site's side of semi-synchronous replication, as the holder's agent reads it:
    whether commits wait for a standby's acknowledgement (``enabled``), how many standbys are
    connected to acknowledge, and how long the oldest commit has been waiting (0: none)."""

    enabled: bool
    clients: int
    waiting_s: float
    gtid_binlog_pos: str = ""


@dataclass(frozen=True)
class RejoinReport:
    site: str
    source: str
    errant_transactions: int
    recovery_file: Path | None
    reseeded: bool
    took_s: float


class SqlServer(Protocol):
    """A database server reached over SQL: what the seeding and recovery helpers use."""

    @property
    def endpoint(self) -> DbEndpoint: ...

    def connect(self, **kw: Any) -> AbstractContextManager[pymysql.connections.Connection[Any]]: ...

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]: ...


class Replicator(ABC):
    """One site's database server, as the site agent and the runbooks manage it."""

    endpoint: DbEndpoint

    @abstractmethod
    def status(self, source: Replicator | None = None) -> ReplicationStatus:
        """Role, threads, GTID positions, lag (in transactions too, when the source is given)."""

    @abstractmethod
    def reachable(self, timeout_s: float) -> bool:
        """Whether the server accepts a connection within ``timeout_s`` (a quick look before
        a call that would wait a full connect timeout on a dead host)."""

    @abstractmethod
    def promote(
        self, detach: bool = True, drain_timeout_s: float = 30.0, await_standby: bool = True
    ) -> float:
        """Apply every transaction already received, accept writes, and (``detach``) stop
        replicating; return the seconds it took. With ``detach=False`` the replication
        threads are left for ``detach()``: stopping a thread that is still connecting to a
        dead source can take seconds, and the service need not wait for it. In semi-sync
        mode, ``await_standby``: commits wait for a standby's acknowledgement until the
        holder's agent names one or turns the wait off; False: they complete at once (a
        failover: under the new epoch no standby is named, so none is owed anything)."""

    @abstractmethod
    def detach(self) -> None:
        """Stop replicating and forget the source (idempotent)."""

    @abstractmethod
    def stop_receiving(self, within_s: float = 2.0) -> None:
        """Stop receiving the source's transactions (its replication receiver), so that this
        server acknowledges none of its commits from now on; what was received stays to be
        applied by ``promote``. Idempotent; a server that is not a replica has nothing to stop."""

    @abstractmethod
    def resume_receiving(self) -> None:
        """Start the receiver stopped by ``stop_receiving`` again (a promotion that was not
        carried out)."""

    @abstractmethod
    def demote(self, connect_timeout_s: float = 3.0, within_s: float = 10.0) -> float:
        """Refuse the service's writes at once (``read_only``, the service's sessions ended);
        return the seconds it took."""

    @abstractmethod
    def resume(self) -> None:
        """Start replicating again from the configured source (a restarted replica)."""

    def acknowledge(self) -> bool:
        """In semi-synchronous mode, make this replica acknowledge its source's commits (a
        replica set up by hand replicates without); True when it changed something."""
        return False

    @abstractmethod
    def replicate_from(self, source: Replicator, *, seed: bool) -> None:
        """Become a read-only replica of ``source`` (copying its data first when ``seed``)."""

    @abstractmethod
    def wait_caught_up(self, source: Replicator, timeout_s: float = 30.0) -> float:
        """Block until this replica applied all that ``source`` has written; return seconds."""

    @abstractmethod
    def rejoin(self, source: Replicator, recovery_dir: Path) -> RejoinReport:
        """Old primary back: save what only it holds, then become a replica of ``source``."""

    @abstractmethod
    def semi_sync_state(self) -> SemiSyncState:
        """This server's semi-sync master side (what the holder's agent decides from)."""

    @abstractmethod
    def set_semi_sync(self, on: bool) -> None:
        """Commits wait for a standby's acknowledgement (``on``, with no timeout of its own),
        or complete without one (``off``: every waiting commit completes at once)."""

    @abstractmethod
    def checksums(self) -> dict[str, int | None]:
        """Checksum of every table of the service's databases, by ``db.table``."""

    def replicates_from(self, source: Replicator) -> bool:
        """Whether this server is a healthy replica of ``source``."""
        st = self.status()
        return st.healthy_replica and st.source == source.endpoint.host
