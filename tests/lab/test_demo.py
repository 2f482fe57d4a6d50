"""The README's main command, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from draas.lab import netns
from draas.lab.lab import Lab
from draas.lab.network import ns_prefix

pytestmark = pytest.mark.lab


def test_demo_builds_checks_and_tears_down(lab_name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "draas.cli", "lab", "--lab", lab_name, "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for check in (
            "DNS via Unbound",
            "web page",
            "Keystone token",
            "DR replica",
            "etcd quorum",
            "WAN latency",
        ):
            line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(check))
            assert " ok " in line, line
        assert "is down in" in proc.stderr
        assert not [n for n in netns.list_namespaces() if n.startswith(ns_prefix(lab_name))]
    finally:
        Lab(lab_name).down()
