"""What an operator installs from the repository agrees with the product: the alert rules and
the Grafana dashboard only use metrics the agent exports, the systemd units' command lines
parse, the example configurations validate, and the schemes' diagrams are generated from
their sources as committed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from draas.agent.metrics import Metrics
from draas.agent.status import status_doc
from draas.cli import build_parser
from draas.config import load_config
from draas.coordination import ActiveRecord, Observation
from draas.testkit import event

ROOT = Path(__file__).parents[2]
METRIC = re.compile(r"\bdraas_[a-z_]+")


def exported() -> set[str]:
    cfg = load_config(ROOT / "examples" / "draas.toml")
    obs: dict[str, dict[str, Any]] = {
        "site-b": {
            "targets": {"primary": {"state": "up", "since": 0}},
            "replication": {"role": "replica", "lag_s": 0.1, "healthy": True},
            "keys": {"source": "primary", "match": True, "compared_at": 0.5, "in_sync_since": 0.2},
        },
        "fe-a": {"targets": {"fe-b": {"state": "up", "since": 0}}, "routes_to": "primary"},
    }
    st = status_doc(
        cfg,
        node="witness",
        now=1.0,
        active=ActiveRecord("primary", 1, "site-a"),
        last_epoch=1,
        observations={k: Observation.from_dict(v, observer=k) for k, v in obs.items()},
        events=[
            event("failover-dr-from-e0", "take-lease", "done", 0.5),
            event("alert-unprotected", "unprotected", "raised", 0.6, runbook="alert"),
        ],
        dns_points_at=None,
        controller="witness",
        clock_offsets={"site-b": 0.2, "fe-a": -0.1},
    )
    m = Metrics(lambda: st, "witness", "witness")
    m.observe_probe("primary", True, 0.01)
    text = m.render().decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("draas_")
    }


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    have = exported()
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "draas-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    board = json.loads((ROOT / "deploy" / "grafana" / "draas-dashboard.json").read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used and used <= have, used - have
    assert len({r["alert"] for g in rules["groups"] for r in g["rules"]}) >= 8


def test_systemd_units_run_commands_that_parse() -> None:
    for unit in (ROOT / "deploy" / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                argv = shlex.split(line.split("=", 1)[1])
                assert argv[0].endswith("/draas"), line
                args = [a.replace("%i", "site-a") for a in argv[1:]]
                build_parser().parse_args(args)  # exits 2 on an unknown option


@pytest.mark.parametrize("path", ["examples/draas.toml", "examples/openstack/draas.toml"])
def test_example_configurations_validate(path: str) -> None:
    load_config(ROOT / path)


def titles(svg: str) -> list[str]:
    return sorted(re.findall(r"<title>(.*?)</title>", svg))


def test_scheme_diagrams_are_generated_from_their_sources(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing on CI: scripts/setup installs graphviz")
        pytest.skip("Graphviz's dot is not installed here (scripts/setup installs it)")
    subprocess.run(
        [sys.executable, str(ROOT / "docs" / "diagrams" / "make.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = sorted((ROOT / "docs" / "diagrams").glob("*.svg"))
    assert len(committed) == 9
    for svg in committed:
        fresh = tmp_path / svg.name
        source = svg.with_suffix(".dot")
        stale = f"{source.name} is stale: run docs/diagrams/make.py"
        assert (tmp_path / source.name).read_text() == source.read_text(), stale
        assert titles(fresh.read_text()) == titles(svg.read_text()), svg.name
    doc = (ROOT / "docs" / "schemes.md").read_text()
    for svg in committed:
        assert f"diagrams/{svg.name}" in doc, svg.name


@pytest.mark.lab
def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    """Prometheus's own checker and rule tests (draas-alerts.test.yml: one observer seen
    through two scraped agents is one vantage point; the odd clock out is named; every
    frontend down). promtool comes with Debian's prometheus package (scripts/setup)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run scripts/setup (Debian package prometheus)"
    here = ROOT / "deploy" / "prometheus"
    for args in (
        ["check", "rules", "draas-alerts.yml"],
        ["test", "rules", "draas-alerts.test.yml"],
    ):
        got = subprocess.run(
            [promtool, *args], cwd=here, capture_output=True, text=True, timeout=60, check=False
        )
        assert got.returncode == 0, got.stdout + got.stderr
    tested = yaml.safe_load((here / "draas-alerts.test.yml").read_text())
    names = {a["alertname"] for t in tested["tests"] for a in t["alert_rule_test"]}
    assert {
        "DraasSiteDown",
        "DraasFrontendDown",
        "DraasAllFrontendsDown",
        "DraasClockSkew",
    } <= names
