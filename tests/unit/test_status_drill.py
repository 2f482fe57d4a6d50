"""The status document and its table, the drill's checks and report, built from recorded
observations (no I/O): what an operator reads must say what the deployment is doing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from draas.agent.status import status_doc
from draas.config import Config, load_config
from draas.coordination import ActiveRecord, Event, Observation, SyncRecord
from draas.failover.drill import (
    DrillCheck,
    eligible_check,
    frontends_check,
    markdown,
    quorum_check,
    replica_check,
    verdict,
)
from draas.failover.policy import Decision
from draas.opscli import render_status
from draas.replication import ReplicationStatus

EXAMPLE = Path(__file__).parents[2] / "examples" / "draas.toml"


@pytest.fixture
def cfg() -> Config:
    return load_config(EXAMPLE)


def seen(**targets: str) -> dict[str, Any]:
    return {"targets": {t: {"state": s, "since": 0.0} for t, s in targets.items()}}


def observed(docs: dict[str, dict[str, Any]]) -> dict[str, Observation]:
    """Observations as the store returns them, from the JSON the agents publish."""
    return {name: Observation.from_dict(doc, observer=name) for name, doc in docs.items()}


def test_status_after_a_failover_names_the_new_active_site_and_the_traffic(cfg: Config) -> None:
    obs = {
        "site-b": {
            **seen(primary="down", dr="up", **{"fe-a": "up", "fe-b": "up"}),
            "replication": {"role": "primary", "read_only": False},
        },
        "witness": seen(primary="down", dr="up"),
        "fe-a": {**seen(primary="down", dr="up"), "routes_to": "dr"},
    }
    events = [
        {
            "id": "1",
            "ts": 90.0,
            "run": "failover-dr-from-e1",
            "step": "take-lease",
            "outcome": "done",
            "node": "site-b",
        },
        {
            "id": "2",
            "ts": 95.0,
            "run": "failover-dr-from-e1",
            "step": "detach",
            "outcome": "done",
            "node": "site-b",
        },
        {
            "id": "3",
            "ts": 96.0,
            "runbook": "alert",
            "run": "alert-unprotected",
            "step": "unprotected",
            "outcome": "raised",
            "node": "witness",
            "detail": "dr runs without a standby that may be promoted automatically",
        },
    ]
    st = status_doc(
        cfg,
        node="witness",
        now=100.0,
        active=ActiveRecord("dr", 2, "site-b"),
        last_epoch=2,
        observations=observed(obs),
        events=[Event.from_dict(e) for e in events],
        dns_points_at="192.0.2.20",
    )
    assert st["active"] == {"site": "dr", "epoch": 2, "holder": "site-b"}
    assert [s["active"] for s in st["sites"]] == [False, True]
    assert st["sites"][0]["seen"] == {"site-b": "down", "witness": "down", "fe-a": "down"}
    assert st["frontends"][0]["routes_to"] == "dr" and not st["frontends"][1]["agent_alive"]
    assert st["dns"] == {
        "name": "keystone.example.org.",
        "points_at": "192.0.2.20",
        "target": "fe-a",
    }
    assert st["failovers_total"] == 1 and st["last_failover_at"] == 90.0
    assert st["last_step"]["step"] == "detach"  # an alert is not a runbook step
    # After the failover the old primary is not a standby that may be promoted: said first.
    assert st["summary"].startswith("UNPROTECTED: no standby may be promoted automatically; ")
    assert "; dr active (epoch 2, held by site-b)" in st["summary"]
    table = render_status(st)
    assert "  ALERT unprotected: dr runs without a standby" in table
    assert "dr         active         yes     primary" in table  # not home, active
    assert "primary    standby  yes" in table  # home, its standby now
    assert [(s["state"], s["home"]) for s in st["sites"]] == [
        ("standby", True),
        ("active", False),
    ]
    assert "fe-a       dr         alive" in table and "fe-b       ?          DOWN" in table
    assert "DNS keystone.example.org. -> 192.0.2.20 (fe-a)" in table
    assert "failovers 1, last 10 s ago" in table
    assert "site-a     site      NO" in table  # the dead primary's agent publishes nothing


def test_status_says_when_the_replica_is_broken_or_the_store_is_gone(cfg: Config) -> None:
    obs = {
        "site-b": {
            **seen(primary="up"),
            "replication": {
                "role": "replica",
                "healthy": False,
                "last_error": "Got fatal error 1236",
            },
        }
    }
    st = status_doc(
        cfg,
        node="witness",
        now=1.0,
        active=ActiveRecord("primary", 1, "site-a"),
        last_epoch=1,
        observations=observed(obs),
        events=[],
        dns_points_at=None,
    )
    assert "dr replication BROKEN: Got fatal error 1236" in st["summary"]
    assert "BROKEN" in render_status(st)
    obs["site-b"]["replication"]["unfit"] = "the IO thread stopped: Got fatal error 1236"
    st = status_doc(
        cfg,
        node="witness",
        now=1.0,
        active=ActiveRecord("primary", 1, "site-a"),
        last_epoch=1,
        observations=observed(obs),
        events=[],
        dns_points_at=None,
    )
    assert (
        "dr replica UNFIT to take over (no automatic failover): the IO thread stopped"
        in st["summary"]
    )
    gone = status_doc(
        cfg,
        node="witness",
        now=1.0,
        active=None,
        last_epoch=0,
        observations={},
        events=[],
        dns_points_at=None,
        store_ok=False,
    )
    assert "coordination store unreachable" in gone["summary"]
    assert "WARNING: the coordination store is unreachable" in render_status(gone)


def replica(**kw: Any) -> ReplicationStatus:
    base: dict[str, Any] = {
        "site": "dr",
        "role": "replica",
        "read_only": True,
        "gtid_binlog_pos": "",
        "gtid_slave_pos": "0-1-10",
        "source": "primary",
        "io_running": "Yes",
        "sql_running": "Yes",
        "lag_s": 0.0,
        "lag_trx": 0,
    }
    return ReplicationStatus(**{**base, **kw})


def test_drill_replica_check_fails_naming_why() -> None:
    assert replica_check("dr", replica(), "", 5.0).ok
    assert "lags 9.0 s" in replica_check("dr", replica(lag_s=9.0), "", 5.0).detail
    stopped = replica_check("dr", replica(io_running="No", sql_running="No"), "", 5.0)
    assert stopped.ok is False and "IO No, SQL No" in stopped.detail
    assert "is primary, not a replica" in replica_check("dr", replica(role="primary"), "", 5).detail
    assert "cannot read dr's database: refused" in replica_check("dr", None, "refused", 5).detail


def test_drill_quorum_and_frontends_checks(cfg: Config) -> None:
    all_nodes = {n.name: seen(dr="up") for n in cfg.nodes}
    assert quorum_check(cfg, observed(all_nodes)).ok
    missing = dict(all_nodes)
    del missing["witness"]
    q = quorum_check(cfg, observed(missing))
    assert q.ok is False and "witness" in q.detail and "4 of 5" in q.detail
    assert quorum_check(cfg, None).ok is False
    assert frontends_check(cfg, observed(all_nodes), "dr").ok
    blind = {**all_nodes, "fe-b": seen(dr="down")}
    f = frontends_check(cfg, observed(blind), "dr")
    assert f.ok is False and "fe-b (sees dr down)" in f.detail


def test_the_drill_fails_when_the_dr_site_may_not_be_promoted_automatically() -> None:
    named = {"site": "dr", "eligible": True, "why_not": None}
    assert eligible_check(named).ok is True
    removed = {"site": "dr", "eligible": False, "why_not": "dr is not the named standby: cut"}
    bad = eligible_check(removed)
    assert bad.ok is False and bad.detail == "dr is not the named standby: cut"
    assert eligible_check(None).ok is False  # no store: nothing can be promoted automatically


def test_a_skipped_check_does_not_fail_the_drill_and_the_report_says_it() -> None:
    checks = [DrillCheck("quorum", True, "all"), DrillCheck("dns-credentials", None, "no dns")]
    assert verdict(checks) is True
    assert verdict([*checks, DrillCheck("dr-replica-in-sync", False, "IO No")]) is False
    report = {
        "passed": False,
        "started_at": 0.0,
        "took_s": 1.2,
        "service": "k.example.",
        "dr_site": "dr",
        "checks": [{"name": "dr-replica-in-sync", "verdict": "FAIL", "detail": "IO No | SQL No"}],
    }
    md = markdown(report)
    assert md.startswith("# DR drill for k.example.: FAILED")
    assert "| dr-replica-in-sync | FAIL | IO No \\| SQL No |" in md


@pytest.mark.parametrize(
    ("kw", "unfit"),
    [
        ({}, None),
        ({"io_running": "Connecting", "last_error": "error reconnecting to master"}, None),
        ({"io_running": "No", "sql_running": "No"}, None),  # restarted: stopped, no error
        ({"sql_running": "No", "last_error": "Duplicate entry"}, "the SQL thread stopped"),
        ({"io_running": "No", "last_error": "Could not find GTID"}, "the IO thread stopped"),
        ({"io_running": "Stalled", "last_error": "disk full at site dr"}, "disk full at site dr"),
    ],
)
def test_a_replica_is_unfit_only_when_it_cannot_get_what_its_source_acknowledged(
    kw: dict[str, Any], unfit: str | None
) -> None:
    got = replica(**kw).unfit
    assert got == unfit if unfit is None else (got or "").startswith(unfit)


def test_status_shows_why_nothing_fails_over_as_an_alert(cfg: Config) -> None:
    from draas.failover.policy import Decision

    why = Decision("wait", "only 1 of 3 vantage points alive, 2 needed: no automatic failover")
    st = status_doc(
        cfg,
        node="site-b",
        now=1.0,
        active=None,
        last_epoch=1,
        observations={},
        events=[],
        dns_points_at=None,
        decision=why,
    )
    assert st["automatic"] == {"action": "wait", "reason": why.reason}
    assert "ALERT: automatic failover: wait: only 1 of 3 vantage points alive" in render_status(st)
    calm = status_doc(
        cfg,
        node="site-b",
        now=1.0,
        active=None,
        last_epoch=1,
        observations={},
        events=[],
        dns_points_at=None,
        decision=Decision("none", "primary confirmed down by 0 of 2"),
        sync=SyncRecord(1, "dr", 0.0),  # named: eligible
    )
    assert "ALERT" not in render_status(calm)
    assert "dr: eligible for failover" in render_status(calm)
    removed = SyncRecord(1, None, 0.0, "a commit waited")
    degraded = status_doc(
        cfg,
        node="site-b",
        now=1.0,
        active=None,
        last_epoch=1,
        observations={},
        events=[],
        dns_points_at=None,
        decision=Decision("none", "primary confirmed down by 0 of 2"),
        sync=removed,
    )
    shown = render_status(degraded)
    assert "ALERT: dr: NOT eligible for failover since" in shown
    assert "not the named synchronous standby: a commit waited" in shown
    assert degraded["standby"]["eligible"] is False


def test_the_drill_and_the_eligibility_follow_the_standby_whichever_site_is_active(
    cfg: Config,
) -> None:
    from draas.coordination.memory import MemoryStore
    from draas.failover.views import standby_site

    store = MemoryStore()
    assert standby_site(cfg, None) == "dr"  # no store: the configured DR site
    assert standby_site(cfg, store) == "dr"  # nobody active yet: home is protected
    rec = store.take_active("primary", "site-a", 0, 30)
    assert standby_site(cfg, store) == "dr"
    moved = store.hand_over(rec, "dr", "site-b", 30)  # a planned switchover
    assert standby_site(cfg, store) == "primary"
    store.release_active(moved)  # its lease lapsed: the last holder is still the one protected
    assert standby_site(cfg, store) == "primary"
    store.reachable = False
    assert standby_site(cfg, store) == "dr"


def test_the_headline_says_when_every_frontend_is_down_and_where_the_name_points(
    cfg: Config,
) -> None:
    both_down = seen(primary="up", dr="up", **{"fe-a": "down", "fe-b": "down"})
    obs = {n: both_down for n in ("site-a", "site-b", "witness")}
    sync = SyncRecord(1, "dr", 50.0, "named")

    def headline(points_at: str | None) -> str:
        st = status_doc(
            cfg,
            node="witness",
            now=100.0,
            active=ActiveRecord("primary", 1, "site-a"),
            last_epoch=1,
            observations=observed(obs),
            events=[],
            dns_points_at=points_at,
            sync=sync,
        )
        return str(st["summary"])

    fe_a = next(n.address for n in cfg.nodes if n.name == "fe-a")
    assert headline(fe_a).startswith("NO WORKING PATH: every frontend is DOWN; primary active")
    primary = cfg.sites["primary"].address
    assert headline(primary).startswith(
        "every frontend is DOWN; the DNS name points straight at primary; primary active"
    )
    obs["witness"] = seen(primary="up", dr="up", **{"fe-a": "up", "fe-b": "up"})
    obs["site-b"] = obs["witness"]  # one observer alone is not a quorum's word
    assert headline(fe_a).startswith("primary active")


def test_the_headline_says_when_an_automatic_failover_is_blocked(cfg: Config) -> None:
    obs = {n: seen(primary="down", dr="up") for n in ("site-b", "witness", "fe-a")}

    def headline(decision: Decision) -> str:
        st = status_doc(
            cfg,
            node="witness",
            now=100.0,
            active=ActiveRecord("primary", 1, "site-a"),
            last_epoch=1,
            observations=observed(obs),
            events=[],
            dns_points_at=None,
            sync=SyncRecord(1, "dr", 50.0, "named"),
            decision=decision,
        )
        return str(st["summary"])

    votes = {"site_down": ["site-b", "witness"]}
    blocked = Decision("wait", "dr's replica is unfit", votes=votes, cause="unfit-replica")
    assert headline(blocked).startswith("AUTOMATIC FAILOVER BLOCKED: dr's replica is unfit; ")
    waiting = Decision("await-release", "waiting for the lease", votes=votes, cause="held")
    assert "BLOCKED" not in headline(waiting)  # on its way, not blocked
