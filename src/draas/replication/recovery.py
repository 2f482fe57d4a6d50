"""Save transactions that only an old primary holds to a SQL file, before it is reset.

The file is what ``mariadb-binlog`` prints for exactly those GTIDs: replayable SQL (row events
as BINLOG statements) with every row change also decoded as comments (``-v``), under a header
that says where it came from. An operator reviews it and replays what should be kept:
``mariadb < FILE`` on the current primary.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from draas.errors import ReplicationError
from draas.replication import SqlServer
from draas.replication.gtid import ErrantRange


def save_errant(server: SqlServer, ranges: Sequence[ErrantRange], recovery_dir: Path) -> Path:
    """Write the errant transactions of ``server`` to a new file in ``recovery_dir``."""
    recovery_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(recovery_dir, 0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = recovery_dir / f"errant-{server.endpoint.site}-{stamp}.sql"
    logs = [r["Log_name"] for r in server.query("SHOW BINARY LOGS")]
    if not logs:
        raise ReplicationError(f"site {server.endpoint.site}: no binary logs to save from")
    ep = server.endpoint
    header = [
        f"-- draas recovery file: transactions that only site {ep.site} holds",
        f"-- written {stamp} before the site was reset from its new source",
        f"-- {sum(r.count for r in ranges)} transaction(s): "
        + ", ".join(f"{r.start}..{r.stop} (after {r.start}, up to {r.stop})" for r in ranges),
        "-- review, then replay what must be kept on the current primary: mariadb < THIS_FILE",
        "",
    ]
    with tempfile.NamedTemporaryFile("w", delete=False, dir=recovery_dir, prefix=".cnf") as cnf:
        os.chmod(cnf.name, 0o600)
        cnf.write(f"[client]\nuser={ep.user}\npassword={ep.password}\n")
    try:
        body = []
        for r in ranges:
            where = (
                [f"--socket={ep.unix_socket}", "--host=localhost"]
                if ep.unix_socket
                else [f"--host={ep.host}", f"--port={ep.port}"]
            )
            argv = [
                "mariadb-binlog",
                f"--defaults-extra-file={cnf.name}",
                "--read-from-remote-server",
                *where,
                f"--start-position={r.start}",
                f"--stop-position={r.stop}",
                "--verbose",
                "--to-last-log",
                logs[0],
            ]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise ReplicationError(
                    f"site {ep.site}: mariadb-binlog could not read {r.start}..{r.stop} "
                    f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}; nothing was reset"
                )
            body.append(proc.stdout)
    finally:
        os.unlink(cnf.name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(header) + "\n".join(body))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
