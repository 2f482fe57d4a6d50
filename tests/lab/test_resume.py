"""The controller is killed (SIGKILL) in the middle of each failover step, one after the other
in one run: another agent takes the controller lease, finds the unfinished run in the event log
and resumes it at the interrupted step; the run completes with each step done exactly once,
each started twice (by the killed controller, then by the next). A failpoint file
(``DRAAS_FAILPOINT_FILE``, read by every agent at each step) holds whoever runs that step
there, so the kill lands inside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FAILOVER, active, done_steps, events, served_by, wait_until

from draas.lab.agents import start_agents
from draas.lab.disasters import PowerOff
from draas.lab.lab import Lab
from draas.lab.supervisor import ProcessSpec

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def failpoint(dns_lab: Lab) -> Path:
    return dns_lab.run.path / "failpoint"


@pytest.fixture(scope="module")
def lab(dns_lab: Lab, failpoint: Path) -> Iterator[Lab]:
    # A short failback hold: each case ends with a failback, and flapping is not tested here.
    start_agents(
        dns_lab,
        preset="fast",
        timings={"failback_hold_s": 2.0},
        env={"DRAAS_FAILPOINT_FILE": str(failpoint)},
    )
    wait_until("the primary agent takes the record", lambda: active(dns_lab) is not None, 30)
    yield dns_lab


def kill_and_restart(lab: Lab, node: str) -> None:
    """SIGKILL (no clean-up, no release of its leases), then the same agent started again."""
    name = f"agent-{node}"
    spec = ProcessSpec.from_dict(lab.sup.record(name)["spec"])
    if lab.sup.state(name) != "exited":
        lab.sup.crash(name)
        wait_until("the agent is gone", lambda: lab.sup.state(name) == "exited", 10)
    lab.sup.start(spec)


def test_the_controller_killed_inside_each_step_is_replaced_and_the_run_completes(
    lab: Lab, failpoint: Path
) -> None:
    """One failover; its controller is killed inside each of its steps in turn. Each time,
    another agent takes the controller lease, resumes the run at the interrupted step and is
    held inside the next one, where the next kill lands; the last step is not held."""
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

    failpoint.write_text(f"{FAILOVER[0]}:60")
    off = PowerOff(lab, host="primary")
    off.inject()
    holders = []
    try:
        for step, following in zip(FAILOVER, [*FAILOVER[1:], None], strict=True):
            wait_until(f"{step} started", lambda s=step: started(s), 40)  # type: ignore[misc]
            assert step not in done_steps(lab, rid)  # held inside it
            holder = str(started(step)[-1]["node"])
            holders.append(holder)
            failpoint.write_text(f"{following}:60" if following else "")
            kill_and_restart(lab, holder)
            if following:
                took = wait_until(
                    f"another agent resumes {step}",
                    lambda s=following: started(s),  # type: ignore[misc]
                    40,
                )
                print(f"{holder} killed inside {step}: {following} started {took:.1f} s later")
        wait_until("the failover completes", lambda: "detach" in done_steps(lab, rid), 60)
        assert done_steps(lab, rid) == FAILOVER  # every step done once, in order
        # Each step was started by the killed controller and again by the next one, no more.
        assert {s: len(started(s)) for s in FAILOVER} == dict.fromkeys(FAILOVER, 2)
        assert active(lab) == {"site": "dr", "epoch": epoch + 1, "holder": "site-dr"}
        wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
        print(f"controllers killed, one per step: {holders}")
    finally:
        failpoint.write_text("")
        off.revert()
    lab.sup.wait_ready("mariadb-primary")
    back = f"failback-primary-from-e{epoch + 1}"
    wait_until("failback", lambda: "verify" in done_steps(lab, back), 90)
