"""The operator's commands refuse, changing nothing, when the state does not allow them, and
say why: a failover the quorum does not confirm (unless forced), a failover while the primary
still renews its lease (even forced), a switchover to the site already active."""

from __future__ import annotations

from pathlib import Path

import pytest

from draas.clock import FakeClock
from draas.commands import plan_failover, plan_switchover
from draas.config import Config, load_config
from draas.coordination.memory import MemoryStore
from draas.deployment import Deployment
from draas.errors import DraasError

EXAMPLE = Path(__file__).parents[2] / "examples" / "draas.toml"


@pytest.fixture
def cfg() -> Config:
    return load_config(EXAMPLE)


def test_failover_without_quorum_is_refused_unless_forced(cfg: Config) -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    with pytest.raises(DraasError, match=r"quorum does not confirm.*--force"):
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
    with pytest.raises(DraasError, match="coordination store is unreachable.*--force"):
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
    assert got.returncode == 1 and "confirm with --yes" in got.stderr
