"""A witness whose clock is ten minutes fast (its agent started under ``faketime -f +10m``, as
an NTP failure would leave it), DNS scheme, every other agent real: nothing fails over on its
account, the status names the skew, it never holds the controller lease (whose DNS updates its
clock would spoil); and when the primary is then powered off, its vote counts on time (judged
on receipt, not by its clock): the failover takes its usual time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support import active, authoritative, controller, done_steps, draas, served_by, wait_until

from draas.lab.agents import start_agents
from draas.lab.disasters import PowerOff
from draas.lab.lab import Lab
from draas.lab.supervisor import ProcessSpec

pytestmark = pytest.mark.lab

WITNESS = "agent-witness"


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Iterator[Lab]:
    start_agents(dns_lab, preset="fast", timings={"failback_hold_s": 2.0})
    wait_until("the primary agent takes the record", lambda: active(dns_lab) is not None, 30)
    spec = ProcessSpec.from_dict(dns_lab.sup.record(WITNESS)["spec"])
    dns_lab.sup.crash(WITNESS)
    wait_until("the witness agent is gone", lambda: dns_lab.sup.state(WITNESS) == "exited", 10)
    spec.argv = ["faketime", "-f", "+10m", *spec.argv]
    spec.env = {**spec.env, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    dns_lab.sup.start(spec)
    yield dns_lab


def status(lab: Lab) -> dict[str, object]:
    got = draas(lab, "status", "--json")
    return dict(json.loads(got.stdout)) if got.stdout.strip().startswith("{") else {}


def test_a_fast_witness_is_named_and_moves_nothing(lab: Lab) -> None:
    def named() -> bool:
        return "CLOCK SKEW: witness +6" in str(status(lab).get("summary", ""))

    took = wait_until("the status names the witness's skew", named, 30)
    print(f"the status names the witness's clock skew {took:.1f} s after its restart")
    st = status(lab)
    offset = st["clock"]["offsets_s"]["witness"]  # type: ignore[index]
    assert 590 <= offset <= 610, st["clock"]
    wait_until(
        "a controller with the right time", lambda: controller(lab) not in (None, "witness"), 20
    )
    time.sleep(8)  # no false failover on its account
    assert active(lab) == {"site": "primary", "epoch": 1, "holder": "site-primary"}
    assert not done_steps(lab, "failover-")
    assert controller(lab) != "witness"


def test_its_vote_counts_on_time_when_the_primary_is_powered_off(lab: Lab) -> None:
    off = PowerOff(lab, host="primary")
    t0 = time.monotonic()
    off.inject()
    try:
        dns_s = wait_until(
            "DNS at BIND points at dr", lambda: authoritative(lab) == ["198.18.2.10"], 30
        )
        print(f"the witness 10 minutes fast: power-off to DNS switched in {dns_s:.1f} s")
        # Async mode: the primary's 5 s lease runs out first; then the same bound as always.
        assert dns_s < 3 * 0.5 + 2.0 + 15
        wait_until("the client is served by dr", lambda: served_by(lab) == "dr", 20)
        assert controller(lab) != "witness"
    finally:
        off.revert()
    lab.sup.wait_ready("mariadb-primary")
    wait_until("failback", lambda: "verify" in done_steps(lab, "failback-"), 90)
    assert time.monotonic() - t0 < 200
