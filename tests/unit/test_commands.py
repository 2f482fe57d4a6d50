"""The operator's commands refuse, changing nothing, when the state does not allow them, and
say why: a failover the quorum does not confirm (unless forced), a failover while the primary
still renews its lease (even forced), a switchover to the site already active."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from draas.clock import FakeClock
from draas.commands import plan_failover, plan_switchover
from draas.config import Config, load_config
from draas.coordination import DatabaseReport, Position, SyncRecord
from draas.coordination.memory import MemoryStore
from draas.deployment import Deployment
from draas.errors import DraasError
from draas.replication.memory import MemoryReplicator
from draas.testkit import observation

EXAMPLE = Path(__file__).parents[2] / "examples" / "draas.toml"


@pytest.fixture
def cfg() -> Config:
    return load_config(EXAMPLE)


def test_failover_without_quorum_is_refused_unless_forced(cfg: Config) -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    with pytest.raises(DraasError, match=r"quorum does not confirm.*--without-quorum"):
        plan_failover(Deployment(cfg, store), cfg, force=False, clock=clock)
    assert store.active() is None and store.events() == []


def test_failover_is_refused_even_forced_while_the_primary_renews_its_lease(cfg: Config) -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    store.take_active("primary", "site-a", 0, 30)
    with pytest.raises(DraasError, match="still renews the lease.*switchover"):
        plan_failover(Deployment(cfg, store), cfg, force=True, clock=clock)
    assert store.active().site == "primary" and store.events() == []  # type: ignore[union-attr]


def test_failover_without_a_store_is_refused_unless_forced(cfg: Config) -> None:
    with pytest.raises(DraasError, match="coordination store is unreachable.*--without-quorum"):
        plan_failover(None, cfg, force=False)


def test_switchover_to_the_active_site_or_an_unknown_one_is_refused(cfg: Config) -> None:
    store = MemoryStore(FakeClock())
    deployment = Deployment(cfg, store)
    with pytest.raises(DraasError, match="no site holds the active record"):
        plan_switchover(deployment, "dr")
    store.take_active("primary", "site-a", 0, 30)
    with pytest.raises(DraasError, match="already active"):
        plan_switchover(deployment, "primary")
    with pytest.raises(DraasError, match=r"--to 'moon': not a site"):
        plan_switchover(deployment, "moon")
    assert store.active().epoch == 1 and store.events() == []  # type: ignore[union-attr]


def test_moving_traffic_without_a_terminal_needs_yes() -> None:
    import subprocess
    import sys

    got = subprocess.run(
        [sys.executable, "-m", "draas.cli", "failover", "--config", str(EXAMPLE)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert got.returncode == 3 and "confirm with --yes" in got.stderr


def test_a_forced_failover_to_a_standby_that_is_not_named_states_the_known_loss(
    cfg: Config,
) -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    holder = store.take_active("primary", "site-a", 0, 5)
    store.set_sync(holder, None, SyncRecord(1, "dr", clock.now()))
    cut = clock.advance(1.0)
    store.set_sync(holder, store.sync(), SyncRecord(1, None, cut, "a commit waited 1.0 s"))
    store.publish_position(Position("primary", 1, "0-1-40", clock.advance(5.0)))
    report = DatabaseReport("replica", True, gtid_slave_pos="0-1-25", source="primary")
    dr_agent = next(n.name for n in cfg.nodes if n.site == "dr")
    store.publish(dataclasses.replace(observation(dr_agent, clock.now()), database=report), 60)
    clock.advance(6.0)  # the primary's lease ran out
    with pytest.raises(DraasError, match="quorum does not confirm"):
        plan_failover(Deployment(cfg, store), cfg, force=False, clock=clock)
    deployment = Deployment(cfg, store)
    deployment._reps = {s: MemoryReplicator(s) for s in ("primary", "dr")}  # no real servers
    plan = plan_failover(deployment, cfg, force=True, clock=clock)
    assert plan.loss_trx == 15
    assert plan.loss.startswith("KNOWN LOSS: dr is not the named synchronous standby")
    assert "at least 15 acknowledged transaction(s)" in plan.loss
    assert store.active() is None  # planned only: nothing changed yet
