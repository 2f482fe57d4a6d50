"""Data sync with real MariaDB and Keystone: sync under load, switchover and back, async loss
saved exactly, semi-sync loses nothing acknowledged, tokens survive failover with synced keys.

The tests share one lab and run in order; each starts by putting the primary back in charge.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import secrets
import threading
import time
from pathlib import Path

import pymysql
import pytest
from support import DR_URL, PRIMARY_URL, issue_token, validate

from draas.errors import ErrantTransactions, ReplicationError
from draas.lab.components import keystone, mariadb
from draas.lab.disasters import Partition, PowerOff
from draas.lab.lab import Lab
from draas.lab.writer import read_log
from draas.replication import DbEndpoint
from draas.replication.files import apply, snapshot
from draas.replication.mariadb import MariaDBReplicator

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Lab:
    return dns_lab


def reps(
    lab: Lab, semi: bool = False, timeout_ms: int = 2000
) -> tuple[MariaDBReplicator, MariaDBReplicator]:
    return (
        mariadb.replicator(lab, "primary", semi_sync=semi, timeout_ms=timeout_ms),
        mariadb.replicator(lab, "dr", semi_sync=semi, timeout_ms=timeout_ms),
    )


def primary_in_charge(lab: Lab) -> tuple[MariaDBReplicator, MariaDBReplicator]:
    """Planned switchover back to the primary if the DR site holds the writes."""
    p, d = reps(lab)
    if d.status().role == "primary":
        d.demote()
        if p.status().role != "replica":
            p.rejoin(d, lab.run.path / "recovery")
        p.wait_caught_up(d)
        p.promote()
        d.replicate_from(p, seed=False)
    d.wait_caught_up(p)
    return p, d


def write_load(lab: Lab, name: str, url: str, seconds: float, interval: float = 0.05) -> Path:
    spec, out = keystone.writer_spec(lab, name, url, name, seconds, interval)
    lab.sup.launch(spec)
    return out


def wait_exit(lab: Lab, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while lab.sup.state(name) != "exited":
        assert time.monotonic() < deadline, f"{name} still running"
        time.sleep(0.1)


def acked(out: Path) -> set[str]:
    return {r["name"] for r in read_log(out) if r["outcome"] == "acked"}


def power_on(lab: Lab, disaster: PowerOff) -> None:
    disaster.revert()
    lab.sup.wait_ready("mariadb-primary")


def test_standby_stays_in_sync_under_keystone_write_load(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    out = write_load(lab, "load1", PRIMARY_URL, 5.0)
    lags = []
    while lab.sup.state("load1") != "exited":
        st = d.status(p)
        assert st.healthy_replica, st
        lags.append(st.lag_trx or 0)
        time.sleep(0.2)
    d.wait_caught_up(p, timeout_s=10)
    names = acked(out)
    print(f"{len(names)} projects created; replica behind at most {max(lags)} transaction(s)")
    assert len(names) >= 20
    assert names <= keystone.project_names(lab, "dr", "load1")
    assert p.checksums() == d.checksums()
    assert d.status(p).lag_trx == 0


def test_switchover_and_back_keeps_every_write(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    p.demote()
    refused = write_load(lab, "refused", PRIMARY_URL, 0.5, interval=0.2)
    wait_exit(lab, "refused")
    assert read_log(refused) and not acked(refused), "a demoted primary must refuse writes"
    assert keystone.project_names(lab, "primary", "refused") == set()
    d.wait_caught_up(p)
    d.promote()
    report = p.rejoin(d, lab.run.path / "recovery")
    assert report.errant_transactions == 0 and not report.reseeded
    out = write_load(lab, "load2", DR_URL, 2.0)
    wait_exit(lab, "load2")
    p.wait_caught_up(d)
    assert acked(out) and acked(out) <= keystone.project_names(lab, "primary", "load2")
    assert p.checksums() == d.checksums()
    p, d = primary_in_charge(lab)
    assert p.status().role == "primary" and d.status().healthy_replica
    assert p.checksums() == d.checksums()


def test_token_issued_at_primary_validates_at_dr_after_failover(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    # Twice: after one rotation the new primary key is the old staged key, which the DR
    # site already has; after two, tokens are signed with a key only the primary knows.
    for _ in range(2):
        keystone.manage(
            lab, "primary", "fernet_rotate", "--keystone-user", "root", "--keystone-group", "root"
        )
    src, dst = (keystone.key_dirs(lab, h)["fernet"] for h in ("primary", "dr"))
    assert snapshot(src).checksum != snapshot(dst).checksum
    token = issue_token(lab, PRIMARY_URL)
    assert validate(lab, DR_URL, token) != 200, "signed with a key the DR site does not have"
    changed = apply(dst, snapshot(src))  # what the standby's agent does (test_failover.py)
    assert changed["written"] and snapshot(src).checksum == snapshot(dst).checksum
    off = PowerOff(lab, host="primary")
    off.inject()
    try:
        d.promote()
        assert validate(lab, DR_URL, token) == 200
    finally:
        power_on(lab, off)
        p.rejoin(d, lab.run.path / "recovery")


def test_async_loss_is_exactly_what_the_recovery_file_holds(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    cut = Partition(lab, hosts=["primary"], peers=["dr"])
    cut.inject()  # replication link down: what the primary acknowledges now stays there
    try:
        out = write_load(lab, "lost", PRIMARY_URL, 2.0)
        wait_exit(lab, "lost")
        off = PowerOff(lab, host="primary")
        off.inject()
    finally:
        cut.revert()
    try:
        d.promote()
        after = write_load(lab, "after", DR_URL, 1.0)
        wait_exit(lab, "after")
    finally:
        power_on(lab, off)
    with pytest.raises(ErrantTransactions, match="rejoin saves them first"):
        p.replicate_from(d, seed=False)  # refused: it would silently drop them
    report = p.rejoin(d, lab.run.path / "recovery")
    missing = acked(out) - keystone.project_names(lab, "dr", "lost")
    assert report.recovery_file is not None
    text = report.recovery_file.read_text()
    saved = set(re.findall(r"@\d+='(lost-\d{6})'", text))
    print(
        f"acked {len(acked(out))}, missing on DR {len(missing)}, saved {len(saved)} "
        f"in {report.errant_transactions} errant transaction(s)"
    )
    assert missing, "the partition should have kept acknowledged writes from the DR site"
    assert saved == missing
    p.wait_caught_up(d)
    assert p.checksums() == d.checksums()
    assert acked(after) <= keystone.project_names(lab, "primary", "after")


Pair = tuple[MariaDBReplicator, MariaDBReplicator]


def semi_sync_pair(lab: Lab, timeout_ms: int = 2000) -> Pair:
    """Primary in charge, both sides switched to semi-sync, the standby acknowledging."""
    primary_in_charge(lab)
    p, d = reps(lab, semi=True, timeout_ms=timeout_ms)
    p.promote()
    d.replicate_from(p, seed=False)
    deadline = time.monotonic() + 10
    while p.status().semi_sync != "on":
        assert time.monotonic() < deadline, p.status()
        time.sleep(0.1)
    return p, d


def test_semi_sync_loses_no_acknowledged_write(lab: Lab) -> None:
    p, d = semi_sync_pair(lab)
    out = write_load(lab, "semi", PRIMARY_URL, 6.0)
    time.sleep(2.5)
    off = PowerOff(lab, host="primary")
    off.inject()  # mid-load
    try:
        d.promote()
        got = acked(out)
        missing = got - keystone.project_names(lab, "dr", "semi")
        print(f"semi-sync: {len(got)} acknowledged before the power-off, {len(missing)} missing")
        assert len(got) >= 3
        assert missing == set()
    finally:
        power_on(lab, off)
    report = p.rejoin(d, lab.run.path / "recovery")
    assert report.errant_transactions <= 2  # at most the in-flight, unacknowledged ones
    p.wait_caught_up(d)
    assert p.checksums() == d.checksums()


def test_semi_sync_fall_back_to_async_is_reported(lab: Lab) -> None:
    p, d = semi_sync_pair(lab)
    with Partition(lab, hosts=["primary"], peers=["dr"]):
        t0 = time.monotonic()
        p.execute("CREATE TABLE IF NOT EXISTS keystone.fallback (id INT PRIMARY KEY)")
        waited = time.monotonic() - t0
        assert p.status().semi_sync == "fell back to async"
    print(f"the commit waited {waited:.2f} s for the standby before falling back")
    assert 1.5 <= waited <= 5  # the configured 2 s timeout
    d.wait_caught_up(p, timeout_s=20)


def test_a_fence_under_semi_sync_acknowledges_no_commit_the_standby_lacks(lab: Lab) -> None:
    """Commits queue behind the one waiting for the standby's acknowledgement (binary log
    group commit). Ending that one lets those queued behind it finish, and MariaDB answers OK
    to those still connected: writes the standby never got. Many writers on connections of
    their own, the standby cut off, then the fence: no commit may be acknowledged after the
    cut (nothing can acknowledge it)."""
    p, d = semi_sync_pair(lab, timeout_ms=60_000)
    password = secrets.token_hex(12)
    p.execute(
        "CREATE TABLE IF NOT EXISTS keystone.fence_probe (id INT PRIMARY KEY)",
        ("CREATE USER IF NOT EXISTS 'fence_w'@'localhost' IDENTIFIED BY %s", (password,)),
        "GRANT INSERT ON keystone.fence_probe TO 'fence_w'@'localhost'",
    )
    d.wait_caught_up(p)
    sock = str(mariadb.socket_path(lab, "primary"))
    acks: list[tuple[int, float]] = []
    stop = threading.Event()
    ids = itertools.count(1)

    def writer() -> None:
        """One long-lived connection, as a service's pool holds them: which session leads a
        commit group is then unrelated to the order of their ids."""
        deadline = time.monotonic() + 30  # bounded, whatever happens
        conn = None
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = pymysql.connect(
                        unix_socket=sock,
                        user="fence_w",
                        password=password,
                        database="keystone",
                        autocommit=True,
                        read_timeout=40,
                    )
                with conn.cursor() as cur:
                    i = next(ids)
                    cur.execute("INSERT INTO fence_probe VALUES (%s)", (i,))
                acks.append((i, time.time()))
            except pymysql.err.MySQLError:
                conn = None  # ended by the fence, or refused: read-only
                time.sleep(0.05)
            time.sleep(0.005 * random.random())
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    cut = Partition(lab, hosts=["primary"], peers=["dr"])
    try:
        cut.inject()
        t_cut = time.time()
        time.sleep(1.5)  # every writer is now waiting for the standby
        waiting = p.query(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'fence_w'"
        )[0]["n"]
        took = p.demote()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=45)
    finally:
        stop.set()
        cut.revert()
    before = [i for i, t in acks if t < t_cut]
    late = [(i, round(t - t_cut, 3)) for i, t in acks if t > t_cut + 0.5]
    print(
        f"fence: {waiting} writer sessions waiting, {len(before)} acknowledged before the "
        f"cut, fenced in {took:.3f} s, {len(late)} acknowledged after the cut"
    )
    assert len(before) >= 20 and waiting >= 8
    assert late == [], "acknowledged without the standby (seconds after the cut)"
    d.wait_caught_up(p, timeout_s=30)
    reps(lab, semi=True)[0].promote()  # writes open again, the 2 s timeout back
    p.execute("DROP TABLE keystone.fence_probe", "DROP USER 'fence_w'@'localhost'")
    d.wait_caught_up(p)


def test_bad_credentials_and_unreachable_peer_change_nothing(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    ep = p.endpoint
    wrong = MariaDBReplicator(
        DbEndpoint(ep.site, ep.host, ep.port, ep.user, "wrong", ep.unix_socket)
    )
    with pytest.raises(ReplicationError, match="cannot connect to MariaDB of site primary"):
        wrong.promote()
    gone = MariaDBReplicator(DbEndpoint("nowhere", "198.18.3.1", 3306, "draas", "x"))
    with pytest.raises(ReplicationError) as info:
        d.replicate_from(gone, seed=False)
    assert info.value.retryable
    st = d.status(p)
    # The refused call left the DR site exactly as it was: replicating from the primary.
    assert st.healthy_replica and st.source == "198.18.1.10" and st.read_only
    d.wait_caught_up(p)


CATALOG_SCRIPT = """
import json, sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
pw = open(sys.argv[2]).read().strip()
auth = v3.Password(auth_url=sys.argv[1], username="admin", password=pw, project_name="admin",
                   user_domain_name="Default", project_domain_name="Default")
s = session.Session(auth=auth)
base = sys.argv[1].removesuffix("/v3") + "/v3"
if sys.argv[3] == "create":
    svc = s.post(base + "/services", json={"service": {"type": "probe", "name": "probe"}}).json()
    ep = {"service_id": svc["service"]["id"], "interface": "public",
          "url": "http://198.18.1.10:9999/probe", "region_id": "RegionOne"}
    s.post(base + "/endpoints", json={"endpoint": ep})
print(json.dumps(sorted(e["url"] for e in s.get(base + "/endpoints").json()["endpoints"])))
"""


def test_catalog_endpoints_follow_the_site_and_dns_named_ones_stay(lab: Lab) -> None:
    import json
    import sys

    from draas.lab.secrets import secret_file

    primary_in_charge(lab)
    pw = str(secret_file(lab.run, "keystone-admin"))

    def run(*argv: str) -> str:
        proc = lab.exec(
            "client", [sys.executable, *argv], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return str(proc.stdout)

    before = json.loads(run("-c", CATALOG_SCRIPT, keystone.AUTH_URL, pw, "create"))
    assert "http://198.18.1.10:9999/probe" in before
    rewrite = [
        "-m",
        "draas.replication.catalog",
        "--auth-url",
        keystone.AUTH_URL,
        "--password-file",
        pw,
        "--from",
        "http://198.18.1.10",
        "--to",
        "http://198.18.2.10",
    ]
    changes = json.loads(run(*rewrite))
    assert [(c["old_url"], c["new_url"]) for c in changes] == [
        ("http://198.18.1.10:9999/probe", "http://198.18.2.10:9999/probe")
    ]
    after = json.loads(run("-c", CATALOG_SCRIPT, keystone.AUTH_URL, pw, "list"))
    assert "http://198.18.2.10:9999/probe" in after
    assert keystone.AUTH_URL in after  # the DNS-named identity endpoint did not move
    assert json.loads(run(*rewrite)) == []  # idempotent


def test_an_empty_standby_is_seeded(lab: Lab) -> None:
    p, d = primary_in_charge(lab)
    # One session: the drop stays out of the binary log, as an operator's wipe would.
    d.execute("STOP SLAVE", "SET SESSION sql_log_bin = 0", "DROP DATABASE keystone")
    assert d.checksums() == {}
    d.replicate_from(p, seed=True)
    d.wait_caught_up(p)
    assert p.checksums() == d.checksums() != {}


def test_a_replica_set_up_by_hand_is_made_to_acknowledge_in_semi_sync_mode(lab: Lab) -> None:
    """A replica started without semi-sync's replica side (docs/install.md's first replica)
    could never be named the synchronous standby: in semi-sync mode the agent's replicator
    turns it on and reconnects the receiver; in async mode it leaves it alone."""
    p, d = primary_in_charge(lab)
    mariadb.sql(
        lab,
        "dr",
        "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
        "STOP SLAVE IO_THREAD",
        "START SLAVE IO_THREAD",
    )

    def acknowledging(want: bool) -> None:
        deadline = time.monotonic() + 15
        while d.status().acknowledging is not want:
            assert time.monotonic() < deadline, f"acknowledging never became {want}"
            time.sleep(0.2)

    acknowledging(False)
    assert d.acknowledge() is False  # async mode: not its business
    semi = reps(lab, semi=True)[1]
    assert semi.acknowledge() is True
    acknowledging(True)
    assert semi.acknowledge() is False  # already acknowledging: nothing to do
    d.wait_caught_up(p)  # the applier ran on; the receiver is back
    st = d.status()
    assert st.source == lab.topo.host("primary").address and st.sql_running == "Yes"
