"""The RTO meter's arithmetic and the lost-write accounting on recorded logs, edge cases
included: no outage, an outage that never ends, flapping, several checks per tick."""

from __future__ import annotations

from typing import Any

import pytest

from draas.measure.rto import rto, samples, summarize, windows
from draas.measure.writes import account, longest_stall, write_figures, write_outages


def log(pattern: str, t0: float = 100.0, step: float = 0.1, **kw: Any) -> list[dict[str, Any]]:
    """One record per character: '+' passed, '-' failed; latency 10 ms; site from kw."""
    return [
        {"t": t0 + i * step, "ok": c == "+", "latency_s": 0.010, "site": kw.get("site", "a")}
        for i, c in enumerate(pattern)
    ]


def test_no_outage() -> None:
    s = summarize(log("++++++++++"), disaster_t=100.2)
    assert (s.samples, s.failed, s.availability, s.windows, s.downtime_s) == (10, 0, 1.0, [], 0)
    assert s.rto_s == 0.0
    assert s.latency_p50_ms == pytest.approx(10.0)


def test_one_outage_gives_a_window_and_the_rto_to_k_consecutive_passes() -> None:
    s = summarize(log("+++----+++++"), disaster_t=100.25, k=3)
    assert len(s.windows) == 1
    w = s.windows[0]
    assert w.start == pytest.approx(100.3) and w.end == pytest.approx(100.7)
    assert s.downtime_s == pytest.approx(0.4)
    assert s.rto_s == pytest.approx(100.7 + 0.010 - 100.25)  # to the answer
    assert s.availability == pytest.approx(8 / 12, abs=1e-4)


def test_an_outage_that_never_ends_has_no_rto_and_an_open_window() -> None:
    s = summarize(log("++------"), disaster_t=100.1)
    assert s.rto_s is None
    assert s.windows[0].end is None
    assert s.downtime_s == pytest.approx(0.5)  # first failure to the last sample seen


def test_flapping_needs_k_consecutive_passes() -> None:
    seq = samples(log("+--+-++-+++++"))
    assert len(windows(seq)) == 3
    got, _ = rto(seq, 100.0, k=3)
    assert got == pytest.approx(0.81)  # the run '+++' starting at index 8, answered
    # With k=1 the first sample, answered, already ends the outage: the failures after it
    # are later incidents.
    got1, _ = rto(seq, 100.0, k=1)
    assert got1 == pytest.approx(0.01)
    got1, _ = rto(seq[1:], 100.1, k=1)
    assert got1 == pytest.approx(0.21)  # from the first failure to the next pass, answered


def test_rto_names_the_site_that_answered_after_recovery() -> None:
    records = log("++--", site="primary") + log("+++", t0=100.4, site="dr")
    s = summarize(records, disaster_t=100.15)
    assert s.recovered_site == "dr" and s.rto_s == pytest.approx(0.26)


def test_a_request_held_until_the_new_site_answers_counts_to_its_answer() -> None:
    # Nothing failed, but the first request after the disaster was held 0.55 s (a frontend
    # retrying its connection until the switch): the client was served at its answer.
    held = [
        {"t": 100.32, "ok": True, "latency_s": 0.55, "site": "dr"},
        {"t": 100.42, "ok": True, "latency_s": 0.45, "site": "dr"},
        {"t": 100.52, "ok": True, "latency_s": 0.01, "site": "dr"},
    ]
    records = [*log("+++", site="primary"), *held]
    s = summarize(records, disaster_t=100.3)
    assert s.rto_s == pytest.approx(0.57) and s.recovered_site == "dr"
    # A failure long after the service was served again (a failback's pause) is not this
    # outage: it counts in the downtime only.
    blip = [*records, *log("+++-+++", t0=100.62, site="dr")]
    s = summarize(blip, disaster_t=100.3)
    assert s.rto_s == pytest.approx(0.57) and s.downtime_s > 0
    # One slow answer among the many before the disaster (a cold start) does not hide it.
    slow_start = [{"t": 99.0, "ok": True, "latency_s": 0.9, "site": "primary"}]
    slow_start += log("+" * 30, t0=99.01, step=0.01, site="primary")
    assert summarize([*slow_start, *held], disaster_t=100.3).rto_s == pytest.approx(0.57)
    # The same answers at their usual speed: nothing was held, the RTO is 0.
    quick = log("+++", site="primary") + log("+++", t0=100.32, site="dr")
    assert summarize(quick, disaster_t=100.3).rto_s == 0.0


def test_checks_of_one_tick_pass_only_together() -> None:
    records = [
        {"t": 1.0, "tick": 0, "ok": True, "check": "web"},
        {"t": 1.001, "tick": 0, "ok": False, "check": "api"},
        {"t": 1.1, "tick": 1, "ok": True, "check": "web"},
        {"t": 1.101, "tick": 1, "ok": True, "check": "api"},
    ]
    s = summarize(records)
    assert (s.samples, s.failed) == (2, 1)


def test_latency_percentiles_leave_out_the_outage() -> None:
    records = [
        *log("++++"),
        {"t": 100.4, "ok": False, "latency_s": 5.0},
        {"t": 100.5, "ok": True, "latency_s": 3.0},
    ]
    s = summarize(records)
    # the first pass after the window closes it (it is at the window's end): excluded
    assert s.latency_p99_ms == pytest.approx(10.0)


def w(seq: int, outcome: str, t: float) -> dict[str, Any]:
    return {"seq": seq, "name": f"p-{seq:06d}", "outcome": outcome, "t_start": t}


def test_lost_writes_are_the_acknowledged_ones_the_database_lacks() -> None:
    rows = [
        w(1, "acked", 1.0),
        w(2, "acked", 2.0),
        w(3, "unknown", 3.0),
        w(4, "acked", 4.0),
        w(5, "failed", 5.0),
        w(6, "unknown", 6.0),
    ]
    r = account(rows, held={"p-000001", "p-000003"})
    assert (r.attempted, r.acked, r.failed, r.unknown) == (6, 3, 1, 2)
    assert (r.lost, r.lost_names, r.unknown_stored) == (2, ["p-000002", "p-000004"], 1)
    assert r.lost_span_s == pytest.approx(2.0)


def test_nothing_lost_when_everything_acknowledged_is_held() -> None:
    r = account([w(1, "acked", 1.0)], held={"p-000001", "p-000099"})
    assert r.lost == 0 and r.lost_span_s == 0.0 and r.lost_first_t is None


def wr(t: float, outcome: str) -> dict[str, Any]:
    return {"t_start": t, "outcome": outcome, "name": f"p{t}"}


def test_write_outages_from_the_first_unacknowledged_write_to_the_next_acknowledged() -> None:
    log = [
        wr(0, "acked"),
        wr(1, "failed"),
        wr(2, "unknown"),
        wr(3, "acked"),
        wr(4, "acked"),
        wr(5, "failed"),
        wr(6, "acked"),
        wr(7, "failed"),
        wr(8, "failed"),
    ]
    assert write_outages(log, since=0.5) == [(1, 3, True), (5, 6, True), (7, 8, False)]
    assert write_figures(log, since=0.5) == {"write_rto_s": 2.5, "write_downtime_s": 4.0}
    assert write_figures(log[:5], since=0) == {"write_rto_s": 3.0, "write_downtime_s": 2.0}


def test_a_write_in_flight_at_the_disaster_opens_the_outage_and_an_answer_closes_it() -> None:
    """Writers side by side: the write hanging when the site died counts from the disaster;
    an acknowledgement of a write started before the outage does not end it; the first
    write started after it ends it when it is answered (its ``t_end``)."""

    def ws(t0: float, t1: float, outcome: str) -> dict[str, Any]:
        return {"t_start": t0, "t_end": t1, "outcome": outcome, "name": f"p{t0}"}

    log = [
        ws(9.7, 9.9, "acked"),  # done before the disaster: not counted
        ws(9.8, 11.8, "unknown"),  # in flight at 10.0, timed out
        ws(9.9, 10.05, "acked"),  # answered just after it, but started before the outage
        ws(10.3, 12.3, "unknown"),
        ws(10.6, 11.2, "failed"),
        ws(11.3, 11.45, "acked"),  # the first write the new site acknowledges
    ]
    assert write_outages(log, since=10.0) == [(10.0, 11.45, True)]
    assert write_figures(log, since=10.0) == {"write_rto_s": 1.45, "write_downtime_s": 1.45}


def test_writes_that_never_recover_have_no_write_rto() -> None:
    assert write_figures([wr(1, "acked"), wr(2, "failed"), wr(3, "failed")], 1.5) == {
        "write_rto_s": None,
        "write_downtime_s": 1.0,
    }
    clean = [wr(1, "acked"), wr(2, "acked")]
    assert write_figures(clean, 0) == {"write_rto_s": 0.0, "write_downtime_s": 0.0}


def test_the_longest_stall_is_the_longest_gap_between_acknowledgements() -> None:
    log = [
        {"t_start": 10.0, "t_end": 10.1, "outcome": "acked"},
        {"t_start": 10.2, "t_end": 11.5, "outcome": "acked"},  # waited 1.3 s for the standby
        {"t_start": 11.6, "t_end": 11.7, "outcome": "failed"},
        {"t_start": 11.8, "t_end": 11.9, "outcome": "acked"},
        {"t_start": 30.0, "t_end": 30.1, "outcome": "acked"},  # after the window
    ]
    assert longest_stall(log, 10.0, 12.0) == 1.4  # 10.1 -> 11.5
    assert longest_stall(log, 12.5, 13.0) is None  # no write in the window
