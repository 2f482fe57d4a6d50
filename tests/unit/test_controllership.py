"""The controller lease: who claims it, who hands it on, and custody of the active record of a
site whose agent is not running (the pure rule, then the agent's task on the in-memory store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_agent_tasks import config

from draas.agent.leadership import ControllerLease
from draas.clock import FakeClock
from draas.config import Config
from draas.coordination import Event
from draas.coordination.memory import MemoryStore
from draas.failover.controllership import controller_action
from draas.testkit import observation


@pytest.mark.parametrize(
    ("node", "site", "holder", "alive", "busy", "expected"),
    [
        ("witness", None, None, [], False, "claim"),  # free: the first to ask takes it
        ("witness", None, "witness", [], False, "renew"),
        ("witness", None, "fe-a", ["fe-a"], False, "none"),  # held elsewhere
        # An agent at the active site leaves a free lease to a live one elsewhere...
        ("site-a", "primary", None, ["witness"], False, "none"),
        ("site-a", "primary", None, [], False, "claim"),  # ...unless there is none
        # ...and hands it on when it holds it, but never in the middle of a run.
        ("site-a", "primary", "site-a", ["witness"], False, "release"),
        ("site-a", "primary", "site-a", ["witness"], True, "renew"),
        ("site-b", "dr", None, ["witness"], False, "claim"),  # the standby's agent may
    ],
)
def test_who_holds_the_controller_lease(
    node: str, site: str | None, holder: str | None, alive: list[str], busy: bool, expected: str
) -> None:
    action = controller_action(
        node=node,
        site=site,
        holder=holder,
        active_site="primary",
        alive_elsewhere=alive,
        busy=busy,
    )
    assert action.kind == expected, action.reason


class Agents:
    def __init__(self, cfg: Config) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        self.cfg = cfg
        self.keep = True

    def lease(self, name: str, clock: FakeClock | None = None) -> ControllerLease:
        node = next(n for n in self.cfg.nodes if n.name == name)
        return ControllerLease(
            cfg=self.cfg,
            node=node,
            store=self.store,
            clock=clock or self.clock,
            emit=self.store.append_event,
            busy=lambda: False,
            may_keep=lambda site: self.keep,
        )

    def alive(self, *names: str) -> None:
        for name in names:
            self.store.publish(observation(name, self.clock.now()), 60.0)

    def events(self, outcome: str) -> list[Event]:
        return [
            e for e in self.store.events() if e.runbook == "controller" and e.outcome == outcome
        ]


def test_another_agent_takes_the_lease_once_the_holder_goes_silent(tmp_path: Path) -> None:
    kit = Agents(config(tmp_path))
    kit.store.take_active("primary", "site-a", 0, 5.0)
    kit.alive("site-a", "site-b", "witness")
    site_a, site_b, witness = kit.lease("site-a"), kit.lease("site-b"), kit.lease("witness")
    assert site_a.tick() == "" and not site_a.holding()  # at the active site: left to others
    assert "site-b holds the controller lease" in site_b.tick() and site_b.holding()
    witness.tick()
    assert not witness.holding() and kit.store.controller() == "site-b"
    kit.clock.advance(4.0)  # site-b died: its lease (3 s) expired
    assert "witness holds the controller lease" in witness.tick()
    assert kit.store.controller() == "witness"
    assert [e.node for e in kit.events("taken")] == ["site-b", "witness"]
    assert "no longer holds" in site_b.tick() and not site_b.holding()  # back: it learns
    assert witness.release() == "witness released the controller lease"
    assert kit.store.controller() is None


def test_the_holder_at_the_active_site_hands_the_lease_on(tmp_path: Path) -> None:
    kit = Agents(config(tmp_path))
    site_b = kit.lease("site-b")
    site_b.tick()  # nobody is active yet: site-b holds it
    assert site_b.holding()
    kit.store.take_active("dr", "site-b", 0, 5.0)  # a failover made its site active
    assert site_b.tick() == ""  # no live candidate elsewhere: it keeps the lease
    kit.alive("witness")
    said = site_b.tick()
    assert "no longer holds the controller lease" in said and "witness" in said
    assert kit.store.controller() is None and [e.node for e in kit.events("released")] == ["site-b"]


def test_the_controller_keeps_the_record_of_a_site_whose_agent_is_not_running(
    tmp_path: Path,
) -> None:
    kit = Agents(config(tmp_path))
    rec = kit.store.take_active("dr", "site-b", 0, 5.0)
    kit.alive("witness", "site-a")  # site-b's agent publishes nothing: it is not running
    witness = kit.lease("witness")
    assert "witness renews its record (epoch 1)" in witness.tick()
    for _ in range(4):  # 8 s: beyond the record's 5 s lease, kept alive by the controller
        kit.clock.advance(2.0)
        witness.tick()
    assert kit.store.active() == rec
    (custody,) = kit.events("custody")
    assert custody.target == "dr" and custody.epoch == 1
    kit.keep = False  # the controller no longer sees dr up (or moves it): the record goes
    kit.clock.advance(2.0)
    witness.tick()
    kit.clock.advance(3.5)
    assert kit.store.active() is None


def test_an_agent_whose_clock_is_off_leaves_the_controller_lease_to_the_others() -> None:
    def act(holder: str | None, busy: bool = False) -> str:
        return controller_action(
            node="witness",
            site=None,
            holder=holder,
            active_site="primary",
            alive_elsewhere=["site-b"],
            busy=busy,
            clock_off_s=600.0,
        ).kind

    assert act(None) == "none"  # free: not claimed by the skewed agent
    assert act("witness") == "release"
    assert act("witness", busy=True) == "renew"  # never mid-run
    assert act("site-b") == "none"


def test_the_lease_task_measures_its_own_clock_against_the_others(tmp_path: Path) -> None:
    kit = Agents(config(tmp_path))
    witness = kit.lease("witness")
    for name in ("site-a", "site-b"):  # both 600 s behind the witness's clock
        kit.store.publish(observation(name, kit.clock.now() - 600), 60.0)
    said = witness.tick()
    assert not witness.holding() and kit.store.controller() is None, said
    behind = FakeClock(kit.clock.now() - 600)  # site-b's own clock, as site-a's
    site_b = kit.lease("site-b", behind)
    site_b.tick()
    assert site_b.holding()  # with the majority's time: it may hold the lease
