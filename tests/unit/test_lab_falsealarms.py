"""Counting false confirmations and observers' false downs from the agents' events (the
false-failover benchmark's measurement, issue 20)."""

from __future__ import annotations

import pytest

from draas.coordination import Event
from draas.lab.falsealarms import confirmations, detector_of, observer_downs


def decision(ts: float, cause: str, detail: str = "") -> Event:
    return Event(
        ts=ts,
        node="witness",
        runbook="decision",
        run="decision",
        step="decide",
        outcome="wait",
        detail=detail,
        extra={"cause": cause},
    )


def seen(ts: float, node: str, step: str, outcome: str, target: str = "primary") -> Event:
    return Event(
        ts=ts,
        node=node,
        runbook="monitor",
        run=f"sees-{target}",
        step=step,
        outcome=outcome,
        target=target,
    )


def test_each_episode_of_a_confirmed_down_counts_once_whatever_the_wait_says() -> None:
    evs = [
        decision(1, "not-confirmed"),
        decision(2, "paused", "automatic action paused by x: y; would failover: primary down"),
        decision(3, "not-eligible"),  # the same episode: the standby lost its eligibility
        decision(4, "not-confirmed"),
        decision(5, "paused", "automatic action paused by x: y; would failback: dr up"),
        decision(6, "not-confirmed"),
        decision(7, "no-healthy-target"),
        decision(8, "too-few-alive"),
        decision(9, "held"),
        seen(9.5, "site-dr", "detect", "down"),  # not a decision
    ]
    got = confirmations(evs)
    assert [(c["ts"], c["cause"]) for c in got] == [
        (2, "paused"),
        (7, "no-healthy-target"),
        (9, "held"),
    ]


def test_an_observers_down_counts_and_lasts_its_window_until_it_is_up_again() -> None:
    evs = [
        seen(1.0, "site-dr", "detect", "down"),
        seen(1.5, "site-dr", "detect", "down"),  # a repeat: the same down
        seen(2.5, "site-dr", "detect", "up"),  # lasted 1.5 s: not the 2 s window
        seen(3.0, "witness", "detect", "down"),
        seen(5.5, "witness", "detect", "up"),  # lasted 2.5 s
        seen(4.0, "site-dr", "reach", "unreachable"),
        seen(4.1, "site-dr", "reach", "reachable"),  # the reach window is 0: it counts
        seen(6.0, "site-dr", "detect", "down", target="dr"),  # another target
        seen(6.0, "site-primary", "detect", "down"),  # the target's own agent: no voter
        seen(9.0, "witness", "detect", "down"),  # still down at the end, for 2 s
    ]
    voters = ["site-dr", "witness"]
    got = observer_downs(evs, "primary", voters, {"reach": 0.0, "service": 2.0}, until=11.0)
    assert got["service"] == {
        "site-dr": {"downs": 1, "lasted_window": 0, "counted_s": 0.0},
        "witness": {"downs": 2, "lasted_window": 2, "counted_s": pytest.approx(0.5)},
    }
    assert got["reach"] == {
        "site-dr": {"downs": 1, "lasted_window": 1, "counted_s": pytest.approx(0.1)}
    }


def test_a_confirmation_names_its_detector_when_its_reason_does() -> None:
    why = "automatic action paused by x: y; would failover: primary {} by site-dr, witness"
    assert detector_of({"reason": why.format("unreachable for 0 s")}) == "reach"
    assert detector_of({"reason": why.format("down for 2 s")}) == "service"
    assert detector_of({"reason": "primary is down (site-dr, witness) but dr is seen up"}) == (
        "unknown"
    )
