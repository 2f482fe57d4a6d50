"""The experiment's aggregation and report on synthetic runs: the table's statistics, the
Markdown and HTML agree with results, the plots are written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from draas.lab.experiment import table
from draas.lab.report import markdown, write_report

SETTINGS = {
    "preset": "fast",
    "replication": "semi-sync",
    "dns_ttl_s": 5,
    "meter_interval_s": 0.1,
    "meter_timeout_s": 1.0,
    "consecutive": 3,
}


def run(scheme: str, rto: float | None, repeat: int = 1, lost: int = 0) -> dict[str, Any]:
    return {
        "scheme": scheme,
        "disaster": "power-off",
        "repeat": repeat,
        "run": f"{scheme}-power-off-{repeat}",
        "disaster_at": 1000.0,
        "reverted_at": 1010.0,
        "rto_s": rto,
        "downtime_s": rto or 30.0,
        "detection_s": 1.0,
        "decision_s": 5.0,
        "switch_s": 5.2,
        "client_catch_up_s": 0.1,
        "lost_acked_writes": lost,
        "unknown_writes": 1,
        "false_failovers": 0,
        "failback_s": 6.0,
        "checksums_match": True,
    }


def test_table_statistics_per_scheme_and_disaster() -> None:
    runs = [run("hybrid", r, i) for i, r in enumerate([5.0, 6.0, 7.0, 5.5, 30.0], 1)]
    runs += [run("dns", 9.0), run("dns", None, 2, lost=2)]
    rows = {r["scheme"]: r for r in table(runs)}
    assert [r["scheme"] for r in table(runs)] == ["dns", "hybrid"]
    h = rows["hybrid"]
    assert h["runs"] == 5 and h["rto_s"] == {"median": 6.0, "p95": 30.0, "max": 30.0}
    d = rows["dns"]
    assert d["not_recovered"] == 1 and d["rto_s"]["median"] == 9.0 and d["lost_acked_writes"] == 2


def test_report_files_agree(tmp_path: Path) -> None:
    runs = [run("frontend", 5.4), run("hybrid", 5.2)]
    for r in runs:
        d = tmp_path / "runs" / r["run"]
        d.mkdir(parents=True)
        reqs = [
            {"t": 990.0 + i * 0.5, "ok": not 1000 <= 990 + i * 0.5 < 1005, "check": c}
            for i in range(60)
            for c in ("web", "api")
        ]
        (d / "requests.jsonl").write_text("".join(json.dumps(x) + "\n" for x in reqs))
        (d / "events.json").write_text(
            json.dumps([{"ts": 1005.0, "node": "site-dr", "step": "take-lease", "outcome": "done"}])
        )
    settings = SETTINGS
    doc = {"wall_time_s": 60.0, "runs": runs, "table": table(runs), "settings": settings}
    write_report(doc, tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert md == markdown(doc)
    assert "| frontend | power-off | 1 | 5.4 | 5.4 | 5.4 |" in md
    page = (tmp_path / "index.html").read_text()
    assert "<td>hybrid</td><td>power-off</td><td>1</td><td>5.2</td>" in page
    for r in runs:
        png = tmp_path / "runs" / r["run"] / "timeline.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f'src="runs/{r["run"]}/timeline.png"' in page
    assert (tmp_path / "rto.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_run_is_counted_apart_and_reported_with_its_reason(tmp_path: Path) -> None:
    from draas.lab.experiment import failed_run

    runs = [run("hybrid", 5.0), failed_run("hybrid", "power-off", 2, "LabError: no active")]
    row = table(runs)[0]
    assert row["runs"] == 1 and row["failed_runs"] == 1 and row["not_recovered"] == 0
    assert row["rto_s"]["median"] == 5.0
    md = markdown({"wall_time_s": 1.0, "settings": SETTINGS, "runs": runs, "table": [row]})
    assert "| hybrid-power-off-2 | failed: LabError: no active |" in md


def test_split_brain_instants_add_up_and_unknown_stays_unknown() -> None:
    runs = [
        {**run("hybrid", 5.0, 1), "split_brain_instants": 0},
        {**run("hybrid", 5.1, 2), "split_brain_instants": 2},
        run("dns", 9.0),
    ]
    rows = {r["scheme"]: r for r in table(runs)}
    assert rows["hybrid"]["split_brain_instants"] == 2
    assert rows["dns"]["split_brain_instants"] is None  # not measured is not zero
    md = markdown({"wall_time_s": 1.0, "settings": SETTINGS, "runs": runs, "table": table(runs)})
    assert "| split-brain instants |" in md.splitlines()[4]
