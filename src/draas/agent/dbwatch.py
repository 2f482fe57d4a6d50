"""A site agent's watch over its own database, every few seconds on a task of its own (a server
that hangs, e.g. on a full disk, must never hold up the probes and the lease): the report it
publishes with its observations, the role the lease rules read, an event when a standby's
replication breaks or heals (this alone never fails anything over), and a restarted replica
started again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from draas.clock import Clock
from draas.coordination import CoordinationStore, DatabaseReport, Event
from draas.errors import CoordinationError, DraasError
from draas.replication import ReplicationStatus, Replicator

CHECK_S = 2.0  # how often the database is read

Emit = Callable[[Event], object]


def report_of(st: ReplicationStatus) -> DatabaseReport:
    healthy = st.role != "replica" or (st.healthy_replica and st.io_running == "Yes")
    return DatabaseReport(
        role=st.role,
        healthy=healthy,
        read_only=st.read_only,
        lag_s=st.lag_s,
        lag_trx=st.lag_trx,
        io_running=st.io_running,
        sql_running=st.sql_running,
        semi_sync=st.semi_sync,
        last_error=st.last_error,
        unfit=st.unfit,
        gtid_binlog_pos=st.gtid_binlog_pos,
        gtid_slave_pos=st.gtid_slave_pos if st.role == "replica" else None,
        source=st.source,
    )


class DatabaseWatch:
    def __init__(
        self,
        *,
        node: str,
        site: str,
        rep: Replicator,
        store: CoordinationStore,
        clock: Clock,
        emit: Emit,
        holding: Callable[[], bool],
        db_hosts: Mapping[str, str],
    ) -> None:
        """``db_hosts``: each site's database host (a replica's source is named by it)."""
        self.node, self.site = node, site
        self.rep = rep
        self.store = store
        self.clock = clock
        self.emit = emit
        self.holding = holding
        self.db_hosts = dict(db_hosts)
        self.report: DatabaseReport | None = None
        self._role: str | None = None
        self._lock = threading.Lock()
        self.replication: str | None = None  # "healthy", "broken", "unknown" as last reported
        self.replica_ran_since: float | None = None  # server start of the run seen replicating

    # -- the role, for the lease rules ---------------------------------------------------------
    def role(self) -> str | None:
        with self._lock:
            return self._role

    def learned(self, role: str) -> None:
        with self._lock:
            self._role = role

    # -- the round -----------------------------------------------------------------------------
    def check(self) -> str:
        """Read the database once; returns what changed ('' for nothing)."""
        now = self.clock.now()
        try:
            st = self.rep.status()
        except DraasError as exc:
            self.report = DatabaseReport(role="unknown", healthy=False, last_error=str(exc))
            self.learned("unknown")
            state, detail = "unknown", str(exc)
        else:
            self.report = report_of(st)
            self.learned(st.role)
            if st.role != "replica":
                return ""
            resumed = self._resume_if_restarted(st) or self._acknowledge(st)
            if resumed:
                return resumed
            state = "healthy" if self.report.healthy else "broken"
            detail = f"IO {st.io_running}, SQL {st.sql_running}: {st.last_error or 'no error'}"
        if self.holding() or state == self.replication:
            return ""
        before, self.replication = self.replication, state
        if before is None and state == "healthy":
            return ""
        self.emit(self._event("replication", state, detail, now))
        return f"replication of {self.site} {state}: {detail}"

    def _event(self, step: str, outcome: str, detail: str, now: float) -> Event:
        return Event(
            ts=now,
            node=self.node,
            runbook="monitor",
            run=f"replication-{self.site}",
            step=step,
            outcome=outcome,
            target=self.site,
            detail=detail,
        )

    def _acknowledge(self, st: ReplicationStatus) -> str:
        """A running replica that does not acknowledge its source's commits (set up by hand,
        without semi-sync's replica side): in semi-synchronous mode it could never be named the
        synchronous standby, so nothing would ever fail over to it. Make it acknowledge."""
        if st.acknowledging is not False or not st.healthy_replica:
            return ""
        try:
            changed = self.rep.acknowledge()
        except DraasError as exc:
            return f"could not make {self.site}'s replica acknowledge commits: {exc}"
        if not changed:
            return ""
        said = (
            f"{self.site}'s replica did not acknowledge its source's commits (semi-sync's replica "
            "side was off): turned on, its receiver reconnected"
        )
        self.emit(self._event("replication", "acknowledging", said, self.clock.now()))
        return said

    def _resume_if_restarted(self, st: ReplicationStatus) -> str:
        """A replica of the active site whose threads are both stopped without an error,
        and that this agent has not seen replicating since the server started, has
        restarted (servers start with replication stopped): start it again. A replica seen
        running in this same server run was stopped by hand: left alone, like anything else
        (an error, another source, this site active) is left to the runbooks."""
        running = st.io_running == "Yes" and st.sql_running == "Yes"
        if running and st.started_at is not None:
            self.replica_ran_since = st.started_at
        if st.io_running != "No" or st.sql_running != "No" or st.last_error:
            return ""
        seen = self.replica_ran_since
        if seen is not None and st.started_at is not None and abs(seen - st.started_at) < 10:
            return ""  # stopped by hand during this server run
        try:
            active = self.store.active()
        except CoordinationError:
            return ""
        if (
            active is None
            or active.site == self.site
            or st.source != self.db_hosts.get(active.site)
        ):
            return ""
        try:
            self.rep.resume()
        except DraasError as exc:
            return f"could not restart replication of {self.site} from {active.site}: {exc}"
        said = (
            f"{self.site}'s database had restarted with replication stopped: resumed from "
            f"{active.site}"
        )
        self.emit(self._event("replication", "resumed", said, self.clock.now()))
        return said
