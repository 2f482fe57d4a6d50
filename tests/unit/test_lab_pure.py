"""Pure parts of the lab: topology checks, filter rules, the delayer's arithmetic."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import replace
from typing import Any

import pytest

from draas.errors import InvalidInput, LabError
from draas.lab.agents import not_observing
from draas.lab.delayer import Rule, hold_time
from draas.lab.network import LabNetwork
from draas.lab.state import check_lab_name
from draas.lab.topology import HostSpec, default_topology

A = ipaddress.IPv4Address


def test_default_topology_matches_design() -> None:
    topo = default_topology()
    assert topo.host("primary").address == "198.18.1.10"
    assert topo.host("dr").address == "198.18.2.10"
    assert topo.host("client").address == "198.18.0.10"
    assert len(topo.hosts) == 7
    assert topo.wan[0].delay_ms == 10.0


def test_topology_refuses_addresses_outside_the_lab_range() -> None:
    topo = default_topology()
    bad = replace(topo, hosts=(*topo.hosts, HostSpec("evil", "10.0.0.1", "core", "x")))
    with pytest.raises(LabError, match="not inside its zone"):
        bad.validate()


def test_unknown_host_error_lists_hosts() -> None:
    with pytest.raises(LabError, match="unknown lab host 'nope'; hosts: client, dns"):
        default_topology().host("nope")


@pytest.mark.parametrize("name", ["", "Lab", "1lab", "lab-1", "averyverylongname"])
def test_lab_names_are_restricted(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_lab_name(name)


def test_partition_rules_only_on_the_two_sides() -> None:
    net = LabNetwork("t", default_topology())
    imp = [{"id": "p1", "kind": "partition", "a": ["primary"], "b": ["dr", "fe-b"]}]
    rin, rout = net.filter_rules("primary", imp)
    assert rin == ['ip saddr { 198.18.2.10, 198.18.2.20 } drop comment "p1"']
    assert rout == ['ip daddr { 198.18.2.10, 198.18.2.20 } drop comment "p1"']
    rin, _ = net.filter_rules("dr", imp)
    assert rin == ['ip saddr { 198.18.1.10 } drop comment "p1"']
    assert net.filter_rules("witness", imp) == ([], [])


def test_loss_rule_in_basis_points() -> None:
    net = LabNetwork("t", default_topology())
    rin, rout = net.filter_rules(
        "dr", [{"id": "g", "kind": "loss", "hosts": ["dr"], "percent": 2.5}]
    )
    assert rin == ['iif != "lo" numgen random mod 10000 < 250 drop comment "g"']
    assert rout[0].startswith('oif != "lo" numgen random mod 10000 < 250')


def test_delayer_holds_only_matching_traffic_both_directions() -> None:
    rules = [
        Rule(
            ipaddress.IPv4Network("198.18.1.0/24"),
            ipaddress.IPv4Network("198.18.2.0/24"),
            0.010,
            0.0,
        )
    ]
    rng = random.Random(1)
    assert hold_time(rules, A("198.18.1.10"), A("198.18.2.10"), rng) == pytest.approx(0.010)
    assert hold_time(rules, A("198.18.2.10"), A("198.18.1.10"), rng) == pytest.approx(0.010)
    assert hold_time(rules, A("198.18.1.10"), A("198.18.0.10"), rng) == 0.0


def test_delayer_adds_matching_rules_and_jitter_stays_in_bounds() -> None:
    wan = Rule(
        ipaddress.IPv4Network("198.18.1.0/24"), ipaddress.IPv4Network("198.18.2.0/24"), 0.010, 0.0
    )
    gray = Rule(
        ipaddress.IPv4Network("198.18.1.10/32"),
        ipaddress.IPv4Network("198.18.0.0/16"),
        0.020,
        0.020,
    )
    rng = random.Random(7)
    holds = [hold_time([wan, gray], A("198.18.1.10"), A("198.18.2.10"), rng) for _ in range(500)]
    assert min(holds) >= 0.010
    assert max(holds) <= 0.050
    assert max(holds) - min(holds) > 0.02  # the jitter really varies


def test_ready_only_when_every_agent_sees_every_target_up() -> None:
    up = {"state": "up", "since": 1.0}
    docs: dict[str, dict[str, Any]] = {
        "site-dr": {"observer": "site-dr", "targets": {"primary": up, "dr": up}},
        "witness": {"observer": "witness", "targets": {"primary": up, "dr": {"state": "unknown"}}},
        "fe-b": {"observer": "fe-b", "targets": {}},
    }
    assert not_observing(docs, ["site-dr", "witness", "fe-b", "site-primary"]) == [
        "witness sees dr unknown",
        "fe-b: no target judged yet",
        "site-primary: nothing published",
    ]
    docs["witness"]["targets"]["dr"] = {"state": "down"}  # a probe still rising
    assert not_observing(docs, ["site-dr", "witness"]) == ["witness sees dr down"]
    docs["witness"]["targets"]["dr"] = up
    assert not_observing(docs, ["site-dr", "witness"]) == []
