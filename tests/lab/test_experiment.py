"""A small experiment on real labs (the DNS scheme, then the baselines, primary power-off, one
run each): the report's files exist and agree with each other, the RTO is finite, no
acknowledged write is lost in semi-sync mode, no failover is false, failback completes with
equal checksums."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from draas.lab.experiment import run_matrix

pytestmark = pytest.mark.lab


def test_a_small_matrix_reports_consistent_finite_figures(tmp_path: Path) -> None:
    # The DNS scheme: the experiment's whole pipeline (meters, figures, report) on one run;
    # the frontend and hybrid schemes' failovers and failbacks have their own tests
    # (test_schemes.py, test_controller.py), the full matrix is a benchmark.
    doc = run_matrix(["dns"], ["power-off"], 1, tmp_path, print)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"] == doc["runs"] and len(saved["runs"]) == 1
    md = (tmp_path / "results.md").read_text()
    page = (tmp_path / "index.html").read_text()
    for run in saved["runs"]:
        print(
            {
                k: run[k]
                for k in (
                    "run",
                    "rto_s",
                    "downtime_s",
                    "detection_s",
                    "decision_s",
                    "switch_s",
                    "client_catch_up_s",
                    "failback_s",
                )
            }
        )
        for field in (
            "scheme",
            "disaster",
            "repeat",
            "rto_s",
            "downtime_s",
            "lost_acked_writes",
            "unknown_writes",
            "false_failovers",
            "split_brain_instants",
            "failback_s",
        ):
            assert field in run
        assert run["rto_s"] is not None and 0 < run["rto_s"] < 45, run
        assert run["recovered_site"] == "dr"
        assert run["lost_acked_writes"] == 0 and run["acked_writes"] > 0
        assert run["false_failovers"] == 0 and run["failovers"] == 1
        assert run["failback_s"] is not None and run["checksums_match"] is True
        assert run["split_brain_instants"] == 0, run["split_brain"]  # measured, and none
        samples = (tmp_path / "runs" / run["run"] / "splitbrain.jsonl").read_text().splitlines()
        assert len(samples) > 10  # it sampled through the whole run (every 0.5 s)
        assert run["detection_s"] <= run["decision_s"] <= run["switch_s"]
        # It struck at a known moment of the client's DNS cache cycle (TTL 5 s + the second
        # the resolver counts to 0): the client caught up when that cycle ended after the
        # switch (the meter's next request and its answer later, within a generous 0.6 s).
        cycle, phase = 6.0, run["cache_phase_s"]
        assert phase is not None and 0 <= phase < cycle, run
        expected = (cycle - (phase + run["switch_s"])) % cycle
        off = (run["client_catch_up_s"] - expected + cycle / 2) % cycle - cycle / 2
        assert -0.1 < off < 0.6, (expected, run)
        timeline = tmp_path / "runs" / run["run"] / "timeline.png"
        assert timeline.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="runs/{run["run"]}/timeline.png"' in page
    for row in saved["table"]:
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {row['scheme']} | "))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == "power-off" and float(cells[3]) == row["rto_s"]["median"]
        assert re.search(
            rf"<td>{row['scheme']}</td><td>power-off</td><td>1</td>"
            rf"<td>{row['rto_s']['median']}</td>",
            page,
        )
    assert (tmp_path / "rto.png").read_bytes()[:4] == b"\x89PNG"


def test_baselines_recover_reads_but_take_no_writes_at_the_dr_site(tmp_path: Path) -> None:
    """The autonomous frontend and PowerDNS's health-checked record move clients to the DR
    site by themselves, but nothing promotes its database: the write checker shows it."""
    doc = run_matrix(["autonomous", "powerdns"], ["power-off"], 1, tmp_path, print)
    for run in doc["runs"]:
        print(
            {
                k: run[k]
                for k in (
                    "run",
                    "rto_s",
                    "downtime_s",
                    "acked_writes",
                    "acked_writes_after_disaster",
                    "failback_s",
                )
            }
        )
        assert run["rto_s"] is not None and run["recovered_site"] == "dr", run
        assert run["failovers"] == 0 and run["acked_writes"] > 0
        assert run["acked_writes_after_disaster"] == 0
        assert run["failback_s"] is not None  # back on the primary once its checks pass
