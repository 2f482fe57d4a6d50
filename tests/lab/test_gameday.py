"""``draas disaster`` for game days, run inside the lab's namespaces as it would run on a real
machine: it says what it will do, refuses without --yes, kills or freezes a process, and a
network failure restores itself after its duration even when the command is killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import wait_until

from draas.lab import netns
from draas.lab.lab import Lab

pytestmark = pytest.mark.lab


def eth0(lab: Lab, host: str) -> str:
    out = lab.exec(host, ["ip", "-o", "link", "show", "eth0"], capture_output=True, text=True)
    return "up" if ",UP" in out.stdout or "<UP" in out.stdout else "down"


def disaster(lab: Lab, host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(
        host,
        [sys.executable, "-m", "draas.cli", "disaster", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_refused_without_yes_and_nothing_changes(bare_lab: Lab) -> None:
    got = disaster(bare_lab, "primary", "network-failure", "--interface", "eth0", "--duration", "2")
    assert got.returncode == 3  # refused: not confirmed
    assert "will take interface eth0 down for 2 s" in got.stderr and "--yes" in got.stderr
    assert eth0(bare_lab, "primary") == "up"
    off = disaster(bare_lab, "primary", "power-off")
    assert off.returncode == 3 and "power this machine off" in off.stderr


def test_bad_input_names_the_field(bare_lab: Lab) -> None:
    got = disaster(
        bare_lab, "primary", "network-failure", "--interface", "wlan9", "--duration", "2", "--yes"
    )
    assert got.returncode == 2 and "--interface 'wlan9': no such interface; have:" in got.stderr
    got = disaster(bare_lab, "primary", "network-failure", "--interface", "eth0", "--yes")
    assert got.returncode == 2 and "--duration None" in got.stderr
    got = disaster(bare_lab, "primary", "process-kill", "--pid", "1", "--yes")
    assert got.returncode == 2 and "refusing to signal process 1" in got.stderr


def test_network_failure_restores_itself_even_if_the_command_is_killed(bare_lab: Lab) -> None:
    cmd = netns.in_ns(
        bare_lab.ns("primary"),
        [
            sys.executable,
            "-m",
            "draas.cli",
            "disaster",
            "network-failure",
            "--interface",
            "eth0",
            "--duration",
            "2",
            "--yes",
            "--wait",
        ],
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until("eth0 down", lambda: eth0(bare_lab, "primary") == "down", 10)
        proc.kill()  # the caller dies; the restorer lives on
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    t0 = time.monotonic()
    wait_until("eth0 back up", lambda: eth0(bare_lab, "primary") == "up", 10)
    assert time.monotonic() - t0 < 5
    ping = bare_lab.exec(
        "primary", ["ping", "-c", "1", "-W", "2", "198.18.2.10"], capture_output=True, text=True
    )
    assert ping.returncode == 0


def test_process_kill_and_hang(bare_lab: Lab) -> None:
    for name, state in (("process-hang", "T"), ("process-kill", None)):
        spec = bare_lab.spec(f"victim-{name}", "primary", ["sleep", "60"])
        pid = bare_lab.sup.launch(spec)
        got = disaster(bare_lab, "primary", name, "--pid", str(pid), "--yes")
        assert got.returncode == 0, got.stderr
        if state is None:
            wait_until("the victim gone", lambda s=spec: bare_lab.sup.state(s.name) == "exited", 5)  # type: ignore[misc]
        else:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            assert stat == state
            bare_lab.sup.crash(spec.name)
