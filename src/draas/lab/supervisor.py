"""Start, watch and stop the lab's processes, each inside its host's namespace.

Processes are detached (their own session, parent re-assigned to init) so that they outlive the
``draas lab up`` that started them; each one's spec, PID and kernel start time are recorded in
the run directory, so any later command can find it again, and a reused PID is never signalled.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from draas.errors import LabError, ReadinessError
from draas.lab import netns
from draas.lab.readiness import Ready, ready_from_dict
from draas.lab.state import RunDir, read_json, write_json

log = logging.getLogger(__name__)

# Writes its own PID, then becomes the daemon (exec keeps the PID). Values travel as
# arguments ("$0", "$@"), never inside the script text.
_PID_WRAPPER = 'echo $$ > "$0"; exec "$@"'


@dataclass
class ProcessSpec:
    name: str
    ns: str
    argv: list[str]
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ready: Ready | None = None
    ready_timeout_s: float = 30.0
    host: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ns": self.ns,
            "host": self.host,
            "argv": self.argv,
            "user": self.user,
            "env": self.env,
            "cwd": self.cwd,
            "ready": self.ready.to_dict() if self.ready else None,
            "ready_timeout_s": self.ready_timeout_s,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ProcessSpec:
        return cls(
            name=doc["name"],
            ns=doc["ns"],
            host=doc.get("host", ""),
            argv=list(doc["argv"]),
            user=doc.get("user"),
            env=dict(doc.get("env") or {}),
            cwd=doc.get("cwd"),
            ready=ready_from_dict(doc.get("ready")),
            ready_timeout_s=float(doc.get("ready_timeout_s", 30.0)),
        )


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a PID, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def signal_if_same(pid: int, start_time: int, sig: int) -> bool:
    """Signal ``pid`` only if it is still the process we started (same kernel start time)."""
    st = proc_stat(pid)
    if st is None or st[1] != start_time:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """The lab's process table, kept in the run directory."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    # -- records --------------------------------------------------------------------------
    def _record_path(self, name: str) -> Path:
        return self.run.processes / f"{name}.json"

    def record(self, name: str) -> dict[str, Any]:
        doc = read_json(self._record_path(name))
        if doc is None:
            known = ", ".join(sorted(self.names())) or "none"
            raise LabError(f"no lab process named {name!r}; known: {known}")
        return dict(doc)

    def names(self) -> list[str]:
        if not self.run.processes.exists():
            return []
        return sorted(p.stem for p in self.run.processes.glob("*.json"))

    def log_path(self, name: str) -> Path:
        return self.run.logs / f"{name}.log"

    # -- lifecycle -------------------------------------------------------------------------
    def launch(self, spec: ProcessSpec) -> int:
        """Start a process detached inside its namespace; return its PID (no readiness wait)."""
        if not netns.exists(spec.ns):
            raise LabError(f"cannot start {spec.name}: namespace {spec.ns} does not exist")
        old = read_json(self._record_path(spec.name))
        if old and self.state(spec.name) in ("running", "stopped"):
            raise LabError(f"{spec.name} is already running (pid {old['pid']})")
        self.run.logs.mkdir(parents=True, exist_ok=True)
        pidfile = self.run.processes / f"{spec.name}.pid"
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.unlink(missing_ok=True)
        inner = list(spec.argv)
        if spec.user:
            try:
                pw = pwd.getpwnam(spec.user)
            except KeyError:
                raise LabError(f"cannot start {spec.name}: no user {spec.user!r} here") from None
            inner = [
                "setpriv",
                f"--reuid={pw.pw_uid}",
                f"--regid={pw.pw_gid}",
                "--init-groups",
                "--",
                *inner,
            ]
        argv = [
            "setsid",
            "-f",
            "sh",
            "-c",
            _PID_WRAPPER,
            str(pidfile),
            *netns.in_ns(spec.ns, inner),
        ]
        env = {**os.environ, **spec.env}
        logfile = self.log_path(spec.name)
        with logfile.open("a") as out:
            out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(spec.argv)}\n")
            out.flush()
            subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=spec.cwd,
                check=True,
                timeout=10,
            )
        pid = self._read_pidfile(pidfile, spec.name, logfile)
        st = proc_stat(pid)
        write_json(
            self._record_path(spec.name),
            {
                "spec": spec.to_dict(),
                "pid": pid,
                "start_time": st[1] if st else 0,
                "started_at": time.time(),
            },
        )
        log.debug("started %s in %s as pid %d", spec.name, spec.ns, pid)
        return pid

    @staticmethod
    def _read_pidfile(pidfile: Path, name: str, logfile: Path) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = pidfile.read_text().strip() if pidfile.exists() else ""
            if text.isdigit():
                pidfile.unlink(missing_ok=True)
                return int(text)
            time.sleep(0.01)
        raise LabError(f"{name}: no PID reported within 5 s; log:\n{log_tail(logfile)}")

    def wait_ready(self, name: str) -> float:
        """Block until the process is ready; return the seconds waited."""
        rec = self.record(name)
        spec = ProcessSpec.from_dict(rec["spec"])
        t0 = time.monotonic()
        deadline = t0 + spec.ready_timeout_s
        reason = "not checked yet"
        while True:
            if self.state(name) not in ("running", "stopped"):
                raise ReadinessError(
                    f"{name} (host {spec.host or spec.ns}) exited before it was ready; "
                    f"last lines of {self.log_path(name)}:\n{log_tail(self.log_path(name))}"
                )
            if spec.ready is None:
                return 0.0
            why = spec.ready.check(spec.ns)
            if why is None:
                return time.monotonic() - t0
            reason = why
            if time.monotonic() >= deadline:
                raise ReadinessError(
                    f"{name} (host {spec.host or spec.ns}) not ready after "
                    f"{spec.ready_timeout_s:g} s ({reason}); last lines of "
                    f"{self.log_path(name)}:\n{log_tail(self.log_path(name))}"
                )
            time.sleep(0.1)

    def start(self, spec: ProcessSpec) -> int:
        pid = self.launch(spec)
        self.wait_ready(spec.name)
        return pid

    def start_many(self, specs: list[ProcessSpec]) -> dict[str, float]:
        """Start all, then wait for all in parallel; return each one's time to readiness."""
        t0 = time.monotonic()
        for spec in specs:
            self.launch(spec)
        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            futures = {s.name: pool.submit(self.wait_ready, s.name) for s in specs}
            for fut in futures.values():
                fut.result()
        return {name: time.monotonic() - t0 for name in futures}

    def restart(self, name: str) -> int:
        spec = ProcessSpec.from_dict(self.record(name)["spec"])
        self.stop(name)
        return self.start(spec)

    # -- signals ----------------------------------------------------------------------------
    def state(self, name: str) -> str:
        """'running', 'stopped' (SIGSTOP), or 'exited'."""
        rec = read_json(self._record_path(name))
        if not rec:
            return "exited"
        st = proc_stat(int(rec["pid"]))
        if st is None or st[1] != rec["start_time"] or st[0] in ("Z", "X"):
            return "exited"
        return "stopped" if st[0] in ("T", "t") else "running"

    def send(self, name: str, sig: int) -> bool:
        """Send a signal to a supervised process (only if it is still the one we started)."""
        rec = self.record(name)
        return signal_if_same(int(rec["pid"]), int(rec["start_time"]), sig)

    def send_group(self, name: str, sig: int) -> bool:
        """Signal the process and every process it started (its process group: each supervised
        process leads its own session), e.g. uWSGI's master and its workers."""
        rec = self.record(name)
        pid, start = int(rec["pid"]), int(rec["start_time"])
        st = proc_stat(pid)
        if st is None or st[1] != start:
            return False
        try:
            if os.getpgid(pid) != pid:
                return signal_if_same(pid, start, sig)
            os.killpg(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def crash(self, name: str) -> None:
        """SIGKILL to the whole service (all its processes die at once, as in a crash)."""
        self.send_group(name, signal.SIGKILL)
        self._wait_exit(name, 5.0)

    def hang(self, name: str) -> None:
        """SIGSTOP to the whole service: it keeps its sockets but answers nothing."""
        self.send_group(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.send_group(name, signal.SIGCONT)

    def stop(self, name: str, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.state(name) == "exited":
            return
        self.send(name, signal.SIGTERM)
        self.send_group(name, signal.SIGCONT)  # a hung service must run to see the TERM
        if not self._wait_exit(name, timeout):
            log.warning("%s did not exit %g s after SIGTERM; killing it", name, timeout)
            self.crash(name)

    def _wait_exit(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(name) == "exited":
                return True
            time.sleep(0.02)
        return self.state(name) == "exited"

    def stop_all(self, timeout: float = 5.0, warn: bool = True) -> int:
        """Stop every running process at once (TERM to all, then KILL what is left)."""
        running = [n for n in self.names() if self.state(n) != "exited"]
        for name in running:
            self.send(name, signal.SIGTERM)
            self.send_group(name, signal.SIGCONT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self.state(n) != "exited" for n in running):
            time.sleep(0.02)
        for name in running:
            if self.state(name) != "exited":
                level = logging.WARNING if warn else logging.DEBUG
                log.log(level, "%s did not exit %g s after SIGTERM; killing it", name, timeout)
                self.crash(name)
        return len(running)
