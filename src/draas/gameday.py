"""``draas disaster NAME``: game-day disasters on real machines, as the original disaster
creator did, run on the machine they disrupt. Each prints what it will do first and refuses
without ``--yes``; a network failure restores itself after its duration through a detached
restorer started before the link goes down, so it comes back even if the calling shell dies.

Nothing here builds a shell command line: every command is an argument vector.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from draas.errors import DraasError, InvalidInput

NAMES = ("process-kill", "process-hang", "network-failure", "power-off")


@dataclass(frozen=True)
class Plan:
    name: str
    says: str
    act: Callable[[], None]


def _pid(pid: int | None, pidfile: str | None) -> int:
    if (pid is None) == (pidfile is None):
        raise InvalidInput("give exactly one of --pid N or --pidfile FILE")
    if pidfile is not None:
        try:
            pid = int(Path(pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise InvalidInput(f"--pidfile {pidfile}: no process id in it ({exc})") from exc
    assert pid is not None
    if pid <= 1:
        raise InvalidInput(f"--pid {pid}: refusing to signal process {pid}")
    if not Path(f"/proc/{pid}").exists():
        raise InvalidInput(f"--pid {pid}: no such process")
    return pid


def _interface(name: str | None) -> str:
    if not name:
        raise InvalidInput("network-failure: give --interface NAME")
    if "/" in name or name in (".", "..") or not Path(f"/sys/class/net/{name}").exists():
        have = ", ".join(sorted(p.name for p in Path("/sys/class/net").iterdir()))
        raise InvalidInput(f"--interface {name!r}: no such interface; have: {have}")
    if name == "lo":
        raise InvalidInput(
            "--interface lo: taking loopback down breaks the machine itself, not "
            "its service; choose the service's interface"
        )
    return name


def plan(
    name: str,
    *,
    pid: int | None = None,
    pidfile: str | None = None,
    interface: str | None = None,
    duration_s: float | None = None,
) -> Plan:
    if name in ("process-kill", "process-hang"):
        target = _pid(pid, pidfile)
        sig = signal.SIGKILL if name == "process-kill" else signal.SIGSTOP
        how = "kill" if name == "process-kill" else "freeze (SIGSTOP; undo with kill -CONT)"
        return Plan(name, f"{how} process {target} ({_comm(target)})", lambda: os.kill(target, sig))
    if name == "network-failure":
        ifname = _interface(interface)
        if duration_s is None or not 1 <= duration_s <= 3600:
            raise InvalidInput(
                f"--duration {duration_s}: network-failure needs a duration of 1 to "
                "3600 s (the link always comes back by itself)"
            )
        return Plan(
            name,
            f"take interface {ifname} down for {duration_s:g} s; a detached "
            "restorer brings it up again even if this command is killed",
            lambda: _link_down_for(ifname, duration_s),
        )
    if name == "power-off":
        return Plan(
            name,
            "power this machine off at once (systemctl poweroff --force --force)",
            lambda: _run(["systemctl", "poweroff", "--force", "--force"]),
        )
    raise InvalidInput(f"unknown disaster {name!r}; allowed: {', '.join(NAMES)}")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DraasError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")


def _link_down_for(ifname: str, duration_s: float) -> None:
    # The restorer first: once the link is down nothing may depend on this process living.
    subprocess.Popen(
        [sys.executable, "-m", "draas.gameday", "restore-link", ifname, str(duration_s)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _run(["ip", "link", "set", "dev", ifname, "down"])


def restore_link(ifname: str, after_s: float) -> None:
    time.sleep(after_s)
    for _ in range(5):
        if subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=False).returncode == 0:
            return
        time.sleep(1)


if __name__ == "__main__" and sys.argv[1:2] == ["restore-link"]:
    restore_link(sys.argv[2], float(sys.argv[3]))
