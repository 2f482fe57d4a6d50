"""GTID arithmetic: positions, errant transactions after a failover, lag in transactions."""

from __future__ import annotations

import pytest

from draas.replication.gtid import Gtid, behind, contains, errant, fmt, parse


def test_parse_and_format_round_trip() -> None:
    assert parse("0-1-150, 1-2-7\n") == [Gtid(0, 1, 150), Gtid(1, 2, 7)]
    assert parse("") == [] and parse(None) == []
    assert fmt(parse("1-2-7,0-1-150")) == "0-1-150,1-2-7"


def test_parse_rejects_garbage_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="not a MariaDB GTID: '0-1'"):
        parse("0-1")


def test_old_primary_that_wrote_after_the_cut_has_exactly_those_errant() -> None:
    old_primary = parse("0-1-150")
    new_primary = parse("0-1-140,0-2-170")  # applied up to 140, then wrote as server 2
    (r,) = errant(old_primary, new_primary)
    assert (r.domain, r.server, r.after, r.upto, r.count) == (0, 1, 140, 150, 10)
    assert str(r.start) == "0-1-140" and str(r.stop) == "0-1-150"


def test_nothing_errant_when_the_new_primary_had_everything() -> None:
    assert errant(parse("0-1-140"), parse("0-1-140,0-2-170")) == []


def test_history_received_before_a_reseed_is_not_errant() -> None:
    # The DR site (last GTID 0-2-180, its own) once replicated 0-1-1..171 from the primary;
    # the primary was since reseeded (binlog reset) and holds only 0-2-180 in its state.
    assert errant(parse("0-2-180"), parse("0-2-180")) == []


def test_seeded_replica_counts_its_slave_position() -> None:
    # A replica seeded at 0-1-100 has an empty binlog state but has applied up to 100.
    assert errant(parse("0-1-100"), parse("") + parse("0-1-100")) == []


def test_lag_in_transactions_per_domain() -> None:
    assert behind(parse("0-1-150,1-1-20"), parse("0-1-140,1-1-20")) == 10
    assert behind(parse("0-1-150"), parse("")) == 150
    assert behind(parse("0-1-150"), parse("0-1-160")) == 0


def test_contains() -> None:
    assert contains(parse("0-2-170"), parse("0-1-150"))
    assert not contains(parse("0-1-10"), parse("0-1-11"))
    assert not contains(parse(""), parse("0-1-1"))


def test_catalog_plan_moves_only_endpoints_under_the_old_base() -> None:
    from draas.replication.catalog import plan

    eps = [
        {"id": "1", "interface": "public", "url": "http://site-a.example.org:5000/v3"},
        {"id": "2", "interface": "admin", "url": "http://site-a.example.org/identity"},
        {"id": "3", "interface": "public", "url": "http://keystone.example.org:5000/v3"},
        {"id": "4", "interface": "public", "url": "http://site-a.example.org.evil:5000/"},
    ]
    changes = plan(eps, "http://site-a.example.org", "http://site-b.example.org/")
    assert [(c.id, c.new_url) for c in changes] == [
        ("1", "http://site-b.example.org:5000/v3"),
        ("2", "http://site-b.example.org/identity"),
    ]
    assert plan(eps, "http://keystone.example.org:5000", "http://x")[0].id == "3"
