"""The DR site's agent is killed (SIGKILL) in the middle of each failover step, one after the
other in one run: restarted, it finds the unfinished run in the event log and resumes it at
the interrupted step; the run completes with each step done exactly once, each started twice.
A failpoint (``DRAAS_FAILPOINT_PAUSE``) holds the agent inside the step so the kill lands
there."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support import FAILOVER, active, done_steps, events, served_by, wait_until

from draas.lab.agents import start_agents
from draas.lab.disasters import PowerOff
from draas.lab.eventlog import detected, read_events
from draas.lab.lab import Lab
from draas.lab.supervisor import ProcessSpec

pytestmark = pytest.mark.lab

AGENT = "agent-site-dr"


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Iterator[Lab]:
    # A short failback hold: each case ends with a failback, and flapping is not tested here.
    start_agents(dns_lab, preset="fast", timings={"failback_hold_s": 2.0})
    wait_until("the primary agent takes the record", lambda: active(dns_lab) is not None, 30)
    yield dns_lab


def restart_agent(lab: Lab, env: dict[str, str]) -> None:
    spec = ProcessSpec.from_dict(lab.sup.record(AGENT)["spec"])
    if lab.sup.state(AGENT) != "exited":
        lab.sup.crash(AGENT)  # SIGKILL: no clean-up, no release
        wait_until("the agent is gone", lambda: lab.sup.state(AGENT) == "exited", 10)
    spec.env = env
    lab.sup.start(spec)


def test_an_agent_killed_inside_each_step_resumes_the_run_and_completes_it(lab: Lab) -> None:
    """One failover; the agent is killed inside each of its steps in turn. Each restart
    resumes the run at the interrupted step and is held inside the next one by the failpoint,
    where the next kill lands; the last restart runs without a failpoint."""
    wait_until("the primary active", lambda: (active(lab) or {}).get("site") == "primary", 90)
    wait_until("the client is served by the primary", lambda: served_by(lab) == "primary", 30)
    epoch = int(active(lab)["epoch"])  # type: ignore[index]
    rid = f"failover-dr-from-e{epoch}"

    def started(step: str) -> list[dict[str, object]]:
        return [
            e
            for e in events(lab)
            if e.get("run") == rid and e.get("step") == step and e.get("outcome") == "started"
        ]

    def hold_in(step: str | None) -> dict[str, str]:
        return {"DRAAS_FAILPOINT_PAUSE": f"{step}:60"} if step else {}

    restarted = time.time()
    restart_agent(lab, hold_in(FAILOVER[0]))
    wait_until(
        "the restarted DR agent sees the primary up",
        lambda: detected(read_events(lab, restarted), "primary", "up", nodes=["site-dr"]),
        20,
    )
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        for step, following in zip(FAILOVER, [*FAILOVER[1:], None], strict=True):
            wait_until(f"{step} started", lambda s=step: started(s), 40)  # type: ignore[misc]
            assert step not in done_steps(lab, rid)  # held inside it
            restart_agent(lab, hold_in(following))
        wait_until("the failover completes", lambda: "detach" in done_steps(lab, rid), 60)
        assert done_steps(lab, rid) == FAILOVER  # every step done once, in order
        # Each step was started by the killed agent and again by the restarted one, no more.
        assert {s: len(started(s)) for s in FAILOVER} == dict.fromkeys(FAILOVER, 2)
        assert active(lab) == {"site": "dr", "epoch": epoch + 1, "holder": "site-dr"}
        wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
    finally:
        off.revert()
    lab.sup.wait_ready("mariadb-primary")
    back = f"failback-primary-from-e{epoch + 1}"
    wait_until("failback", lambda: "verify" in done_steps(lab, back), 90)
