"""Other nodes' times judged on receipt: a skewed observer's votes count on time, and its skew
is measured and reported (the pure part; the controller's use is in test_agent_tasks.py)."""

from __future__ import annotations

from draas.failover.receipts import Receipts, skewed
from draas.testkit import observation


def test_times_are_re_expressed_in_the_receivers_clock() -> None:
    r = Receipts()
    fast = observation("witness", 1600.0, primary=("down", 1598.0))  # 600 s ahead of us
    got = r.rebase({"witness": fast}, now=1000.0)["witness"]
    seen = got.state_of("primary")
    assert seen is not None and seen.since == 998.0 and got.at == 1000.0  # down for 2 s
    assert r.offsets() == {"witness": 600.0}
    # The same publication read again later: still received when first read.
    later = r.rebase({"witness": fast}, now=1003.0)["witness"].state_of("primary")
    assert later is not None and later.since == 998.0
    # A publication read late (it waited 2 s for our read) does not move the estimate.
    late = observation("witness", 1601.0, primary=("down", 1598.0))
    seen_late = r.rebase({"witness": late}, now=1003.0)["witness"].state_of("primary")
    assert seen_late is not None and seen_late.since == 998.0 and r.offsets()["witness"] == 600
    # A new publication (its time moved) is a new receipt; an expired observer is forgotten.
    newer = observation("witness", 1604.0, primary=("down", 1598.0))
    again = r.rebase({"witness": newer}, now=1004.0)["witness"].state_of("primary")
    assert again is not None and again.since == 998.0
    r.rebase({}, now=1005.0)
    assert r.offsets() == {}


def test_the_odd_clock_out_is_named_against_the_median() -> None:
    assert skewed({"site-a": 0.3, "site-b": -0.2, "witness": 600.0}) == {"witness": 599.9}
    assert skewed({"site-a": 0.3, "site-b": -0.2, "witness": 4.0}) == {}  # under 5 s
    # Every other node is 600 s behind us: we are the odd one out ("" is this node).
    assert skewed({"site-a": -600.0, "site-b": -600.2, "witness": -599.8}) == {"": 599.9}


def test_a_clock_stepped_back_is_measured_again_at_once() -> None:
    """The witness's clock fixed (or its agent restarted with the right time) before its
    observation expired: the ten minutes must not linger for the last 20 receipts."""
    r = Receipts()
    for i in range(5):
        r.rebase({"witness": observation("witness", 1600.0 + i)}, now=1000.0 + i)
    assert r.offsets() == {"witness": 600.0}
    r.rebase({"witness": observation("witness", 1006.0)}, now=1006.0)
    assert r.offsets() == {"witness": 0.0}
    # A read 3 s late is within what a late read adds: the estimate stays.
    r.rebase({"witness": observation("witness", 1007.0)}, now=1010.0)
    assert r.offsets() == {"witness": 0.0}


def test_an_agents_own_observation_is_not_a_measured_clock() -> None:
    """The skewed agent itself (three agents): its own observation must not count as a second
    clock agreeing with it, or the median falls between and everybody looks 300 s off."""
    r = Receipts(me="site-dr")
    seen = {
        "site-dr": observation("site-dr", 1600.0),  # ours: read in our own (fast) clock
        "site-primary": observation("site-primary", 1000.0),
        "witness": observation("witness", 1000.0),
    }
    r.rebase(seen, now=1600.0)
    assert r.offsets() == {"site-primary": -600.0, "witness": -600.0}
    assert skewed(r.offsets()) == {"": 600.0}  # this agent is the odd one out


def test_two_clocks_that_disagree_name_neither() -> None:
    """The primary powered off: the DR agent sees only the witness, 600 s ahead. Without a
    majority neither is named (the DR agent must not think itself skewed and leave the
    controller lease)."""
    assert skewed({"witness": 600.0}) == {}
    assert skewed({"witness": 600.0, "site-a": 0.1}) == {"witness": 599.9}


def test_the_stores_clock_tells_which_of_two_clocks_is_off() -> None:
    """The primary powered off, the DR agent sees only the witness 600 s ahead: with the
    store's clock (from etcd's answers) agreeing with ours, the witness is named; with the store
    agreeing with the witness, this agent is."""
    store = {"offset": 0.2}
    r = Receipts(me="site-dr", store_offset=lambda: store["offset"])
    r.rebase({"witness": observation("witness", 1600.0)}, now=1000.0)
    assert r.offsets() == {"witness": 600.0, "store": 0.2}
    assert skewed(r.offsets()) == {"witness": 599.8}
    store["offset"] = 600.1
    assert skewed(r.offsets()) == {"": -600.0}
    # A store that does not tell its time (memory) adds nothing.
    assert "store" not in Receipts(store_offset=lambda: None).offsets()
