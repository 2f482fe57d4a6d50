"""The README's main command, end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from draas.lab import netns
from draas.lab.lab import Lab
from draas.lab.network import ns_prefix

pytestmark = pytest.mark.lab


def test_demo_builds_fails_over_fails_back_and_tears_down(lab_name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "draas.cli",
            "lab",
            "--lab",
            lab_name,
            "demo",
            "--out",
            str(tmp_path),
        ],
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
        rto = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RTO (client"))
        assert 0 < float(rto.split()[-2]) < 45, rto
        print(proc.stdout)
        assert re.search(r"^served after recovery by +dr$", proc.stdout, re.M)
        lost = next(ln for ln in proc.stdout.splitlines() if ln.startswith("acknowledged"))
        assert lost.split()[-3] == "0", lost
        assert re.search(r"^sites' checksums equal +True$", proc.stdout, re.M)
        assert re.search(r"^split-brain instants +0$", proc.stdout, re.M)
        assert "primary active (epoch" in proc.stdout  # draas status after the failback
        assert (tmp_path / "runs" / "hybrid-power-off-1" / "requests.jsonl").stat().st_size > 0
        assert "is down in" in proc.stderr
        assert not [n for n in netns.list_namespaces() if n.startswith(ns_prefix(lab_name))]
    finally:
        Lab(lab_name).down()
