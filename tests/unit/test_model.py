"""draas model's core (issue 20): probe failure from the path, the detector as a Markov chain
(checked against the product's own RiseFall fed random rounds), false failovers from the
quorum rule."""

from __future__ import annotations

import itertools
import json
import math
import random
import tomllib
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import pytest

from draas.config import Config, parse_config
from draas.health.detector import RiseFall as ProductRiseFall
from draas.model.chains import RiseFall
from draas.model.falsealarms import (
    Alarm,
    alarms,
    at_least,
    either,
    false_failovers_per_year,
    voters,
)
from draas.model.kinds import DISASTERS
from draas.model.network import Path, connect_fails, http_fails, jitter_within
from draas.model.rto import Client, phases

EXAMPLE = FsPath(__file__).parents[2] / "examples" / "draas.toml"


def config(**timings: Any) -> Config:
    data = tomllib.loads(EXAMPLE.read_text())
    data["timings"] = {"preset": "fast", **timings}
    return parse_config(data)


@pytest.mark.parametrize(("p", "fall", "rise"), [(0.3, 3, 2), (0.1, 2, 1), (0.5, 1, 3)])
def test_the_chain_matches_the_products_detector_fed_random_rounds(
    p: float, fall: int, rise: int
) -> None:
    rng = random.Random(7)
    det = ProductRiseFall(rise, fall)
    rounds, downs, down_rounds = 200_000, 0, 0
    for i in range(rounds):
        if det.feed(rng.random() >= p, float(i)) and det.state == "down":
            downs += 1
        down_rounds += det.state == "down"
    chain = RiseFall(p, fall, rise)
    predicted = chain.downs_per_round()
    assert downs / rounds == pytest.approx(predicted, rel=0.05)
    share = chain.stationary()[fall:].sum()
    assert down_rounds / rounds == pytest.approx(share, rel=0.05)


def test_a_down_lasts_as_the_chain_says() -> None:
    chain = RiseFall(0.4, 2, 3)
    rng = random.Random(3)
    lasted = []
    for _ in range(20_000):  # episodes started in the first down round
        streak, n = 0, 0
        while streak < 3:
            streak = streak + 1 if rng.random() >= 0.4 else 0
            n += 1
        lasted.append(n)
    for rounds in (1, 3, 6):
        seen = sum(1 for n in lasted if n > rounds) / len(lasted)
        assert seen == pytest.approx(chain.lasts(rounds), abs=0.01), rounds


def test_no_loss_and_no_jitter_never_fail_a_probe_nor_fail_over() -> None:
    clean = Path(rtt_s=0.02)
    assert connect_fails(clean, 0.1) == 0 and http_fails(clean, 0.4) == 0
    for preset in ("fast", "normal"):
        assert false_failovers_per_year(config(preset=preset), clean) == 0


def test_a_lost_syn_fails_a_connect_shorter_than_the_retry() -> None:
    assert connect_fails(Path(loss=0.02), 0.1) == pytest.approx(1 - 0.98**2)
    # With 1.5 s the retry after 1 s still makes it: both tries must fail.
    assert connect_fails(Path(loss=0.02), 1.5) == pytest.approx((1 - 0.98**2) ** 2)


def test_jitter_is_the_sum_of_uniform_moves() -> None:
    rng = random.Random(5)
    path = Path(rtt_s=0.02, jitter_s=0.03)
    tries = 100_000
    late = sum(
        1 for _ in range(tries) if 0.02 + rng.uniform(-0.03, 0.03) + rng.uniform(-0.03, 0.03) > 0.05
    )
    assert 1 - jitter_within(path, 2, 0.03) == pytest.approx(late / tries, abs=0.005)
    assert connect_fails(path, 0.05) == pytest.approx(late / tries, abs=0.005)


def test_false_failovers_grow_with_loss_and_shrink_with_the_window() -> None:
    cfg = config()
    rates = [false_failovers_per_year(cfg, Path(0.02, loss, 0.02)) for loss in (0.02, 0.05, 0.1)]
    assert 0 < rates[0] < rates[1] < rates[2]
    wider = config(reach_window_s=1.0, confirm_window_s=4.0)
    assert false_failovers_per_year(wider, Path(0.02, 0.1, 0.02)) < rates[2]


def test_the_quorum_is_the_configs_voters() -> None:
    cfg = config()  # hybrid: dr's agent, two frontends and the witness watch the primary
    assert voters(cfg, "primary") == (4, 3)
    got = {a.detector: a for a in alarms(cfg, Path(0.02, 0.1, 0.02))}
    assert set(got) == {"reach", "service"}
    assert got["reach"].p_round == pytest.approx(connect_fails(Path(0.02, 0.1, 0.02), 0.1))


def test_a_path_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="loss"):
        Path(loss=1.5)


def scheme(name: str, **timings: Any) -> Config:
    data = tomllib.loads(EXAMPLE.read_text())
    data["scheme"] = name
    data["timings"] = {"preset": "fast", **timings}
    return parse_config(data)


def test_a_ttl_clamp_of_a_minute_gives_a_dns_rto_of_about_a_minute() -> None:
    """Clients that keep an answer 60 s whatever the TTL: most come back within the minute,
    the unluckiest after nearly all of it (plus detection and the switch)."""
    got = phases(scheme("dns"), "power-off", Client(clamp_s=60.0))
    assert got is not None
    s = got.summary()
    assert 29 < s["rto_median_s"] < 32 and 57 < s["rto_p95_s"] < 61
    honoured = phases(scheme("dns"), "power-off")
    assert honoured is not None and honoured.summary()["rto_p95_s"] < 10  # TTL 5 s


def test_the_prediction_follows_the_configuration() -> None:
    fast = phases(scheme("hybrid"), "power-off")
    normal = phases(scheme("hybrid", preset="normal"), "power-off")
    wider = phases(scheme("hybrid", reach_window_s=1.0), "power-off")
    assert fast is not None and normal is not None and wider is not None
    f, n, w = fast.summary(), normal.summary(), wider.summary()
    assert f["rto_median_s"] < n["rto_median_s"]
    assert w["decide_s"] == pytest.approx(f["decide_s"] + 1.0, abs=0.05)
    # Detection of a hard failure: fall rounds, the last one waiting its timeout.
    assert f["detect_s"] == pytest.approx(0.1 * 2 + 0.1 + 0.1 / 3, abs=0.02)  # min of 4 phases


def test_each_phase_follows_the_one_before() -> None:
    for name in ("dns", "frontend", "hybrid"):
        for disaster in DISASTERS:
            got = phases(scheme(name), disaster)
            if got is None:
                assert disaster == "frontend-crash" and name != "hybrid"
                continue
            assert (got.detect <= got.decide).all() and (got.decide < got.switch).all()
            assert (got.switch < got.served).all()


def test_an_unknown_disaster_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed power-off"):
        phases(scheme("dns"), "meteor")


def test_the_command_answers_with_the_table_json_and_one_line_per_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from draas.cli import main

    assert main(["model", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("draas model: hybrid scheme, preset normal")
    assert "power-off" in out and "false failovers per year: 0 " in out
    args = ["model", "--config", str(EXAMPLE), "--loss-pct", "12", "--jitter-ms", "30"]
    assert main([*args, "--rate", "power-off=3", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["false_failovers_per_year"] > 0 and doc["disasters"][0]["rate_per_year"] == 3
    for bad, said in (
        (["--client-ttl-behaviour", "forever"], "allowed 'honour' or 'clamp:SECONDS'"),
        (["--rate", "meteor=1"], "KIND one of power-off"),
        (["--rate", "power-off=-1"], "0 <= PER_YEAR"),
    ):
        assert main([*args, *bad]) == 2
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--loss-pct", "150"])
    assert "allowed from 0.0 to 99.0" in capsys.readouterr().err


def test_config_check_prints_the_predicted_rto_of_each_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from draas.cli import main

    assert main(["config", "check", "--skip-files", str(EXAMPLE)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("predicted RTO ")]
    assert [line.split()[2].rstrip(":") for line in lines] == list(DISASTERS)
    assert "predicted RTO power-off: median " in err


def test_at_least_k_of_unequal_events_matches_counting_every_outcome() -> None:
    shares = [0.1, 0.5, 0.25, 0.9]
    for k in range(len(shares) + 2):
        exact = 0.0
        for bits in itertools.product((0, 1), repeat=len(shares)):
            p = math.prod(s if b else 1 - s for s, b in zip(shares, bits, strict=True))
            exact += p if sum(bits) >= k else 0.0
        assert at_least(shares, k) == pytest.approx(exact)


def test_an_observer_on_a_clean_path_keeps_a_two_of_two_quorum_from_false_failovers() -> None:
    """The DNS scheme's primary has two voters (dr and the witness), both needed: a lossy
    path to one of them alone never makes a false failover; lossy to both, it does, and more
    the lossier the second."""
    data = tomllib.loads(EXAMPLE.read_text())
    data["scheme"] = "dns"
    data["timings"] = {"preset": "fast"}
    data["nodes"] = [n for n in data["nodes"] if n["role"] != "frontend"]
    data.pop("frontend", None)
    cfg = parse_config(data)
    assert voters(cfg, "primary") == (2, 2)
    lossy = Path(0.02, 0.15, 0.02)
    assert false_failovers_per_year(cfg, {"site-b": lossy}) == 0.0
    both = false_failovers_per_year(cfg, {"site-b": lossy, "witness": lossy})
    worse = false_failovers_per_year(cfg, {"site-b": Path(0.02, 0.3, 0.02), "witness": lossy})
    assert 0 < both < worse
    assert both == pytest.approx(false_failovers_per_year(cfg, lossy))


def test_a_resolver_keeps_an_answer_its_ttl_and_the_second_it_counts_to_zero() -> None:
    """Clients through a caching resolver: the catch-up is uniform over TTL + 1 s (less a
    request interval), so its median is about half of that."""
    got = phases(scheme("dns"), "power-off", Client(interval_s=0.1))
    assert got is not None
    catch_up = got.served - got.switch
    assert float(np.median(catch_up)) == pytest.approx((5 + 1 - 0.05) / 2 + 0.05 + 0.05, abs=0.1)
    assert float(catch_up.max()) < 5 + 1 + 0.1 + 0.05 + 1e-9
    no_rounding = phases(scheme("dns"), "power-off", Client(resolver_second_s=0.0))
    assert no_rounding is not None
    assert float(np.median(no_rounding.served - no_rounding.switch)) < float(np.median(catch_up))


def _alarm(detector: str, each: list[tuple[str, float, float]]) -> Alarm:
    return Alarm(detector, 0.1, 0.0, 0.0, 0.0, tuple(each))


def test_a_voter_counts_down_by_either_detector_and_short_downs_may_go_unseen() -> None:
    """Two voters, both needed: dr's service checks down (long), the witness unreachable
    (short, 0.1 s each): no detector alone ever has both, yet the quorum does; a controller
    that looks every 0.5 s sees a 0.1 s down a fifth of the time."""
    reach = _alarm("reach", [("dr", 0.0, 0.0), ("witness", 0.01, 0.001)])  # 0.1 s each
    service = _alarm("service", [("dr", 0.001, 0.2), ("witness", 0.0, 0.0)])  # 200 s each
    upper = either([reach, service], 2)
    # The witness's downs begin while dr is down (a fifth of the time), and dr's while the
    # witness is (a thousandth).
    assert upper == pytest.approx(0.01 * 0.2 + 0.001 * 0.001, rel=0.01)
    assert either([reach, service], 2, look_s=0.5) == pytest.approx(upper / 5, rel=0.03)
    # One detector alone: the same as its own coincidences.
    one = _alarm("service", [("dr", 0.001, 0.2), ("witness", 0.002, 0.1)])
    assert either([one], 2) == pytest.approx(0.001 * 0.1 + 0.002 * 0.2)
    assert either([one], 1) == pytest.approx(0.003)
