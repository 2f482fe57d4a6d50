"""Seed a replica with a consistent logical copy of the service's databases, over SQL.

The source is read inside one ``START TRANSACTION WITH CONSISTENT SNAPSHOT``; the binary log
position of that snapshot (``binlog_snapshot_file``/``_position``, turned into a GTID position
by ``BINLOG_GTID_POS()``) is where the replica starts replicating. The copy is written with
``sql_log_bin = 0``: a seed must never enter the replica's own binary log (replayed later on a
rejoining server, its DROP/CREATE would empty tables there).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pymysql.cursors

from draas.errors import ReplicationError
from draas.replication import SqlServer

log = logging.getLogger(__name__)
BATCH = 500


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def copy_databases(source: SqlServer, target: SqlServer, databases: Sequence[str]) -> str:
    """Copy ``databases`` from source to target; return the source's GTID position of the copy."""
    rows_copied = 0
    with source.connect(cursorclass=pymysql.cursors.SSCursor) as src, target.connect() as dst:
        s = src.cursor()
        d = dst.cursor()
        s.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        s.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        s.execute(
            "SHOW STATUS WHERE Variable_name IN "
            "('binlog_snapshot_file', 'binlog_snapshot_position')"
        )
        snap = {str(k).lower(): v for k, v in s.fetchall()}
        if not snap.get("binlog_snapshot_file"):
            raise ReplicationError(
                f"site {source.endpoint.site} has no binary log: seeding needs log_bin on"
            )
        where = (snap["binlog_snapshot_file"], int(snap["binlog_snapshot_position"]))
        s.execute("SELECT BINLOG_GTID_POS(%s, %s)", where)
        (pos,) = (s.fetchall() or [("",)])[0]
        for stmt in (
            "SET SESSION sql_log_bin = 0",
            "SET SESSION foreign_key_checks = 0",
            "SET SESSION unique_checks = 0",
        ):
            d.execute(stmt)
        for db in databases:
            s.execute(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                "information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (db,),
            )
            found = (s.fetchall() or [None])[0]
            if found is None:
                raise ReplicationError(f"site {source.endpoint.site} has no database {db!r}")
            d.execute(f"DROP DATABASE IF EXISTS {_q(db)}")
            d.execute(f"CREATE DATABASE {_q(db)} CHARACTER SET {found[0]} COLLATE {found[1]}")
            s.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                (db,),
            )
            tables = [r[0] for r in s.fetchall()]
            for table in tables:
                rows_copied += _copy_table(s, d, db, table)
        s.execute("COMMIT")
        d.execute("SET SESSION foreign_key_checks = 1")
    log.info(
        "seeded %s from %s: %d rows of %s at GTID %s",
        target.endpoint.site,
        source.endpoint.site,
        rows_copied,
        ", ".join(databases),
        pos,
    )
    return str(pos or "")


def _copy_table(s: pymysql.cursors.SSCursor, d: pymysql.cursors.Cursor, db: str, table: str) -> int:
    name = f"{_q(db)}.{_q(table)}"
    s.execute(f"SHOW CREATE TABLE {name}")
    (_, ddl) = s.fetchall()[0]
    d.execute(f"USE {_q(db)}")
    d.execute(ddl)
    s.execute(f"SELECT * FROM {name}")
    n = 0
    insert = None
    while batch := s.fetchmany(BATCH):
        if insert is None:
            insert = f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(batch[0]))})"
        d.executemany(insert, batch)
        n += len(batch)
    return n
