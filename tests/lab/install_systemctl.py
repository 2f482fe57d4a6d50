#!/usr/bin/python3
"""``systemctl`` for docs/install.md's lab test: the lab's machines have no systemd, so this
starts the same daemons the Debian units start, from the same configuration files, inside the
machine's namespaces (it runs in them). Only the units the document uses are known; anything
else is refused (the document must not rely on what the test cannot run).

State (each unit's PID and start time, its log) is kept in ``$DRAAS_INSTALL_STATE``.
Standard library only: it runs with the system's Python.
"""

from __future__ import annotations

import configparser
import glob
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["DRAAS_INSTALL_STATE"])
UNITS = STATE / "units.json"
SAY = "systemctl (lab stand-in)"


def fail(message: str, code: int = 1) -> None:
    print(f"{SAY}: {message}", file=sys.stderr)
    sys.exit(code)


def started_at(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def load() -> dict[str, list[object]]:
    try:
        return dict(json.loads(UNITS.read_text()))
    except (OSError, ValueError):
        return {}


def save(units: dict[str, list[object]]) -> None:
    UNITS.write_text(json.dumps(units))


def running(unit: str) -> int | None:
    pid, start = load().get(unit, [None, None])
    if isinstance(pid, int) and start is not None and started_at(pid) == start:
        return pid
    return None


def env_file(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            parts = shlex.split(value)
            out[key.strip()] = parts[0] if len(parts) == 1 else " ".join(parts)
    return out


def as_user(user: str) -> list[str]:
    if user in ("", "root"):
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def own(path: str, user: str, mode: int) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["chown", f"{user}:{user}", path], check=True)
    os.chmod(path, mode)


def wait_for(what: str, ok: object, timeout: float, unit: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(unit) is None:
            break
        if callable(ok) and ok():
            return
        time.sleep(0.2)
    log = STATE / f"{unit}.log"
    tail = log.read_text()[-2000:] if log.exists() else ""
    fail(f"{unit}: {what} did not happen within {timeout:.0f} s; its log ends:\n{tail}")


def connects(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def unit_file(name: str) -> configparser.ConfigParser:
    """An installed unit with its drop-ins (draas-agent@NODE: the template's, then its own)."""
    base = name.split("@", 1)[0] + "@.service" if "@" in name else name + ".service"
    files = [f"/etc/systemd/system/{base}"]
    files += sorted(glob.glob(f"/etc/systemd/system/{base}.d/*.conf"))
    files += sorted(glob.glob(f"/etc/systemd/system/{name}.service.d/*.conf"))
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    if not Path(files[0]).exists():
        fail(f"unit {name}: {files[0]} is not installed", 5)
    unit.read(files)
    return unit


def command(unit: str) -> tuple[list[str], dict[str, str], str, float]:
    """(argv, environment, user, seconds to wait for readiness) of a unit."""
    if unit == "mariadb":
        if not Path("/var/lib/mysql/mysql").exists():
            # What Debian's postinst does when the package is installed.
            subprocess.run(
                [
                    "mariadb-install-db",
                    "--rpm",
                    "--cross-bootstrap",
                    "--user=mysql",
                    "--disable-log-bin",
                    "--skip-test-db",
                ],
                check=True,
                capture_output=True,
            )
        own("/run/mysqld", "mysql", 0o755)
        return ["/usr/sbin/mariadbd", "--user=mysql"], {}, "root", 60
    if unit == "etcd":
        env = {"ETCD_NAME": socket.gethostname(), "ETCD_DATA_DIR": "/var/lib/etcd/default"}
        env |= env_file("/etc/default/etcd")
        return ["/usr/bin/etcd", *shlex.split(env.get("DAEMON_ARGS", ""))], env, "etcd", 0
    if unit == "named":
        opts = env_file("/etc/default/named").get("OPTIONS", "-u bind")
        os.makedirs("/run/named", exist_ok=True)
        subprocess.run(["chown", "root:bind", "/run/named"], check=True)
        os.chmod("/run/named", 0o775)
        return ["/usr/sbin/named", "-f", *shlex.split(opts)], {}, "root", 20
    if unit.startswith("draas-agent@"):
        node = unit.split("@", 1)[1]
        svc = unit_file(unit)["Service"]
        user = svc.get("User", "root")
        if svc.get("StateDirectory"):
            own(f"/var/lib/{svc['StateDirectory']}", user, 0o755)
        for pre in [p for p in svc.get("ExecStartPre", "").splitlines() if p.strip()]:
            got = subprocess.run(
                as_user(user) + shlex.split(pre.replace("%i", node)), capture_output=True, text=True
            )
            if got.returncode != 0:
                fail(f"{unit}: ExecStartPre {pre!r} failed:\n{got.stdout}{got.stderr}")
        return as_user(user) + shlex.split(svc["ExecStart"].replace("%i", node)), {}, "", 0
    fail(f"unit {unit!r} is not one the lab can run (mariadb, etcd, named, draas-agent@NODE)", 5)
    raise AssertionError  # not reached


def start(unit: str) -> None:
    if running(unit) is not None:
        return
    argv, env, user, ready_s = command(unit)
    log = open(STATE / f"{unit}.log", "ab")  # noqa: SIM115 (the daemon keeps it)
    proc = subprocess.Popen(
        as_user(user) + argv,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    units = load()
    units[unit] = [proc.pid, started_at(proc.pid)]
    save(units)
    if unit == "mariadb":
        wait_for("its socket", lambda: connects("/run/mysqld/mysqld.sock"), ready_s, unit)
    elif unit == "named":
        wait_for("its pid file", lambda: Path("/run/named/named.pid").exists(), ready_s, unit)
    else:
        time.sleep(1)
        if running(unit) is None:
            wait_for("staying up", lambda: False, 0, unit)


def stop(unit: str) -> None:
    pid = running(unit)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90  # the agent's TimeoutStopSec
    while running(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if running(unit) is not None:
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> None:
    words = [a for a in argv if not a.startswith("-")]
    flags = {a for a in argv if a.startswith("-")}
    unknown = flags - {"--now", "--no-block", "-q", "--quiet"}
    if unknown or not words:
        fail(f"not supported here: {' '.join(argv)}", 2)
    verb, units = words[0], [u.removesuffix(".service") for u in words[1:]]
    print(f"{SAY}: {' '.join(argv)}", file=sys.stderr)
    if verb == "daemon-reload":
        return
    for unit in units:
        if verb == "enable":
            command_known = unit in ("mariadb", "etcd", "named") or unit.startswith("draas-agent@")
            if not command_known:
                fail(f"unit {unit!r} is not one the lab can run", 5)
            if "--now" in flags:
                start(unit)
        elif verb == "start":
            start(unit)
        elif verb == "restart":
            stop(unit)
            start(unit)
        elif verb == "stop":
            stop(unit)
        elif verb == "is-active":
            if running(unit) is None:
                sys.exit(3)
        else:
            fail(f"verb {verb!r} is not supported here", 2)


if __name__ == "__main__":
    main(sys.argv[1:])
