"""The bare lab: hosts, reachability, WAN latency, partitions, loss, link failure."""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from itertools import permutations

import pytest

from draas.lab import netns
from draas.lab.disasters import GrayNetwork, NetworkFailure, Partition
from draas.lab.lab import Lab
from draas.lab.reach import PingResult, ping

pytestmark = pytest.mark.lab


def ping_pair(lab: Lab, src: str, dst: str, count: int = 1) -> PingResult:
    return ping(
        lab.ns(src), src, dst, lab.topo.host(dst).address, count=count, interval_s=0.05, wait_s=0.5
    )


def reach_matrix(lab: Lab, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: ping_pair(lab, p[0], p[1], count=2), pairs))
    return {(r.src, r.dst): r.reachable for r in results}


def test_every_host_is_a_namespace_on_the_bridge(bare_lab: Lab) -> None:
    present = set(netns.list_namespaces())
    for h in bare_lab.topo.hosts:
        assert bare_lab.ns(h.name) in present
        addr = netns.run(["ip", "-n", bare_lab.ns(h.name), "-4", "-o", "addr", "show", "eth0"])
        assert f"{h.address}/16" in addr.stdout
        assert bare_lab.net.link_state(h.name) == "up"
    bridge = netns.run(["ip", "-n", bare_lab.net.switch_ns, "-o", "link", "show", "master", "br0"])
    assert bridge.stdout.count("v-") == len(bare_lab.topo.hosts)
    # Nothing of the lab lives in the root namespace.
    root_links = netns.run(["ip", "-o", "link", "show"]).stdout
    assert "v-primary" not in root_links and "br0" not in root_links


def test_every_host_reaches_every_other(bare_lab: Lab) -> None:
    pairs = list(permutations(bare_lab.topo.host_names(), 2))
    result = reach_matrix(bare_lab, pairs)
    assert [p for p, ok in result.items() if not ok] == []


def test_round_trip_between_sites_reflects_configured_latency(bare_lab: Lab) -> None:
    r = ping_pair(bare_lab, "primary", "dr", count=15)
    expected = 2 * bare_lab.settings.delay_ms  # one-way delay each direction
    assert r.median_ms is not None
    print(
        f"primary->dr RTT median {r.median_ms:.2f} ms over {len(r.rtts_ms)} (expected {expected})"
    )
    assert abs(r.median_ms - expected) <= 0.2 * expected
    # Inside a zone there is no added delay.
    local = ping_pair(bare_lab, "client", "witness", count=5)
    assert local.median_ms is not None and local.median_ms < 2.0


def test_partition_blocks_exactly_the_chosen_pairs(bare_lab: Lab) -> None:
    hosts = bare_lab.topo.host_names()
    a, b = ["primary", "fe-a"], ["dr"]
    pairs = list(permutations(hosts, 2))
    with Partition(bare_lab, hosts=a, peers=b):
        result = reach_matrix(bare_lab, pairs)
    blocked = {p for p, ok in result.items() if not ok}
    expected = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
    assert blocked == expected
    after = reach_matrix(bare_lab, sorted(expected))
    assert all(after.values()), "partition not reverted"


def test_loss_drops_some_packets_not_all(bare_lab: Lab) -> None:
    with GrayNetwork(bare_lab, hosts=["witness"], loss_pct=50.0, jitter_ms=0.0):
        r = ping(
            bare_lab.ns("client"),
            "client",
            "witness",
            "198.18.0.30",
            count=40,
            interval_s=0.02,
            wait_s=0.3,
        )
    # In and out each drop half: about a quarter of echoes come back.
    assert 0 < len(r.rtts_ms) < 30
    assert ping_pair(bare_lab, "client", "witness", count=3).rtts_ms


def test_gray_jitter_varies_the_round_trip(bare_lab: Lab) -> None:
    with GrayNetwork(bare_lab, hosts=["fe-b"], loss_pct=0.0, jitter_ms=10.0):
        r = ping_pair(bare_lab, "client", "fe-b", count=20)
    assert len(r.rtts_ms) == 20
    assert statistics.pstdev(r.rtts_ms) > 2.0
    assert statistics.median(r.rtts_ms) > 10.0


def test_network_failure_cuts_a_host_and_revert_restores_it(bare_lab: Lab) -> None:
    d = NetworkFailure(bare_lab, host="dr")
    d.inject()
    try:
        assert bare_lab.net.link_state("dr") == "down"
        assert not ping_pair(bare_lab, "witness", "dr", count=2).reachable
    finally:
        d.revert()
    assert ping_pair(bare_lab, "witness", "dr", count=2).reachable
    kinds = [(e["name"], e["phase"]) for e in bare_lab.run.events() if e["kind"] == "disaster"]
    assert ("network-failure", "inject") in kinds and ("network-failure", "revert") in kinds
