"""What an operator installs: the wheel, without the lab's extra, in a fresh virtual
environment, gives a working ``draas`` (help, config check of every example, status against
an agent that is not there: one clear line, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("draas.toml"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``draas`` command of a fresh virtual environment with only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built as pip builds it (the backend fetched from PyPI into an isolated environment).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("draas-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    pip = tmp / "venv" / "bin" / "pip"
    subprocess.run(
        [str(pip), "install", "-q", "--disable-pip-version-check", str(wheel)], check=True
    )
    return tmp / "venv" / "bin" / "draas"


def test_the_wheel_alone_gives_a_working_command(installed: Path) -> None:
    helped = subprocess.run([str(installed), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "status" in helped.stdout and "agent" in helped.stdout
    for sub in ("status", "agent", "config", "rto", "events", "catalog"):
        got = subprocess.run([str(installed), sub, "--help"], capture_output=True, text=True)
        assert got.returncode == 0 and "Traceback" not in got.stderr, (sub, got.stderr)


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_is_checked_by_the_installed_command(installed: Path, example: str) -> None:
    got = subprocess.run(
        [str(installed), "config", "check", "--skip-files", str(ROOT / example)],
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in got.stderr, got.stderr
    assert got.returncode == 0, got.stderr


def test_status_against_no_agent_is_one_clear_line(installed: Path) -> None:
    # A port on loopback where nothing listens: the agent is not there.
    got = subprocess.run(
        [
            str(installed),
            "status",
            "--config",
            str(ROOT / EXAMPLES[0]),
            "--agent",
            "http://127.0.0.1:9/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.returncode != 0 and "Traceback" not in got.stderr, got.stderr
    assert got.stderr.startswith("error: no agent answered: http://127.0.0.1:9"), got.stderr


def test_the_wheel_carries_the_units_the_rules_and_the_dashboard(installed: Path) -> None:
    """docs/install.md installs the agent's unit from the virtual environment."""
    share = installed.parents[1] / "share" / "draas"
    for rel in (
        "systemd/draas-agent@.service",
        "systemd/draas-drill.timer",
        "prometheus/draas-alerts.yml",
        "grafana/draas-dashboard.json",
    ):
        shipped = share / rel
        assert shipped.is_file(), rel
        assert shipped.read_bytes() == (ROOT / "deploy" / rel).read_bytes(), rel
