"""The supervisor and the process disasters, with a real HTTP server inside a lab host."""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from draas.errors import ReadinessError
from draas.lab import netns
from draas.lab.disasters import PowerOff, ServiceCrash, ServiceHang
from draas.lab.lab import Lab
from draas.lab.readiness import HttpReady, TcpReady

pytestmark = pytest.mark.lab

ADDR, PORT = "198.18.1.10", 8080


def get(lab: Lab, timeout: float = 1.0) -> int:
    """Status of GET / on the test server, asked from the client host."""
    sock = netns.tcp_connect(lab.ns("client"), ADDR, PORT, timeout=timeout)
    conn = http.client.HTTPConnection(ADDR, PORT, timeout=timeout)
    conn.sock = sock
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def web(bare_lab: Lab) -> Iterator[str]:
    spec = bare_lab.spec(
        "web",
        "primary",
        [sys.executable, "-m", "http.server", "--bind", ADDR, str(PORT)],
        user="nobody",
        cwd="/",
        ready=HttpReady(f"http://{ADDR}:{PORT}/"),
    )
    bare_lab.sup.start(spec)
    try:
        yield "web"
    finally:
        bare_lab.sup.stop("web")


def test_started_process_runs_as_its_user_and_logs(bare_lab: Lab, web: str) -> None:
    assert bare_lab.sup.state(web) == "running"
    assert get(bare_lab) == 200
    pid = bare_lab.sup.record(web)["pid"]
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid_line = next(line for line in status if line.startswith("Uid:"))
    assert uid_line.split()[1] == "65534"  # nobody
    assert "GET / HTTP/1.1" in bare_lab.sup.log_path(web).read_text()


def test_hang_freezes_and_resume_thaws(bare_lab: Lab, web: str) -> None:
    with ServiceHang(bare_lab, process=web):
        assert bare_lab.sup.state(web) == "stopped"
        with pytest.raises(OSError):  # the kernel accepts, the frozen server never answers
            get(bare_lab, timeout=0.5)
    assert bare_lab.sup.state(web) == "running"
    assert get(bare_lab) == 200


def test_crash_kills_and_revert_restarts(bare_lab: Lab, web: str) -> None:
    old_pid = bare_lab.sup.record(web)["pid"]
    with ServiceCrash(bare_lab, process=web):
        assert bare_lab.sup.state(web) == "exited"
        # Nothing answers: refused, or reset when the kernel was still tearing the socket down.
        with pytest.raises((ConnectionRefusedError, ConnectionResetError)):
            get(bare_lab)
    assert bare_lab.sup.state(web) == "running"
    assert bare_lab.sup.record(web)["pid"] != old_pid
    assert get(bare_lab) == 200


def test_stop_ends_even_a_hung_process(bare_lab: Lab, web: str) -> None:
    bare_lab.sup.hang(web)
    bare_lab.sup.stop(web, timeout=2.0)
    assert bare_lab.sup.state(web) == "exited"


def test_power_off_kills_the_host_and_power_on_restarts_it(bare_lab: Lab, web: str) -> None:
    with PowerOff(bare_lab, host="primary"):
        assert bare_lab.sup.state(web) == "exited"
        assert bare_lab.net.link_state("primary") == "down"
        assert netns.pids_in(bare_lab.ns("primary")) == []
    assert bare_lab.net.link_state("primary") == "up"
    assert bare_lab.sup.state(web) == "running"
    assert get(bare_lab) == 200


def test_readiness_timeout_shows_the_log_tail(bare_lab: Lab) -> None:
    spec = bare_lab.spec(
        "never",
        "dr",
        ["sh", "-c", "echo listening soon; sleep 30"],
        ready=TcpReady("198.18.2.10", 9),
        ready_timeout_s=0.5,
    )
    with pytest.raises(ReadinessError) as info:
        bare_lab.sup.start(spec)
    try:
        assert "never (host dr) not ready after 0.5 s" in str(info.value)
        assert "listening soon" in str(info.value)
    finally:
        bare_lab.sup.stop("never")


def test_process_that_exits_early_is_reported_at_once(bare_lab: Lab) -> None:
    spec = bare_lab.spec(
        "oops",
        "dr",
        ["sh", "-c", "echo bad option >&2; exit 3"],
        ready=TcpReady("198.18.2.10", 9),
        ready_timeout_s=20,
    )
    with pytest.raises(ReadinessError, match=r"exited before it was ready(.|\n)*bad option"):
        bare_lab.sup.start(spec)
