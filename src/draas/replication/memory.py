"""An in-memory replicator: one site's database as a list of transactions, with the roles,
replication, fencing and rejoin semantics of the MariaDB one. Part of the product's test kit
(beside the in-memory store and ``FakeClock``): runbooks and agent tasks are unit-tested with
it, and the replicator contract suite runs against it as well as against MariaDB.

A replica copies its source's transactions whenever it is asked anything while its link is
up (``link_up``) and its threads run; ``reachable = False`` makes every call fail as a dead
server does; ``hooks[name]`` runs inside the call ``name`` (tests block or interleave there).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from draas.errors import ErrantTransactions, ReplicationError
from draas.replication import (
    DbEndpoint,
    RejoinReport,
    ReplicationStatus,
    Replicator,
    SemiSyncState,
)


class MemoryReplicator(Replicator):
    def __init__(self, site: str, host: str | None = None, *, writable: bool = True) -> None:
        self.endpoint = DbEndpoint(site=site, host=host or f"db.{site}")
        self.log: list[str] = []  # transaction ids, in commit order
        self.read_only = not writable
        self.source: MemoryReplicator | None = None
        self.running = False  # the replication threads
        self.receiving = True  # the receiver (stop_receiving stops it alone)
        self.link_up = True
        self.reachable_now = True
        self.calls: list[str] = []
        self.hooks: dict[str, Callable[[], None]] = {}
        self.semi_on = False  # commits wait for a replica's acknowledgement
        self.waiting_s = 0.0  # how long the oldest commit has waited (a test sets it)
        self.replicas: list[MemoryReplicator] = []
        self._lock = threading.RLock()

    # -- what a test does --------------------------------------------------------------------
    def write(self, txn: str) -> None:
        """A client's commit: refused unless this server takes writes."""
        with self._lock:
            self._enter("write")
            if self.read_only or self.source is not None:
                raise ReplicationError(f"site {self.endpoint.site} is read-only: {txn} refused")
            if self.semi_on and not self._acking():
                # MariaDB would hold the commit until a replica acknowledges it (no timeout,
                # wait_no_slave on): never acknowledged to the client.
                raise ReplicationError(
                    f"site {self.endpoint.site}: {txn} waits for an acknowledgement no "
                    "replica sends"
                )
            self.log.append(txn)
            if self.semi_on:  # acknowledged: the replica received it
                for r in self._acking():
                    with r._lock:
                        r._pull()

    def position(self) -> str:
        """The log as a GTID position (domain 0, server 1: one sequence for every site)."""
        return f"0-1-{len(self.log)}" if self.log else ""

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if not self.reachable_now:
            raise ReplicationError(
                f"cannot connect to the database of site {self.endpoint.site}", retryable=True
            )
        hook = self.hooks.get(call)
        if hook is not None:
            hook()

    def _pull(self) -> None:
        src = self.source
        if src is None or not self.running or not self.link_up or not src.reachable_now:
            return
        if not self.receiving:
            return
        if src.log[: len(self.log)] == self.log:
            self.log = list(src.log)

    # -- the interface -----------------------------------------------------------------------
    def status(self, source: Replicator | None = None) -> ReplicationStatus:
        with self._lock:
            self._enter("status")
            self._pull()
            base = ReplicationStatus(
                site=self.endpoint.site,
                role="read-only" if self.read_only else "primary",
                read_only=self.read_only,
                gtid_binlog_pos=self.position(),
                gtid_slave_pos=self.position() if self.source else "",
            )
            if self.source is None:
                return base
            behind = len(self.source.log) - len(self.log)
            return dataclasses.replace(
                base,
                role="replica",
                source=self.source.endpoint.host,
                io_running="Yes" if self.running and self.link_up else "No",
                sql_running="Yes" if self.running else "No",
                lag_s=0.0 if behind == 0 else None,
                lag_trx=behind,
            )

    def reachable(self, timeout_s: float) -> bool:
        self.calls.append("reachable")
        return self.reachable_now

    def promote(
        self, detach: bool = True, drain_timeout_s: float = 30.0, await_standby: bool = True
    ) -> float:
        with self._lock:
            self._enter("promote")
            self._pull()
            self.read_only = False
            if not await_standby:
                self.semi_on = False
            if detach:
                self.source, self.running = None, False
            elif self.source is not None:
                self.source, self.running = None, False  # writable: no longer a replica
            return 0.0

    def stop_receiving(self, within_s: float = 2.0) -> None:
        with self._lock:
            self._enter("stop_receiving")
            self.receiving = False

    def resume_receiving(self) -> None:
        with self._lock:
            self._enter("resume_receiving")
            self.receiving = True

    def _acking(self) -> list[MemoryReplicator]:
        """The replicas that acknowledge this server's commits now."""
        return [
            r
            for r in self.replicas
            if r.source is self and r.running and r.receiving and r.link_up and r.reachable_now
        ]

    def detach(self) -> None:
        with self._lock:
            self._enter("detach")
            self.source, self.running = None, False

    def demote(self, connect_timeout_s: float = 3.0, within_s: float = 10.0) -> float:
        with self._lock:
            self._enter("demote")
            self.read_only = True
            return 0.0

    def resume(self) -> None:
        with self._lock:
            self._enter("resume")
            self.read_only, self.running, self.receiving = True, True, True

    def replicate_from(self, source: Replicator, *, seed: bool) -> None:
        with self._lock:
            self._enter("replicate_from")
            src = self._memory(source)
            if seed:
                self.log = list(src.log)
            elif src.log[: len(self.log)] != self.log:
                raise ErrantTransactions(
                    f"site {self.endpoint.site} holds transactions that site "
                    f"{src.endpoint.site} never received; rejoin saves them first"
                )
            self.source, self.running, self.read_only = src, True, True
            self.receiving = True
            if self not in src.replicas:
                src.replicas.append(self)
            self._pull()

    def wait_caught_up(self, source: Replicator, timeout_s: float = 30.0) -> float:
        with self._lock:
            self._enter("wait_caught_up")
            self._pull()
            if self.log != self._memory(source).log:
                raise ReplicationError(
                    f"site {self.endpoint.site} did not catch up with site "
                    f"{source.endpoint.site} within {timeout_s:g} s",
                    retryable=True,
                )
            return 0.0

    def rejoin(self, source: Replicator, recovery_dir: Path) -> RejoinReport:
        with self._lock:
            self._enter("rejoin")
            src = self._memory(source)
            self.read_only = True
            errant = [t for t in self.log if t not in src.log]
            recovery = None
            if errant:
                recovery_dir.mkdir(parents=True, exist_ok=True)
                recovery = recovery_dir / f"errant-{self.endpoint.site}.txt"
                recovery.write_text("".join(f"{t}\n" for t in errant))
            self.log = list(src.log)
            self.source, self.running, self.receiving = src, True, True
            return RejoinReport(
                self.endpoint.site, src.endpoint.site, len(errant), recovery, bool(errant), 0.0
            )

    def semi_sync_state(self) -> SemiSyncState:
        with self._lock:
            self._enter("semi_sync_state")
            acking = self._acking()
            return SemiSyncState(self.semi_on, len(acking), self.waiting_s, self.position())

    def set_semi_sync(self, on: bool) -> None:
        with self._lock:
            self._enter("set_semi_sync")
            self.semi_on = on

    def checksums(self) -> dict[str, int | None]:
        with self._lock:
            self._enter("checksums")
            return {"service.transactions": hash(tuple(self.log))}

    def _memory(self, other: Replicator) -> MemoryReplicator:
        if not isinstance(other, MemoryReplicator):
            raise ReplicationError(f"cannot replicate site {self.endpoint.site} from {other!r}")
        return other
