"""MariaDB GTID replication, managed through SQL (PyMySQL): status, promote, demote, replicate,
rejoin with no silent loss, semi-synchronous mode, table checksums."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from draas.errors import ErrantTransactions, ReplicationError
from draas.replication import (
    STALLED,
    DbEndpoint,
    EventSink,
    RejoinReport,
    ReplicationStatus,
    Replicator,
    SemiSyncState,
    gtid,
    log_event,
)
from draas.replication.recovery import save_errant
from draas.replication.seed import copy_databases

# MySQL error codes that a retry can fix (server gone, lost connection, too many connections).
RETRYABLE = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
# A session's state while its commit waits for the standby (semi-sync), in PROCESSLIST.
WAITING_FOR_ACK = "Waiting for semi-sync ACK from slave"
# ... and while ``SET GLOBAL read_only`` holds it back (before it wrote anything).
BLOCKED_BY_READ_ONLY = "Waiting for backup lock"
# Semi-sync's own timeout, in ms: effectively never (about 31,700 years). Its fallback to
# asynchronous replication would acknowledge commits the standby never received while the
# store still names that standby; the holder's agent degrades on purpose instead, in order.
NO_TIMEOUT_MS = 10**15


# How often stop_receiving looks whether its stop is under way, and the receiver states in
# which it waits for its source (nothing read that is not yet written).
STOP_LOOK_S = 0.02
RECEIVER_WAITING = (
    "Waiting for master to send event",
    "Connecting to master",
    "Reconnecting after a failed master event read",
    "Waiting to reconnect after a failed master event read",
)


STOPPING_SQL = (
    "SELECT COMMAND, STATE, INFO FROM information_schema.PROCESSLIST "
    "WHERE INFO = 'STOP SLAVE IO_THREAD' OR COMMAND = 'Slave_IO'"
)


def stop_under_way(rows: list[dict[str, Any]]) -> bool:
    """From the rows of ``STOPPING_SQL``: a stop of the receiver runs, and the receiver waits
    for its source (it is not writing an event it read just before the stop). From then on
    the server acknowledges nothing more, though ``Slave_IO_Running`` may say Yes for up to
    two seconds (a read from a dead source is only broken by the stop's second signal)."""
    stopping = any(
        r["INFO"] == "STOP SLAVE IO_THREAD" and r["STATE"] == "Killing slave" for r in rows
    )
    receiver = [r for r in rows if r["COMMAND"] == "Slave_IO"]
    return stopping and all(r["STATE"] in RECEIVER_WAITING for r in receiver)


def aside(fn: Callable[[], object], name: str) -> tuple[threading.Event, list[BaseException]]:
    """Run ``fn`` on a thread of its own (a statement that may wait on a lock or a thread) while
    the caller keeps watching: set when it ended, and what it raised."""
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except Exception as exc:  # reported by the caller's thread
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return done, failed


def errant_between(mine: dict[str, Any], theirs: dict[str, Any]) -> list[gtid.ErrantRange]:
    """Errant transactions of a server, from both servers' GTID variables."""
    seen = [
        g for key in ("binlog_state", "slave_pos", "current_pos") for g in gtid.parse(theirs[key])
    ]
    return gtid.errant(gtid.parse(mine["current_pos"]), seen)


class MariaDBReplicator(Replicator):
    def __init__(
        self,
        endpoint: DbEndpoint,
        databases: Sequence[str] = ("keystone",),
        *,
        semi_sync: bool = False,
        semi_sync_timeout_ms: int = NO_TIMEOUT_MS,
        link_timeout_s: int = 5,
        events: EventSink = log_event,
    ) -> None:
        self.endpoint = endpoint
        self.link_timeout_s = link_timeout_s
        self.databases = list(databases)
        self.semi_sync = semi_sync
        self.semi_sync_timeout_ms = semi_sync_timeout_ms
        self.events = events
        self._watch: pymysql.connections.Connection[Any] | None = None
        self._watch_lock = threading.Lock()

    # -- connection ------------------------------------------------------------------------
    def _open(self, **kw: Any) -> pymysql.connections.Connection[Any]:
        ep = self.endpoint
        where = ep.unix_socket or f"{ep.host}:{ep.port}"
        opts: dict[str, Any] = dict(
            host=ep.host,
            port=ep.port,
            user=ep.user,
            password=ep.password,
            unix_socket=ep.unix_socket,
            autocommit=True,
            # No TLS: the agent talks to its own site's server. Left to itself, pymysql 1.2
            # tries TLS on every connection ("preferred", unverified), building a context
            # from the system's CA store each time: 70-110 ms per statement, most of a
            # failover's promote step.
            ssl_disabled=True,
            connect_timeout=3,
            read_timeout=30,
            write_timeout=30,
            cursorclass=pymysql.cursors.DictCursor,
        )
        opts.update(kw)
        try:
            return pymysql.connect(**opts)
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            raise ReplicationError(
                f"cannot connect to MariaDB of site {ep.site} at {where} as {ep.user}: "
                f"{exc.args[-1] if exc.args else exc}",
                retryable=code in RETRYABLE,
            ) from exc

    def _failed(self, exc: pymysql.err.MySQLError) -> ReplicationError:
        ep = self.endpoint
        where = ep.unix_socket or f"{ep.host}:{ep.port}"
        code = exc.args[0] if exc.args else 0
        return ReplicationError(
            f"MariaDB of site {ep.site} ({where}): {exc.args[-1] if exc.args else exc}",
            retryable=code in RETRYABLE,
        )

    @contextlib.contextmanager
    def connect(self, **kw: Any) -> Iterator[pymysql.connections.Connection[Any]]:
        conn = self._open(**kw)
        try:
            yield conn
        except pymysql.err.MySQLError as exc:
            raise self._failed(exc) from exc
        finally:
            conn.close()

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def execute(self, *statements: str | tuple[str, Any]) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            for st in statements:
                sql, args = st if isinstance(st, tuple) else (st, None)
                cur.execute(sql, args)

    def variables(self) -> dict[str, Any]:
        rows = self.query(
            "SELECT @@read_only AS read_only, @@gtid_binlog_pos AS binlog_pos, "
            "@@gtid_binlog_state AS binlog_state, @@gtid_slave_pos AS slave_pos, "
            "@@gtid_current_pos AS current_pos, @@server_id AS server_id"
        )
        return rows[0]

    # -- status ----------------------------------------------------------------------------
    def reachable(self, timeout_s: float) -> bool:
        ep = self.endpoint
        if ep.unix_socket:
            return True  # local: connecting costs no network timeout
        try:
            socket.create_connection((ep.host, ep.port), timeout=timeout_s).close()
        except OSError:
            return False
        return True

    def status(self, source: Replicator | None = None) -> ReplicationStatus:
        with self.connect(read_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@read_only AS ro, @@gtid_binlog_pos AS bp, @@gtid_slave_pos AS sp")
            v = cur.fetchone() or {}
            cur.execute("SHOW GLOBAL STATUS LIKE 'Uptime'")
            up = cur.fetchone()
            started = None if up is None else round(time.time() - float(up["Value"]), 1)
            # A thread waiting for disk space holds the lock SHOW SLAVE STATUS needs: read the
            # threads' states first (the process list never blocks) and do not ask then.
            cur.execute(
                "SELECT COMMAND AS c, STATE AS s FROM information_schema.PROCESSLIST "
                "WHERE COMMAND IN ('Slave_IO', 'Slave_SQL')"
            )
            threads = {r["c"]: r["s"] or "" for r in cur.fetchall()}
            waiting = {c: st for c, st in threads.items() if "free space" in st.lower()}
            if waiting:
                return ReplicationStatus(
                    site=self.endpoint.site,
                    role="replica",
                    read_only=bool(v.get("ro")),
                    gtid_binlog_pos=v.get("bp") or "",
                    gtid_slave_pos=v.get("sp") or "",
                    started_at=started,
                    io_running=STALLED if "Slave_IO" in waiting else "Yes",
                    sql_running=STALLED if "Slave_SQL" in waiting else "Yes",
                    last_error=f"disk full at site {self.endpoint.site}: replication waits "
                    f"for free space ({', '.join(sorted(waiting))})",
                )
            cur.execute("SHOW SLAVE STATUS")
            s = cur.fetchone()
            cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
            semi = {r["Variable_name"]: r["Value"] for r in cur.fetchall()}
            cur.execute("SELECT @@rpl_semi_sync_master_enabled AS en")
            semi_enabled = bool((cur.fetchone() or {}).get("en"))
            cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'")
            acking = (cur.fetchone() or {}).get("Value")
        read_only = bool(v.get("ro"))
        semi_state = "off"
        if semi_enabled:
            semi_state = (
                "on" if semi.get("Rpl_semi_sync_master_status") == "ON" else "fell back to async"
            )
        common = ReplicationStatus(
            site=self.endpoint.site,
            role="read-only" if read_only else "primary",
            read_only=read_only,
            gtid_binlog_pos=v.get("bp") or "",
            gtid_slave_pos=v.get("sp") or "",
            semi_sync=semi_state,
            started_at=started,
        )
        if s is None:
            return common
        lag_trx = None
        if isinstance(source, MariaDBReplicator):
            with contextlib.suppress(ReplicationError):
                src_pos = gtid.parse(source.variables()["binlog_pos"])
                lag_trx = gtid.behind(src_pos, gtid.parse(v.get("sp")))
        lag = s.get("Seconds_Behind_Master")
        return dataclasses.replace(
            common,
            role="replica",
            source=s.get("Master_Host"),
            io_running=s.get("Slave_IO_Running"),
            sql_running=s.get("Slave_SQL_Running"),
            last_error=s.get("Last_Error")
            or s.get("Last_IO_Error")
            or s.get("Last_SQL_Error")
            or "",
            lag_s=float(lag) if lag is not None else None,
            lag_trx=lag_trx,
            acknowledging=None if acking is None else acking == "ON",
        )

    # -- roles -----------------------------------------------------------------------------
    def promote(
        self, detach: bool = True, drain_timeout_s: float = 30.0, await_standby: bool = True
    ) -> float:
        t0 = time.monotonic()
        rows = self.query("SHOW SLAVE STATUS")
        if rows:
            self._drain(rows[0], drain_timeout_s)
        drained = time.monotonic() - t0
        statements: list[str | tuple[str, Any]] = []
        if self.semi_sync and not await_standby:
            statements += [
                "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
                "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
            ]
        elif self.semi_sync:
            # Writes open waiting for a standby's acknowledgement: safe whatever the sync
            # record says; the holder's agent turns it off (or names the standby) at once.
            statements += [
                ("SET GLOBAL rpl_semi_sync_master_timeout = %s", (self.semi_sync_timeout_ms,)),
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON",
                "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                "SET GLOBAL rpl_semi_sync_master_enabled = ON",
                "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
            ]
        statements.append("SET GLOBAL read_only = OFF")
        self.execute(*statements)
        if detach:
            self.detach()
        took = time.monotonic() - t0
        self.events(
            "promote",
            "done",
            site=self.endpoint.site,
            took_s=round(took, 4),
            drained_s=round(drained, 4),
        )
        return took

    def _drain(self, slave: dict[str, Any], timeout_s: float) -> None:
        """Apply all that the source has sent (its relay log) before writes open: in semi-sync
        mode that is what the source acknowledged to its clients. The applier is stopped by
        ``detach`` (later): stopping it now would wait behind a receiver's stop that is still
        breaking a read from a dead source, and it has nothing left to apply."""
        received = slave.get("Gtid_IO_Pos") or ""
        if slave.get("Slave_SQL_Running") != "Yes":
            self.execute("START SLAVE SQL_THREAD")
        if received:
            got = self.query("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (received, timeout_s))
            if got[0]["r"] != 0:
                st = self.status()
                raise ReplicationError(
                    f"site {self.endpoint.site} cannot apply what it received (up to GTID "
                    f"{received}) within {timeout_s:g} s: {st.last_error or 'no error'}; "
                    "not promoted, still read-only"
                )

    def detach(self) -> None:
        self.execute("STOP SLAVE", "RESET SLAVE ALL")

    def stop_receiving(self, within_s: float = 2.0) -> None:
        """``STOP SLAVE IO_THREAD``. The receiver checks for the stop after every read from its
        source, before it writes (and acknowledges) what it read: once the statement runs, no
        further event is acknowledged. Against a live source it ends at the next event or
        heartbeat; against a dead one its read is only broken by the statement's second
        signal, two seconds later, yet nothing can arrive meanwhile. So this returns when the
        statement is done, or runs ("Killing slave") while the receiver waits for its source:
        the statement finishes on its own."""
        t0 = time.monotonic()
        if not self.query("SHOW SLAVE STATUS"):
            return
        done, failed = aside(lambda: self.execute("STOP SLAVE IO_THREAD"), "stop-receiving")
        while not done.wait(STOP_LOOK_S):
            if self._stop_under_way():
                took = time.monotonic() - t0
                self.events("stop-receiving", "stopping", site=self.endpoint.site, took_s=took)
                return
            if time.monotonic() - t0 > within_s:
                raise ReplicationError(
                    f"site {self.endpoint.site}: the replication receiver did not stop within "
                    f"{within_s:g} s",
                    retryable=True,
                )
        if failed:
            raise ReplicationError(
                f"site {self.endpoint.site}: STOP SLAVE IO_THREAD failed: {failed[0]}",
                retryable=True,
            )
        took = time.monotonic() - t0
        self.events("stop-receiving", "done", site=self.endpoint.site, took_s=round(took, 4))

    def _stop_under_way(self) -> bool:
        return stop_under_way(self.query(STOPPING_SQL))

    def resume_receiving(self) -> None:
        if self.query("SHOW SLAVE STATUS"):
            self.execute("START SLAVE IO_THREAD")

    def acknowledge(self) -> bool:
        if not self.semi_sync:
            return False
        acking = self.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'")
        if (acking[0]["Value"] if acking else "OFF") == "ON" or not self.query("SHOW SLAVE STATUS"):
            return False
        # The receiver asks for semi-sync when it connects: reconnect it (the applier runs on).
        self.execute(
            "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
            "STOP SLAVE IO_THREAD",
            "START SLAVE IO_THREAD",
        )
        self.events("acknowledge", "done", site=self.endpoint.site)
        return True

    def resume(self) -> None:
        """Start the replication threads again as configured (a restarted replica: servers
        start with them stopped, so that a returning old primary never replicates blindly),
        acknowledging in semi-sync mode, read-only."""
        statements = ["SET GLOBAL read_only = ON"]
        if self.semi_sync:
            statements.append("SET GLOBAL rpl_semi_sync_slave_enabled = ON")
        self.execute(*statements, "START SLAVE")
        self.events("replicate", "resumed", site=self.endpoint.site)

    def demote(self, connect_timeout_s: float = 3.0, within_s: float = 10.0) -> float:
        """Writes stop: ``read_only`` on, the service's sessions ended.

        ``SET GLOBAL read_only`` waits for the commits in flight. In semi-sync mode a commit
        waiting for the DR site's acknowledgement that never comes (the DR site is cut off)
        would wait out the semi-sync timeout and then be acknowledged to its client without
        it: a write the DR site never received. So while ``read_only`` waits, the service's
        sessions are ended (the one waiting for the acknowledgement last, see
        ``_kill_service_sessions``): those commits end unacknowledged (their clients lose the
        connection), and ``read_only`` takes hold."""
        t0 = time.monotonic()
        with self.connect(connect_timeout=max(1, round(connect_timeout_s))) as conn:

            def set_read_only() -> None:
                with conn.cursor() as cur:
                    cur.execute("SET GLOBAL read_only = ON")

            done, failed = aside(set_read_only, "demote")
            while not done.wait(0.05):
                with contextlib.suppress(ReplicationError):
                    self._kill_service_sessions()
                if time.monotonic() - t0 > within_s:
                    site = self.endpoint.site
                    raise ReplicationError(
                        f"site {site}: read_only not in force after "
                        f"{within_s:g} s (commits still in flight)"
                    )
        if failed:
            raise ReplicationError(
                f"site {self.endpoint.site}: SET GLOBAL read_only failed: {failed[0]}"
            )
        self._kill_service_sessions()
        took = time.monotonic() - t0
        self.events("demote", "done", site=self.endpoint.site, took_s=round(took, 4))
        return took

    def _kill_service_sessions(self, looks: int = 20) -> None:
        """End open sessions of the service's users so no transaction of theirs commits late.

        In semi-sync mode one commit waits for the standby's acknowledgement and the commits
        queued behind it (binary log group commit) wait for that one. Ending the waiting one
        lets them finish, and MariaDB answers OK to those still connected: writes the standby
        never received. So the waiting sessions are ended last: once a look finds every other
        session of the service ended or held back by ``read_only`` before it wrote."""
        with self.connect(connect_timeout=2) as conn, conn.cursor() as cur:  # one connection
            for _ in range(looks):
                cur.execute(
                    "SELECT ID, STATE FROM information_schema.PROCESSLIST "
                    "WHERE DB IN %s AND USER NOT IN ('system user', %s) AND "
                    "ID <> CONNECTION_ID() AND COMMAND <> 'Killed'",
                    (tuple(self.databases), self.endpoint.user),
                )
                rows = list(cur.fetchall())
                waiting = [r for r in rows if r["STATE"] == WAITING_FOR_ACK]
                others = [r for r in rows if r["STATE"] != WAITING_FOR_ACK]
                self._kill(cur, others)
                # Held by read_only's lock before they wrote, they cannot be queued to commit.
                if all(r["STATE"] == BLOCKED_BY_READ_ONLY for r in others):
                    self._kill(cur, waiting)
                    return

    @staticmethod
    def _kill(cur: Any, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            with contextlib.suppress(pymysql.err.MySQLError):  # it ended meanwhile
                cur.execute("KILL CONNECTION %s", (int(r["ID"]),))

    def replicate_from(self, source: Replicator, *, seed: bool) -> None:
        if not isinstance(source, MariaDBReplicator):
            raise ReplicationError(f"cannot replicate site {self.endpoint.site} from {source!r}")
        # Read both sides before changing anything: a refusal leaves this server as it was.
        theirs = source.variables()
        mine = self.variables()
        if not seed:
            bad = errant_between(mine, theirs)
            if bad:
                raise ErrantTransactions(
                    f"site {self.endpoint.site} holds {sum(b.count for b in bad)} transaction(s) "
                    f"that site {source.endpoint.site} never received "
                    f"({', '.join(f'{b.start}..{b.stop}' for b in bad)}); rejoin saves them first"
                )
        self.execute("SET GLOBAL read_only = ON", "STOP SLAVE")
        if seed:
            t0 = time.monotonic()
            pos = copy_databases(source, self, self.databases)
            self.execute(
                "RESET SLAVE ALL", "RESET MASTER", ("SET GLOBAL gtid_slave_pos = %s", (pos,))
            )
            self.events(
                "seed",
                "done",
                site=self.endpoint.site,
                source=source.endpoint.site,
                gtid=pos,
                took_s=round(time.monotonic() - t0, 3),
            )
        else:
            # Start from everything this server has, whether it wrote or replicated it.
            self.execute(("SET GLOBAL gtid_slave_pos = %s", (mine["current_pos"] or "",)))
        src = source.endpoint
        # Heartbeats every second; a link silent for link_timeout_s is reported and retried
        # (MariaDB's default waits a minute before it notices a dead source).
        statements: list[str | tuple[str, Any]] = [
            ("SET GLOBAL slave_net_timeout = %s", (self.link_timeout_s,)),
            (
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s,"
                " MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1,"
                " MASTER_HEARTBEAT_PERIOD=1",
                (src.host, src.port, src.user, src.password),
            ),
        ]
        if self.semi_sync:
            statements += [
                "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
                "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
            ]
        statements.append("START SLAVE")
        self.execute(*statements)
        self._wait_connected(source)
        self.events("replicate", "started", site=self.endpoint.site, source=src.site, seed=seed)

    def _wait_connected(self, source: MariaDBReplicator, timeout_s: float = 10.0) -> None:
        """Wait until both replication threads run; raise with the server's own reason if not."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.status()
            if st.healthy_replica:
                return
            if time.monotonic() >= deadline or st.sql_running == "No":
                raise ReplicationError(
                    f"site {self.endpoint.site} does not replicate from site "
                    f"{source.endpoint.site} (IO {st.io_running}, SQL {st.sql_running}): "
                    f"{st.last_error or 'no error reported yet'}",
                    retryable=True,
                )
            time.sleep(0.05)

    def rejoin(self, source: Replicator, recovery_dir: Path) -> RejoinReport:
        if not isinstance(source, MariaDBReplicator):
            raise ReplicationError(f"cannot rejoin site {self.endpoint.site} to {source!r}")
        t0 = time.monotonic()
        self.execute("SET GLOBAL read_only = ON", "STOP SLAVE")  # fenced first
        mine = self.variables()
        theirs = source.variables()
        bad = errant_between(mine, theirs)
        recovery: Path | None = None
        count = sum(b.count for b in bad)
        if bad:
            recovery = save_errant(self, bad, recovery_dir)
            self.events(
                "rejoin.save-errant",
                "saved",
                site=self.endpoint.site,
                transactions=count,
                recovery_file=str(recovery),
            )
        self.replicate_from(source, seed=bool(bad))
        took = time.monotonic() - t0
        self.events(
            "rejoin",
            "done",
            site=self.endpoint.site,
            source=source.endpoint.site,
            errant=count,
            reseeded=bool(bad),
            took_s=round(took, 3),
        )
        return RejoinReport(
            self.endpoint.site, source.endpoint.site, count, recovery, bool(bad), took
        )

    # -- semi-sync, as the holder's agent drives it -------------------------------------------
    def semi_sync_state(self) -> SemiSyncState:
        """Read several times a second by the active site's agent: over one connection kept
        open (a new one per read cost the agent a third of a core)."""
        with self._watch_lock:
            try:
                if self._watch is None:
                    self._watch = self._open(read_timeout=5, connect_timeout=2)
                with self._watch.cursor() as cur:
                    cur.execute(
                        "SELECT @@rpl_semi_sync_master_enabled AS en, @@gtid_binlog_pos AS bp, "
                        "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE "
                        "VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS') AS clients, "
                        "(SELECT MAX(TIME_MS) FROM information_schema.PROCESSLIST WHERE "
                        "STATE = %s) AS waiting_ms",
                        (WAITING_FOR_ACK,),
                    )
                    row = cur.fetchone() or {}
            except pymysql.err.MySQLError as exc:
                with contextlib.suppress(Exception):
                    if self._watch is not None:
                        self._watch.close()
                self._watch = None
                raise self._failed(exc) from exc
        return SemiSyncState(
            enabled=bool(row.get("en")),
            clients=int(row.get("clients") or 0),
            waiting_s=float(row.get("waiting_ms") or 0) / 1000,
            gtid_binlog_pos=str(row.get("bp") or ""),
        )

    def set_semi_sync(self, on: bool) -> None:
        if on:
            self.execute(
                ("SET GLOBAL rpl_semi_sync_master_timeout = %s", (self.semi_sync_timeout_ms,)),
                "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON",
                "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
                "SET GLOBAL rpl_semi_sync_master_enabled = ON",
            )
        else:
            self.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF")
        self.events("semi-sync", "on" if on else "off", site=self.endpoint.site)

    # -- checks ----------------------------------------------------------------------------
    def checksums(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA IN %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2",
                (tuple(self.databases),),
            )
            tables = [f"`{r['s']}`.`{r['t']}`" for r in cur.fetchall()]
            for i in range(0, len(tables), 50):
                cur.execute("CHECKSUM TABLE " + ", ".join(tables[i : i + 50]))
                for r in cur.fetchall():
                    out[r["Table"]] = r["Checksum"]
        return out

    def wait_caught_up(self, source: Replicator, timeout_s: float = 30.0) -> float:
        """Block until this replica applied all that ``source`` has written; return seconds."""
        target = source.status().gtid_binlog_pos
        t0 = time.monotonic()
        rows = self.query("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, timeout_s))
        if rows[0]["r"] != 0:
            raise ReplicationError(
                f"site {self.endpoint.site} did not reach GTID {target} of site "
                f"{source.endpoint.site} within {timeout_s:g} s: {self.status(source)}",
                retryable=True,
            )
        return time.monotonic() - t0
