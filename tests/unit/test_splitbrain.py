"""The split-brain checker's rule on recorded samples: two sites taking writes, or traffic
sent to a site that takes writes without holding the lease, is a violation; a failover done
in order (fence, then promote, then move traffic) has none."""

from __future__ import annotations

from typing import Any

from draas.lab.splitbrain import (
    UNREAD,
    accepting,
    held_between,
    no_acknowledger,
    traffic_targets,
    violations,
)
from draas.replication.mariadb import stop_under_way

SITES = {"primary": "198.18.1.10", "dr": "198.18.2.10"}
FES = {"fe-a": "198.18.1.20", "fe-b": "198.18.2.20"}


def sample(
    t: float,
    *,
    writes: dict[str, str],
    active: str | None,
    dns: str | None = None,
    routes: dict[str, str | None] | None = None,
    read_only: dict[str, bool | None] | None = None,
) -> dict[str, Any]:
    return {
        "t": t,
        "write": writes,
        "active": active,
        "dns": dns,
        "read_only": read_only or {s: w != "acked" for s, w in writes.items()},
        "frontends": routes or {},
    }


def test_an_orderly_dns_failover_has_no_violation() -> None:
    run = [
        sample(
            0,
            writes={"primary": "acked", "dr": "status 403"},
            active="primary",
            dns=SITES["primary"],
        ),
        # power-off: primary unreachable, lease expiring, nobody writable, DNS still old
        sample(
            1,
            writes={"primary": "failed", "dr": "status 403"},
            active="primary",
            dns=SITES["primary"],
            read_only={"primary": None, "dr": True},
        ),
        sample(
            2,
            writes={"primary": "failed", "dr": "status 403"},
            active=None,
            dns=SITES["primary"],
            read_only={"primary": None, "dr": True},
        ),
        sample(
            3,
            writes={"primary": "failed", "dr": "acked"},
            active="dr",
            dns=SITES["primary"],
            read_only={"primary": None, "dr": False},
        ),
        sample(
            4,
            writes={"primary": "failed", "dr": "acked"},
            active="dr",
            dns=SITES["dr"],
            read_only={"primary": None, "dr": False},
        ),
    ]
    assert violations(run, SITES, FES) == []


def test_two_writable_sites_are_a_violation_even_without_traffic() -> None:
    s = sample(5, writes={"primary": "acked", "dr": "acked"}, active="dr", dns=SITES["dr"])
    assert violations([s], SITES, FES) == [{"t": 5, "problems": ["dr and primary accept writes"]}]


def test_a_writable_database_alone_counts_as_accepting_writes() -> None:
    s = sample(
        1,
        writes={"primary": "failed", "dr": "failed"},
        active="primary",
        read_only={"primary": False, "dr": False},
    )
    assert accepting(s) == ["dr", "primary"]


def test_a_frontend_routing_to_a_writable_site_that_lost_the_lease_is_a_violation() -> None:
    s = sample(
        7,
        writes={"primary": "acked", "dr": "status 403"},
        active="dr",
        dns=FES["fe-a"],
        routes={"fe-a": "primary", "fe-b": "dr"},
    )
    assert traffic_targets(s, SITES, FES) == {"dns": "primary", "fe-a": "primary", "fe-b": "dr"}
    problems = violations([s], SITES, FES)[0]["problems"]
    assert problems == [
        "dns sends traffic to primary, which takes writes but does not hold the lease (held by dr)",
        "fe-a sends traffic to primary, which takes writes but does not hold the lease (held by "
        "dr)",
    ]


def test_traffic_to_a_fenced_old_primary_is_not_split_brain() -> None:
    s = sample(
        3,
        writes={"primary": "status 403", "dr": "status 403"},
        active=None,
        dns=FES["fe-a"],
        routes={"fe-a": "primary"},
    )
    assert violations([s], SITES, FES) == []


def test_a_failover_that_happens_while_one_sample_is_taken_is_not_a_violation() -> None:
    # the lease was free when the sample began and the DR site's when it ended: the DR
    # database opened and a frontend moved in between (the order of a failover)
    s = sample(
        8,
        writes={"primary": "failed", "dr": "acked"},
        active=None,
        routes={"fe-a": "dr"},
        read_only={"primary": None, "dr": True},
    )
    s.update(read_only_after={"primary": None, "dr": False}, active_after="dr")
    assert violations([s], SITES, FES) == []


def test_a_site_holding_the_lease_in_neither_reading_is_a_violation() -> None:
    s = sample(
        9,
        writes={"primary": "failed", "dr": "acked"},
        active=None,
        routes={"fe-a": "dr"},
        read_only={"primary": None, "dr": False},
    )
    s.update(active_after="primary")
    assert violations([s], SITES, FES) == [
        {
            "t": 9,
            "problems": [
                "fe-a sends traffic to dr, which takes writes but does not hold the lease (held by "
                "None then primary)"
            ],
        }
    ]


def test_an_unreadable_lease_is_not_taken_for_a_free_one() -> None:
    s = sample(10, writes={"primary": "failed", "dr": "acked"}, active="?", routes={"fe-a": "dr"})
    assert violations([s], SITES, FES) == []


def test_a_handover_inside_one_sample_is_not_two_writers() -> None:
    # failback: the DR database closed after round 1, the primary's opened before round 2
    s = sample(
        11,
        writes={"primary": "status 403", "dr": "status 403"},
        active="dr",
        read_only={"primary": True, "dr": False},
    )
    s.update(read_only_after={"primary": False, "dr": True}, active_after="primary")
    assert violations([s], SITES, FES) == []


def test_a_write_stored_while_the_other_site_stayed_writable_is_two_writers() -> None:
    # (the primary's database unreachable from the checker, its Keystone still storing)
    s = sample(
        12,
        writes={"primary": "acked", "dr": "status 403"},
        active="dr",
        read_only={"primary": None, "dr": False},
    )
    s.update(read_only_after={"primary": None, "dr": False})
    assert violations([s], SITES, FES)[0]["problems"] == ["dr and primary accept writes"]


def test_an_old_primary_whose_commits_wait_for_a_standby_that_left_cannot_acknowledge() -> None:
    """Taken over without waiting for its lease: the cut-off old primary is still writable by
    its flag, but semi-sync holds every commit (no replica connected), so it acknowledges
    nothing; the same database with commits completing is two writers."""
    cut_off = {
        "t": 1.0,
        "write": {"primary": "unknown", "dr": "acked"},
        "active": "dr",
        "read_only": {"primary": False, "dr": False},
        "held": {"primary": True, "dr": False},
        "read_only_after": {"primary": False, "dr": False},
        "held_after": {"primary": True, "dr": False},
        "frontends": {"fe-a": "dr"},
    }
    assert violations([cut_off], SITES, FES) == []
    assert accepting(cut_off) == ["dr"]
    acking = {**cut_off, "held": {"primary": False, "dr": False}}
    assert violations([acking], SITES, FES)[0]["problems"] == ["dr and primary accept writes"]


def test_commits_held_between_two_readings_only_when_none_completed_while_some_waited() -> None:
    def st(status: str, clients: str, waiting: str, yes: str, no: str = "0") -> dict[str, str]:
        return {
            "Rpl_semi_sync_master_status": status,
            "Rpl_semi_sync_master_clients": clients,
            "Rpl_semi_sync_master_wait_sessions": waiting,
            "Rpl_semi_sync_master_yes_tx": yes,
            "Rpl_semi_sync_master_no_tx": no,
            "wait_no_slave": "ON",
        }

    # Cut off by a partition: the replica is still counted, a commit waits, none completes.
    assert held_between(st("ON", "1", "1", "40"), st("ON", "1", "2", "40"))
    # The standby acknowledges: commits complete between the readings.
    assert not held_between(st("ON", "1", "1", "40"), st("ON", "1", "1", "41"))
    # Fenced between the readings: the waiting sessions were killed (no OK to their clients).
    assert held_between(st("ON", "1", "2", "40", "0"), st("ON", "1", "0", "40", "2"))
    # Semi-sync off: commits complete without waiting.
    assert not held_between(st("OFF", "0", "0", "40", "3"), st("OFF", "0", "0", "40", "5"))
    # Nothing waits (no write came): nothing proves a write would be held.
    assert not held_between(st("ON", "1", "0", "40"), st("ON", "1", "0", "40"))
    # No replica at all, wait_no_slave on: every commit waits.
    assert held_between(st("ON", "0", "0", "40"), st("ON", "0", "0", "40"))
    assert not held_between({}, st("ON", "0", "0", "40"))  # unreadable: not known


def test_commits_are_held_in_one_reading_when_no_other_site_receives_from_it() -> None:
    # The old primary's reading after its link came back: semi-sync on, no fallback, the
    # standby's stopped receiver still counted as a client, no commit waiting at that instant.
    primary = {
        "Rpl_semi_sync_master_status": "ON",
        "Rpl_semi_sync_master_clients": "1",
        "wait_no_slave": "ON",
        "timeout_ms": "4294967295",
        "address": "198.18.1.10",
    }
    assert no_acknowledger("primary", primary, {"primary": None, "dr": None})
    # The standby still receives from it: it may acknowledge, nothing is proven.
    assert not no_acknowledger("primary", primary, {"primary": None, "dr": "198.18.1.10"})
    # The standby was not read in that round: it may be receiving.
    assert not no_acknowledger("primary", primary, {"primary": None, "dr": UNREAD})
    # A timeout it could fall back on, or semi-sync off: not held.
    assert not no_acknowledger("primary", {**primary, "timeout_ms": "2000"}, {"dr": None})
    off = {**primary, "Rpl_semi_sync_master_status": "OFF"}
    assert not no_acknowledger("primary", off, {"dr": None})
    assert not no_acknowledger("primary", {}, {"dr": None})  # not read at all


def test_traffic_to_an_old_primary_writable_in_one_round_only_proves_nothing() -> None:
    """Seen in the fault matrix: the record had moved; in round 1 the old primary read
    writable and its "held" could not be proven (the standby, promoting, did not answer in
    time); in round 2 it was fenced; its Keystone stored nothing. Writable in both rounds, or
    a stored write, is what proves it took writes."""
    s = sample(
        11,
        writes={"primary": "status 500", "dr": "acked"},
        active="dr",
        dns=SITES["primary"],
        read_only={"primary": False, "dr": True},
    )
    s.update(
        held={"primary": False, "dr": False},
        read_only_after={"primary": True, "dr": False},
        held_after={"primary": True, "dr": False},
        active_after="dr",
    )
    assert violations([s], SITES, FES) == []
    still = dict(s, read_only_after={"primary": False, "dr": False}, held_after={})
    assert violations([still], SITES, FES)[0]["problems"] == [
        "dr and primary accept writes",
        "dns sends traffic to primary, which takes writes but does not hold the lease (held by dr)",
    ]


def test_a_receiver_being_stopped_while_it_waits_for_its_source_counts_as_stopped() -> None:
    stop = {"COMMAND": "Query", "STATE": "Killing slave", "INFO": "STOP SLAVE IO_THREAD"}
    waiting = {"COMMAND": "Slave_IO", "STATE": "Waiting for master to send event", "INFO": None}
    writing = {"COMMAND": "Slave_IO", "STATE": "Queueing master event to the relay log"}
    assert stop_under_way([stop, waiting])
    assert not stop_under_way([waiting])  # no stop: it receives
    assert not stop_under_way([stop, {**writing, "INFO": None}])  # may still write one event
