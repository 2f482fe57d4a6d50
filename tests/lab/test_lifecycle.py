"""up/down are idempotent and down leaves nothing behind, also after a crash mid-up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from draas.lab import netns
from draas.lab.lab import Lab, LabSettings
from draas.lab.network import NETNS_ETC, ns_prefix
from draas.lab.supervisor import proc_stat

pytestmark = pytest.mark.lab

DRAAS = [sys.executable, "-m", "draas.cli"]


def draas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DRAAS, *args], capture_output=True, text=True, timeout=120, check=False)


def leftovers(name: str) -> list[str]:
    """Everything of lab ``name`` still on the machine (checked, not assumed)."""
    prefix = ns_prefix(name)
    found = [f"netns {n}" for n in netns.list_namespaces() if n.startswith(prefix)]
    if NETNS_ETC.exists():
        found += [f"/etc/netns/{d}" for d in os.listdir(NETNS_ETC) if d.startswith(prefix)]
    root_links = netns.run(["ip", "-o", "link", "show"]).stdout
    found += [f"root link {w}" for w in root_links.split() if w.startswith("v-")]
    if Lab(name).run.path.exists():
        found.append(f"run dir {Lab(name).run.path}")
    return found


def alive(pids: list[tuple[int, int]]) -> list[int]:
    out = []
    for pid, start in pids:
        st = proc_stat(pid)
        if st is not None and st[1] == start and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def test_up_twice_and_down_twice_are_safe(lab_name: str) -> None:
    name = lab_name
    try:
        first = draas("lab", "--lab", name, "up", "--bare")
        assert first.returncode == 0, first.stderr
        second = draas("lab", "--lab", name, "up", "--bare")
        assert second.returncode == 0, second.stderr
        assert "already up" in second.stderr
        st = draas("lab", "--lab", name, "status", "--json")
        assert '"phase": "up"' in st.stdout
        procs = [
            (r["pid"], r["start_time"])
            for r in (Lab(name).sup.record(n) for n in Lab(name).sup.names())
        ]
        assert procs, "the WAN delayer should be running"
    finally:
        down1 = draas("lab", "--lab", name, "down")
    assert down1.returncode == 0, down1.stderr
    assert "8 namespace(s) removed" in down1.stderr
    down2 = draas("lab", "--lab", name, "down")
    assert down2.returncode == 0 and "nothing to remove" in down2.stderr
    assert leftovers(name) == []
    assert alive(procs) == []


def test_down_cleans_up_after_sigkill_mid_up(lab_name: str) -> None:
    """Killed while the services start: namespaces, daemons and files must all go."""
    name = lab_name
    lab = Lab(name)
    proc = subprocess.Popen(
        [*DRAAS, "lab", "--lab", name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = [n for n in lab.sup.names() if n.startswith(("mariadb", "etcd"))]
            if len(running) >= 2:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert leftovers(name), "the crash should have left a half-built lab"
        assert lab.run.load().get("phase") == "building"
        procs = [
            (lab.sup.record(n)["pid"], lab.sup.record(n)["start_time"]) for n in lab.sup.names()
        ]
        assert alive(procs), "daemons started before the crash should still run"
    finally:
        down = draas("lab", "--lab", name, "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(name) == []
    assert alive(procs) == []


def test_down_works_even_when_the_run_directory_is_lost(lab_name: str) -> None:
    name = lab_name
    lab = Lab(name)
    lab.up(LabSettings(services=False))
    try:
        procs = [
            (lab.sup.record(n)["pid"], lab.sup.record(n)["start_time"]) for n in lab.sup.names()
        ]
        assert alive(procs)
        shutil.rmtree(lab.run.path)  # as if /run was wiped or the state corrupted
    finally:
        report = Lab(name).down()
    assert len(report["namespaces_removed"]) == 8
    assert report["processes_killed"] >= 1
    assert leftovers(name) == []
    assert alive(procs) == []


def test_up_after_a_crash_rebuilds_cleanly(lab_name: str) -> None:
    name = lab_name
    lab = Lab(name)
    lab.up(LabSettings(services=False))
    try:
        lab.run.update(phase="building")  # as if the process died before finishing
        again = Lab(name).up(LabSettings(services=False))
        assert again["already_up"] is False
        assert Lab(name).is_up()
    finally:
        Lab(name).down()
    assert leftovers(name) == []


def test_lab_name_is_validated() -> None:
    r = draas("lab", "--lab", "Bad-Name", "status")
    assert r.returncode == 2  # invalid input
    assert "lab name 'Bad-Name' is not allowed" in r.stderr


def test_exec_runs_inside_the_host() -> None:
    r = draas("lab", "--lab", "nolabhere", "exec", "client", "--", "true")
    assert r.returncode == 3 and "is not up" in r.stderr
