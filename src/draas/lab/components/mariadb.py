"""MariaDB on ``primary`` and ``dr``: own datadir, server id, binary log and GTID, bound to the
host's lab address. The DR site starts as a GTID replica of the primary, read-only.

The lab itself talks SQL through each server's Unix socket (reachable from the root
namespace, since Unix sockets live in the file system), as root with the local-only account.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from draas.errors import LabError
from draas.lab.engine import LabEngine
from draas.lab.netns import run
from draas.lab.readiness import TcpReady
from draas.lab.secrets import secret
from draas.lab.supervisor import ProcessSpec
from draas.replication import DbEndpoint
from draas.replication.mariadb import NO_TIMEOUT_MS, MariaDBReplicator

SITES = ("primary", "dr")
SERVER_IDS = {"primary": 1, "dr": 2}
PORT = 3306


def base(lab: LabEngine, host: str) -> Path:
    return lab.run.path / f"mariadb-{host}"


def socket_path(lab: LabEngine, host: str) -> Path:
    return base(lab, host) / "mysqld.sock"


# Each site's datadir is a filesystem of its own (a tmpfs this size), as on a real server:
# a full disk at one site (the ``disk-full`` disaster) leaves the other alone. LabEngine.down
# unmounts it.
DATADIR_SIZE = "768m"


def install(lab: LabEngine, host: str) -> None:
    """Create an empty datadir (about 0.6 s) on its own filesystem, owned by the mysql user."""
    d = base(lab, host)
    data = d / "data"
    if (data / "mysql").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(data):
        run(
            ["mount", "-t", "tmpfs", "-o", f"size={DATADIR_SIZE},mode=0750", "tmpfs", str(data)],
            timeout=30,
        )
    shutil.chown(d, "mysql", "mysql")
    shutil.chown(data, "mysql", "mysql")
    argv = [
        "mariadb-install-db",
        "--user=mysql",
        f"--datadir={data}",
        "--skip-test-db",
        "--auth-root-authentication-method=normal",
        "--skip-name-resolve",
    ]
    run(argv, timeout=120)


def spec(lab: LabEngine, host: str) -> ProcessSpec:
    d = base(lab, host)
    addr = lab.topo.host(host).address
    argv = [
        "mariadbd",
        "--no-defaults",
        "--user=mysql",
        f"--datadir={d / 'data'}",
        f"--socket={socket_path(lab, host)}",
        f"--pid-file={d / 'mysqld.pid'}",
        f"--log-error={d / 'error.log'}",
        f"--bind-address={addr}",
        f"--port={PORT}",
        f"--server-id={SERVER_IDS[host]}",
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--log-slave-updates",
        "--gtid-strict-mode=ON",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=32M",
        "--performance-schema=OFF",
        "--max-connections=200",
        "--skip-slave-start",
        "--slave-net-timeout=5",
        # Every server starts read-only (a restarted old primary must not take writes);
        # setup_primary, and later the agent's promote, open the primary for writes.
        "--read-only=ON",
    ]
    return lab.spec(
        f"mariadb-{host}", host, argv, user="mysql", ready=TcpReady(addr, PORT), ready_timeout_s=60
    )


def connect(lab: LabEngine, host: str, database: str | None = None) -> pymysql.Connection[Any]:
    try:
        return pymysql.connect(
            unix_socket=str(socket_path(lab, host)),
            user="root",
            password="",
            database=database,
            autocommit=True,
            ssl_disabled=True,  # a local socket (see draas.replication.mariadb)
            connect_timeout=5,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except pymysql.err.OperationalError as exc:
        raise LabError(f"cannot reach MariaDB on {host} ({socket_path(lab, host)}): {exc}") from exc


def sql(
    lab: LabEngine,
    host: str,
    *statements: str,
    database: str | None = None,
    args: tuple[Any, ...] | None = None,
) -> list[dict[str, Any]]:
    """Run statements; return the rows of the last one."""
    conn = connect(lab, host, database)
    try:
        with conn.cursor() as cur:
            rows: list[dict[str, Any]] = []
            for stmt in statements:
                cur.execute(stmt, args)
                rows = list(cur.fetchall())
            return rows
    finally:
        conn.close()


def setup_primary(lab: LabEngine) -> None:
    """Create the Keystone database and the accounts, on the primary (they replicate)."""
    users = {
        "keystone": secret(lab.run, "mariadb-keystone"),
        "repl": secret(lab.run, "mariadb-repl"),
        "draas": secret(lab.run, "mariadb-draas"),
    }
    conn = connect(lab, "primary")
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS keystone")
            for user, pw in users.items():
                cur.execute("CREATE USER IF NOT EXISTS %s@'198.18.%%' IDENTIFIED BY %s", (user, pw))
            cur.execute("GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'198.18.%'")
            cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'198.18.%'")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'draas'@'198.18.%' WITH GRANT OPTION")
            # The same account over the Unix socket, for the lab's own tools in the root namespace.
            cur.execute(
                "CREATE USER IF NOT EXISTS 'draas'@'localhost' IDENTIFIED BY %s", (users["draas"],)
            )
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'draas'@'localhost' WITH GRANT OPTION")
            cur.execute("SET GLOBAL read_only = OFF")
    finally:
        conn.close()


def start_replica(lab: LabEngine, replica: str, source: str) -> None:
    """Make ``replica`` a read-only GTID replica of ``source`` and start replicating."""
    src = lab.topo.host(source).address
    pw = secret(lab.run, "mariadb-repl")
    conn = connect(lab, replica)
    try:
        with conn.cursor() as cur:
            cur.execute("STOP SLAVE")
            cur.execute("SET GLOBAL read_only = ON")
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER='repl', "
                "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, "
                "MASTER_HEARTBEAT_PERIOD=1",
                (src, PORT, pw),
            )
            cur.execute("START SLAVE")
    finally:
        conn.close()


def replication_status(lab: LabEngine, host: str) -> dict[str, Any]:
    """Role, read-only flag, GTID positions and lag of one server."""
    conn = connect(lab, host)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT @@read_only AS ro, @@gtid_current_pos AS cur, @@gtid_slave_pos AS slave_pos"
            )
            g = cur.fetchone() or {}
            cur.execute("SHOW SLAVE STATUS")
            s = cur.fetchone()
    finally:
        conn.close()
    out: dict[str, Any] = {"read_only": bool(g.get("ro")), "gtid_current_pos": g.get("cur")}
    if s is None:
        out["role"] = "primary" if not out["read_only"] else "standalone (read-only)"
        return out
    out.update(
        role="replica",
        source=s.get("Master_Host"),
        io_running=s.get("Slave_IO_Running"),
        sql_running=s.get("Slave_SQL_Running"),
        lag_s=s.get("Seconds_Behind_Master"),
        last_error=s.get("Last_Error") or s.get("Last_IO_Error") or "",
        gtid_slave_pos=g.get("slave_pos"),
    )
    return out


def wait_in_sync(lab: LabEngine, replica: str, source: str, timeout_s: float = 30.0) -> None:
    """Block until the replica has applied everything the source has written."""
    target = sql(lab, source, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    rows = sql(lab, replica, f"SELECT MASTER_GTID_WAIT(%s, {timeout_s}) AS r", args=(target,))
    if rows[0]["r"] != 0:
        st = replication_status(lab, replica)
        raise LabError(
            f"{replica} did not catch up with {source} (GTID {target}) within {timeout_s:g} s: {st}"
        )


def replicator(
    lab: LabEngine, host: str, *, semi_sync: bool = False, timeout_ms: int = NO_TIMEOUT_MS
) -> MariaDBReplicator:
    """The product's replicator for a lab site, reaching its server through the Unix socket
    (the lab's tools run in the root namespace) and naming the lab address to its peers."""
    ep = DbEndpoint(
        site=host,
        host=lab.topo.host(host).address,
        port=PORT,
        user="draas",
        password=secret(lab.run, "mariadb-draas"),
        unix_socket=str(socket_path(lab, host)),
    )
    return MariaDBReplicator(ep, ["keystone"], semi_sync=semi_sync, semi_sync_timeout_ms=timeout_ms)
