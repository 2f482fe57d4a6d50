"""The operator's side against the real hybrid lab (agents serving their control API):
``draas status`` from the client host with no flags shows the real state before and after a
failover; a drill passes on a healthy lab and fails naming the check when the DR replica is
stopped; the dashboard in headless chromium shows the state and moves the service; SIGTERM
releases the lease and a restarted agent takes it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import active, done_steps, lease_event, new_lab_name, served_by, wait_until

from draas.lab.agents import start_agents, wait_eligible
from draas.lab.components import mariadb
from draas.lab.disasters import PowerOff
from draas.lab.eventlog import read_events
from draas.lab.lab import Lab, LabSettings

pytestmark = pytest.mark.lab

ARTIFACTS = Path(
    os.environ.get("DRAAS_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)
DR_API = "http://198.18.2.10:8780"


FIRST: dict[str, Any] = {}  # what the fixture saw right after the agents started


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(scheme="hybrid"))
        start_agents(lab, preset="fast", replication="semi-sync")
        # Ready means usable as the README says: a drill passes the moment the start returns.
        FIRST["drill"] = draas(lab, "drill", "--out", str(lab.run.path / "drill-at-start"))
        wait_until("the primary agent takes the record", lambda: active(lab) is not None, 30)
        yield lab
    finally:
        lab.down()


def draas(lab: Lab, *args: str, host: str = "client", timeout: float = 120) -> Any:
    """``draas ...`` inside a lab host, exactly as an operator types it (no --config)."""
    return lab.exec(host, ["draas", *args], capture_output=True, text=True, timeout=timeout)


def status(lab: Lab) -> dict[str, Any]:
    got = draas(lab, "status", "--json")
    assert got.returncode in (0, 6), got.stderr  # 6: healthy but for an ALERT
    return dict(json.loads(got.stdout))


def headline_says(headline: str, state: str) -> bool:
    """The headline's state part (after the warnings it may open with) starts with ``state``."""
    return any(part.startswith(state) for part in headline.split("; "))


def settled(lab: Lab, site: str) -> bool:
    st = status(lab)
    db = next(s["database"] for s in st["sites"] if s["name"] == site) or {}
    return (
        (st["active"] or {}).get("site") == site
        and db.get("role") == "primary"
        and all(f["routes_to"] == site for f in st["frontends"])
    )


def browse(lab: Lab, *args: str) -> dict[str, Any]:
    """tests/lab/browser.py in headless chromium on the client host, at the DR agent's page."""
    token = lab.run.path / "secrets" / "api-token"
    got = lab.exec(
        "client",
        [
            sys.executable,
            str(Path(__file__).parent / "browser.py"),
            f"{DR_API}/",
            "--token-file",
            str(token),
            "--shots",
            str(ARTIFACTS / "dashboard"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    return dict(json.loads(got.stdout))


def test_status_and_dashboard_show_the_real_state_before_and_after_a_failover(lab: Lab) -> None:
    wait_until("status settles on the primary", lambda: settled(lab, "primary"), 30)
    st = status(lab)
    assert st["active"]["site"] == "primary" and st["dns"]["target"] == "fe-a"
    assert st["node"] == "site-dr"  # the CLI asks the DR site's agent first
    dr = next(s for s in st["sites"] if s["name"] == "dr")
    assert dr["database"]["role"] == "replica" and dr["database"]["healthy"]
    assert all(v["alive"] for v in st["vantage_points"])
    table = draas(lab, "status")
    assert "primary active (epoch" in table.stdout
    assert table.returncode == (6 if "ALERT" in table.stdout else 0), table.stdout
    via_cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "draas.cli",
            "lab",
            "--lab",
            lab.name,
            "exec",
            "client",
            "--",
            "draas",
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert via_cli.returncode in (0, 6) and "primary active (epoch" in via_cli.stdout
    assert "DNS keystone.draas.test. -> 198.18.1.20 (fe-a)" in table.stdout
    # Paused (maintenance), the power-off moves nothing; resumed, the failover follows.
    paused = draas(lab, "pause", "--reason", "lab: hold the failover", "--for", "10m")
    assert paused.returncode == 0 and "automatic action paused for 600 s" in paused.stdout
    t0 = time.time()
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        try:
            time.sleep(10)  # detection, window and lease: a failover would be done by now
            assert (active(lab) or {}).get("site") != "dr"
            held = [e for e in read_events(lab, t0) if e.runbook == "decision"]
            assert any(e.extra.get("cause") == "paused" for e in held), held
            shown = draas(lab, "status")
            assert shown.returncode == 6 and "PAUSED by " in shown.stdout, shown.stdout
        finally:  # never leave the lab paused for the tests that follow
            resumed = draas(lab, "resume")
        assert resumed.returncode == 0 and "automatic action resumed" in resumed.stdout
        wait_until("status shows dr active", lambda: settled(lab, "dr"), 30)
        st = status(lab)
        primary = next(s for s in st["sites"] if s["name"] == "primary")
        assert set(primary["seen"].values()) == {"down"}
        assert st["failovers_total"] >= 1 and st["last_failover_at"] is not None
        site_a = next(v for v in st["vantage_points"] if v["name"] == "site-primary")
        assert not site_a["alive"]
        shown = draas(lab, "status")
        text = shown.stdout
        assert "dr active (epoch" in text and "site-primary" in text and " NO " in text
        assert shown.returncode == 6 and "ALERT" in text  # unprotected: needs attention
        metrics = lab.exec(
            "client", ["curl", "-s", "-m", "5", f"{DR_API}/metrics"], capture_output=True, text=True
        ).stdout
        assert 'draas_site_active{site="dr"} 1.0' in metrics
        assert 'draas_site_up{observer="witness",site="primary"} 0.0' in metrics
        page = browse(lab, "--expect-active", "dr", "--name", "failover")
        # After a failover the headline opens with UNPROTECTED (the old primary is no standby).
        assert page["before"].startswith("UNPROTECTED: ") and "; dr active" in page["before"]
        assert page["active_before"] == ["site-dr"]
        assert (ARTIFACTS / "dashboard" / "failover-before.png").exists()
    finally:
        off.revert()
    try:
        wait_until("the automatic failback", lambda: settled(lab, "primary"), 120)
    except AssertionError:  # say why: the status and the last events
        said = draas(lab, "status").stdout + draas(lab, "events", "--limit", "40").stdout
        raise AssertionError(f"no automatic failback within 120 s:\n{said}") from None
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 30)


def test_a_drill_right_after_the_agents_started_passes(lab: Lab) -> None:
    first = FIRST["drill"]
    assert first.returncode == 0 and "drill PASSED" in first.stdout, first.stdout + first.stderr


def test_a_drill_passes_when_healthy_and_names_the_check_when_the_replica_stops(
    lab: Lab, tmp_path: Path
) -> None:
    wait_until("status settles on the primary", lambda: settled(lab, "primary"), 60)
    mariadb.wait_in_sync(lab, "dr", "primary")
    # Right after the first test's failback dr is named the standby again only once in sync.
    wait_eligible(lab, "dr")
    ok = draas(lab, "drill", "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "drill PASSED" in ok.stdout
    report = json.loads(next((tmp_path / "ok").glob("drill-*.json")).read_text())
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {
        "quorum": "pass",
        "dr-eligible": "pass",
        "dr-replica-in-sync": "pass",
        "dr-service-answers": "pass",
        "dr-issues-token": "pass",
        "dns-credentials": "pass",
        "frontends-reach-dr": "pass",
    }
    assert (
        next((tmp_path / "ok").glob("drill-*.md"))
        .read_text()
        .startswith("# DR drill for keystone.draas.test.: PASSED")
    )
    mariadb.sql(lab, "dr", "STOP SLAVE")
    try:
        bad = draas(lab, "drill", "--out", str(tmp_path / "bad"))
        assert bad.returncode == 1
        assert "drill FAILED" in bad.stdout
        line = next(x for x in bad.stdout.splitlines() if "dr-replica-in-sync" in x)
        assert line.startswith("FAIL") and "IO No, SQL No" in line
        assert active(lab)["site"] == "primary"  # type: ignore[index]  # a drill moves nothing
    finally:
        mariadb.sql(lab, "dr", "START SLAVE")
    mariadb.wait_in_sync(lab, "dr", "primary")


def test_the_dashboard_shows_the_lab_and_its_switchover_button_moves_the_service(
    lab: Lab,
) -> None:
    wait_until("status settles on the primary", lambda: settled(lab, "primary"), 60)
    shots = ARTIFACTS / "dashboard"
    seen = browse(lab, "--switch-to", "dr")
    assert seen["title"] == "draas dashboard" and headline_says(seen["before"], "primary active")
    assert seen["active_before"] == ["site-primary"] and seen["vantage_rows"] == 5
    assert "points at fe-a" in seen["dns_box"]
    assert "switchover started: run switchover-dr-from-e" in seen["result"]
    assert headline_says(seen["after"], "dr active") and seen["active_after"] == ["site-dr"]
    assert (shots / "dashboard-before.png").stat().st_size > 10_000
    assert (shots / "dashboard-after.png").stat().st_size > 10_000
    wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 30)
    # Traffic moves before the run's last step (verify); a second move is refused until then.
    run = seen["result"].split("run ", 1)[1].split()[0]
    wait_until(f"{run} done", lambda: "verify" in done_steps(lab, run), 30)
    back = draas(lab, "switchover", "--to", "primary", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "switchover done: switchover-primary-from-e" in back.stdout
    assert active(lab)["site"] == "primary"  # type: ignore[index]


def test_sigterm_leaves_the_record_in_custody_and_the_restarted_agent_adopts_it(lab: Lab) -> None:
    """Stopping the active site's agent (an upgrade, a restart) moves nothing and loses no
    holder: the record stays, a controller elsewhere renews it past its lease while the site is
    up, and the agent adopts the same grant when it runs again."""
    wait_until("status settles on the primary", lambda: settled(lab, "primary"), 60)
    before = active(lab)
    assert before is not None
    wall = time.time()
    lab.sup.send("agent-site-primary", signal.SIGTERM)
    wait_until("the agent stops", lambda: lab.sup.state("agent-site-primary") == "exited", 20)
    left = lease_event(lab, "site-primary", "leave", since=wall)
    assert left is not None and left.epoch == before["epoch"]
    stopped = time.monotonic()
    while time.monotonic() - stopped < 10.0:  # twice the lab's 5 s lease
        assert active(lab) == before  # kept past its lease: never free, never moved
        time.sleep(0.5)
    kept = [e for e in read_events(lab, wall) if e.runbook == "controller" and e.step == "custody"]
    assert kept and kept[0].target == "primary" and kept[0].epoch == before["epoch"]
    assert served_by(lab) == "primary"
    lab.sup.restart("agent-site-primary")
    wait_until(
        "the restarted agent adopts the record",
        lambda: lease_event(lab, "site-primary", "adopt", since=wall) is not None,
        30,
    )
    assert active(lab) == before


def test_no_generated_secret_appears_in_logs_events_status_or_reports(
    lab: Lab, tmp_path: Path
) -> None:
    """Runs after the module's other tests: failover, failback, drills, a dashboard
    switchover and an agent restart have all written their logs, events and reports."""
    secrets = {
        p.name: p.read_text().strip() for p in (lab.run.path / "secrets").iterdir() if p.is_file()
    }
    assert {"api-token", "keystone-admin", "mariadb-draas", "tsig"} <= set(secrets)
    drill = draas(lab, "drill", "--json", "--out", str(tmp_path))
    outputs = {
        "status": draas(lab, "status", "--json").stdout + draas(lab, "status").stdout,
        "events": draas(lab, "events", "--json", "--limit", "1000").stdout,
        "drill": drill.stdout + "".join(p.read_text() for p in tmp_path.iterdir()),
        "metrics": lab.exec(
            "client", ["curl", "-s", "-m", "5", f"{DR_API}/metrics"], capture_output=True, text=True
        ).stdout,
        "openapi": lab.exec(
            "client",
            ["curl", "-s", "-m", "5", f"{DR_API}/v1/openapi.json"],
            capture_output=True,
            text=True,
        ).stdout,
    }
    files = [
        *sorted((lab.run.path / "logs").glob("*.log")),
        lab.run.path / "state.json",
        *sorted(lab.run.path.glob("*.jsonl")),
    ]
    for f in files:
        outputs[str(f.relative_to(lab.run.path))] = f.read_text(errors="replace")
    assert len(outputs["events"]) > 1000 and any("agent-site-dr" in k for k in outputs)
    leaks = [
        f"{name} in {where}"
        for where, text in outputs.items()
        for name, value in secrets.items()
        if value and value in text
    ]
    assert leaks == []
