"""One contract for every coordination store: the in-memory one (fake clock) and etcd (a real
single-member etcd on loopback, started by the fixture)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from draas.clock import FakeClock
from draas.coordination import (
    ActiveRecord,
    CoordinationStore,
    DatabaseReport,
    Event,
    Observation,
    Pause,
    Seen,
    SyncRecord,
)
from draas.coordination.memory import MemoryStore
from draas.errors import CoordinationError, StaleEpoch
from draas.lab.pki import Pki, make_pki
from draas.testkit import event, free_port, observation, wait_port

TTL = 2.0  # etcd's minimum lease TTL with default timings


@contextlib.contextmanager
def running_etcd(pki: Pki | None = None, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """A single-member etcd on loopback (``pki``: clients over TLS with a certificate;
    ``extra``: more etcd flags)."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: run scripts/setup")
    data = tempfile.mkdtemp(prefix="draas-etcd-")
    client, peer = free_port(), free_port()
    url = f"{'https' if pki else 'http'}://127.0.0.1:{client}"
    tls = []
    if pki is not None:
        tls = ["--cert-file", str(pki.server_cert), "--key-file", str(pki.server_key)]
        tls += ["--trusted-ca-file", str(pki.ca), "--client-cert-auth"]
    proc = subprocess.Popen(
        [
            "etcd",
            "--name",
            "t",
            "--data-dir",
            data,
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"t=http://127.0.0.1:{peer}",
            "--log-level",
            "error",
            *tls,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", client, what="etcd")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def etcd_url() -> Iterator[str]:
    with running_etcd() as url:
        yield url


@dataclass
class Kit:
    store: CoordinationStore
    wait: Callable[[float], object]


@pytest.fixture(params=["memory", pytest.param("etcd", marks=pytest.mark.lab)])
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param == "memory":
        clock = FakeClock()
        return Kit(MemoryStore(clock), clock.advance)
    from draas.coordination.etcd import EtcdStore

    url = request.getfixturevalue("etcd_url")
    prefix = f"/t{time.time_ns()}/"  # each test its own key space
    return Kit(EtcdStore([url], prefix=prefix), time.sleep)


def test_first_take_gets_epoch_one(kit: Kit) -> None:
    s = kit.store
    assert s.active() is None and s.last_epoch() == 0
    rec = s.take_active("primary", "agent-a", 0, TTL)
    assert (rec.site, rec.epoch, rec.holder) == ("primary", 1, "agent-a")
    assert s.active() == rec and s.last_epoch() == 1


def test_stale_epoch_and_held_record_are_refused_and_change_nothing(kit: Kit) -> None:
    s = kit.store
    rec = s.take_active("primary", "agent-a", 0, TTL)
    with pytest.raises(StaleEpoch):
        s.take_active("dr", "agent-b", 1, TTL)  # held by agent-a
    with pytest.raises(StaleEpoch):
        s.take_active("dr", "agent-b", 0, TTL)  # stale epoch
    assert s.active() == rec and s.last_epoch() == 1


def test_expired_lease_frees_the_record_and_the_epoch_grows(kit: Kit) -> None:
    s = kit.store
    old = s.take_active("primary", "agent-a", 0, TTL)
    kit.wait(TTL + 1.5)
    assert s.active() is None
    assert s.last_epoch() == 1  # the epoch survives the record
    last = s.last_active()  # and so does who held it
    assert last is not None and (last.site, last.epoch, last.holder) == ("primary", 1, "agent-a")
    assert s.renew_active(old, TTL) is False  # the old holder learns it lost
    new = s.take_active("dr", "agent-b", 1, TTL)
    assert new.epoch == 2 and s.active() == new


def test_renewal_keeps_the_record(kit: Kit) -> None:
    s = kit.store
    rec = s.take_active("primary", "agent-a", 0, TTL)
    for _ in range(3):
        kit.wait(TTL * 0.6)
        assert s.renew_active(rec, TTL)
    assert s.active() == rec


def test_hand_over_bumps_the_epoch_and_fences_the_old_record(kit: Kit) -> None:
    s = kit.store
    old = s.take_active("primary", "agent-a", 0, TTL)
    new = s.hand_over(old, "dr", "agent-b", TTL)
    assert new.epoch == 2 and s.active() == new
    assert s.renew_active(old, TTL) is False
    with pytest.raises(StaleEpoch):
        s.hand_over(old, "primary", "agent-a", TTL)  # a stale record cannot move it back
    assert s.active() == new


def test_the_named_standby_takes_a_held_record_only_as_it_is(kit: Kit) -> None:
    """A promotion that does not wait for the holder's lease: compare-and-swap on the record,
    the epoch and the sync record; the old holder's renewals fail from then on."""
    s = kit.store
    old = s.take_active("primary", "agent-a", 0, TTL)
    named = s.set_sync(old, None, SyncRecord(1, "dr", 1.0, "caught up"))
    stale = ActiveRecord("primary", 1, "agent-x", old.lease)
    with pytest.raises(StaleEpoch):
        s.take_active("dr", "agent-b", 1, TTL, named=named, replace=stale)  # not the record
    with pytest.raises(StaleEpoch):  # not the sync record any more
        s.take_active("dr", "agent-b", 1, TTL, named=SyncRecord(1, None, 2.0), replace=old)
    assert s.active() == old and s.last_epoch() == 1
    new = s.take_active("dr", "agent-b", 1, TTL, named=named, replace=old)
    assert (new.site, new.epoch, new.holder) == ("dr", 2, "agent-b")
    assert s.active() == new and s.last_epoch() == 2
    assert s.renew_active(old, TTL) is False  # the old holder learns it lost
    with pytest.raises(StaleEpoch):  # nor can anyone take it again from the old record
        s.take_active("dr", "agent-c", 1, TTL, named=named, replace=old)
    with pytest.raises(StaleEpoch):  # the old holder cannot degrade under its epoch
        s.set_sync(old, named, SyncRecord(1, None, 3.0, "waited"))
    kit.wait(TTL * 0.6)
    assert s.renew_active(new, TTL) and s.active() == new


def test_a_watch_returns_the_record_as_soon_as_it_moves(kit: Kit) -> None:
    s = kit.store
    old = s.take_active("primary", "agent-a", 0, TTL)
    t0 = time.monotonic()
    assert s.wait_active(old, 0.3) == old  # nothing moved: as it is, after the timeout
    assert time.monotonic() - t0 >= 0.25
    moved: list[ActiveRecord] = []
    mover = threading.Timer(0.3, lambda: moved.append(s.hand_over(old, "dr", "agent-b", TTL)))
    mover.start()
    t0 = time.monotonic()
    got = s.wait_active(old, 10.0)
    waited = time.monotonic() - t0
    mover.join()
    assert got is not None and got.same_grant(moved[0]) and got.site == "dr"
    assert waited < 5.0  # woken by the move, not by the timeout
    assert s.wait_active(None, 10.0) == s.active()  # a record where none was seen: at once


def test_release_only_by_the_holder(kit: Kit) -> None:
    s = kit.store
    old = s.take_active("primary", "agent-a", 0, TTL)
    new = s.hand_over(old, "dr", "agent-b", TTL)
    s.release_active(old)  # stale: ignored
    assert s.active() == new
    s.release_active(new)
    assert s.active() is None and s.last_epoch() == 2
    last = s.last_active()
    assert last is not None and (last.site, last.epoch, last.holder) == ("dr", 2, "agent-b")


def test_a_silent_observer_drops_out(kit: Kit) -> None:
    s = kit.store
    s.publish(observation("witness", 1.0, primary=("down", 1.0)), TTL)
    s.publish(observation("dr", 1.0, primary=("down", 1.0)), TTL)
    assert set(s.observations()) == {"witness", "dr"}
    kit.wait(1.0)
    up = observation("dr", 2.0, primary=("up", 2.0))
    s.publish(up, 2 * TTL)  # dr keeps publishing, the witness went silent
    kit.wait(TTL + 0.5)  # past the witness' expiry (with etcd's slack), within dr's
    assert s.observations() == {"dr": up}


def test_a_stopping_agent_withdraws_its_observation_at_once(kit: Kit) -> None:
    s = kit.store
    s.publish(observation("witness", 1.0, primary=("up", 1.0)), TTL)
    s.publish(observation("dr", 1.0, primary=("up", 1.0)), TTL)
    s.withdraw("witness")
    s.withdraw("nobody")  # nothing published: nothing to do
    assert set(s.observations()) == {"dr"}
    again = observation("witness", 2.0, primary=("up", 2.0))
    s.publish(again, TTL)  # it runs again: a new lease
    assert s.observations()["witness"] == again


def test_an_observation_comes_back_as_it_was_published(kit: Kit) -> None:
    s = kit.store
    report = DatabaseReport("replica", True, read_only=True, lag_s=0.5, lag_trx=2, semi_sync="on")
    sent = Observation("site-dr", 5.0, {"primary": Seen("up", 1.0)}, database=report)
    routed = Observation("fe-a", 5.0, {"dr": Seen("down", 2.0, 1.5)}, routes_to="dr")
    s.publish(sent, TTL)
    s.publish(routed, TTL)
    assert s.observations() == {"site-dr": sent, "fe-a": routed}


def test_events_keep_their_order_and_carry_the_id_they_were_stored_under(kit: Kit) -> None:
    s = kit.store
    ids = [s.append_event(event("r", f"s{i}", "done", float(i), n=i)) for i in range(5)]
    got = s.events()
    assert [e.extra["n"] for e in got] == [0, 1, 2, 3, 4]
    assert [e.id for e in got] == ids and sorted(ids) == ids and len(set(ids)) == 5
    assert [e.step for e in got] == [f"s{i}" for i in range(5)] and got[2].ts == 2.0


def test_an_event_keeps_its_fields_through_the_store(kit: Kit) -> None:
    sent = Event(
        ts=10.5,
        node="site-dr",
        runbook="failover",
        run="failover-dr-from-e1",
        step="promote",
        outcome="failed",
        epoch=2,
        target="dr",
        detail="why",
        error="boom",
        duration_s=0.25,
        extra={"by": "api", "failed_checks": ["quorum"]},
    )
    eid = kit.store.append_event(sent)
    (got,) = kit.store.events()
    assert got == dataclasses.replace(sent, id=eid)


def test_the_memory_store_can_be_made_unreachable() -> None:
    s = MemoryStore(FakeClock())
    s.reachable = False
    with pytest.raises(CoordinationError, match="unreachable"):
        s.active()
    with pytest.raises(CoordinationError):
        s.append_event(event("r", "s", "done"))
    s.reachable = True
    assert s.active() is None and s.events() == []


@pytest.mark.lab
def test_unreachable_etcd_is_a_clear_retryable_error() -> None:
    from draas.coordination.etcd import EtcdStore

    s = EtcdStore([f"http://127.0.0.1:{free_port()}"], timeout_s=0.5)
    with pytest.raises(CoordinationError, match="failed on every endpoint") as info:
        s.active()
    assert info.value.retryable


def test_one_controller_at_a_time_and_another_takes_over_when_it_goes_silent(kit: Kit) -> None:
    s = kit.store
    assert s.controller() is None
    assert s.claim_controller("witness", TTL)
    assert not s.claim_controller("fe-a", TTL)  # held: refused, nothing changed
    assert s.controller() == "witness"
    for _ in range(2):
        kit.wait(TTL * 0.6)
        assert s.claim_controller("witness", TTL)  # renewed
    assert s.controller() == "witness"
    kit.wait(TTL + 1.5)  # the holder died: its lease expires
    assert s.controller() is None
    assert s.claim_controller("fe-a", TTL) and s.controller() == "fe-a"
    assert not s.claim_controller("witness", TTL)  # the old holder learns it lost


def test_only_the_controller_releases_its_lease(kit: Kit) -> None:
    s = kit.store
    assert s.claim_controller("witness", TTL)
    s.release_controller("fe-a")
    assert s.controller() == "witness"
    s.release_controller("witness")
    assert s.controller() is None
    assert s.claim_controller("fe-a", TTL)


def test_events_come_in_the_stores_order_whatever_the_writers_clocks(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer ten minutes fast stores an event first, a correct one second: the log keeps
    the order they reached the store in, and says it (``order``)."""
    s = kit.store
    if not isinstance(s, MemoryStore):
        import draas.coordination.etcd as etcd_module

        real = time.time_ns
        monkeypatch.setattr(
            etcd_module,
            "time",
            type(
                "T",
                (),
                {
                    "time_ns": staticmethod(lambda: real() + 600 * 10**9),
                    "time": staticmethod(lambda: real() / 1e9 + 600),
                },
            ),
        )
    s.append_event(
        Event(ts=time.time() + 600, node="fast", runbook="m", run="r", step="a", outcome="x")
    )
    monkeypatch.undo()
    s.append_event(Event(ts=time.time(), node="right", runbook="m", run="r", step="b", outcome="x"))
    got = s.events()
    assert [e.node for e in got] == ["fast", "right"]
    assert got[0].order is not None and got[1].order is not None
    assert got[0].order < got[1].order


def test_a_pause_is_read_back_replaced_and_cleared(kit: Kit) -> None:
    s = kit.store
    assert s.pause() is None and s.clear_pause() is False
    first = Pause("patching primary", "site-dr:api", 10.0)
    s.set_pause(first)
    assert s.pause() == first
    second = Pause("patching dr", "witness:api", 11.0, for_s=600.0)
    s.set_pause(second)  # replaces
    assert s.pause() == second
    assert s.clear_pause() is True and s.pause() is None


def test_a_pause_with_an_end_expires_by_the_stores_clock(kit: Kit) -> None:
    s = kit.store
    s.set_pause(Pause("short", "site-dr:api", 1.0, for_s=TTL))
    assert s.pause() is not None
    kit.wait(TTL + 1.5)  # etcd: the lease's whole seconds and its slack
    assert s.pause() is None
    s.set_pause(Pause("open-ended", "site-dr:api", 2.0))
    kit.wait(TTL + 1.5)
    assert s.pause() is not None  # no end: until cleared


@pytest.mark.lab
def test_etcd_over_tls_with_a_client_certificate(tmp_path: Path) -> None:
    from draas.coordination.etcd import EtcdStore, Tls

    pki = make_pki(tmp_path / "pki", ["127.0.0.1"])
    with running_etcd(pki) as url:
        tls = Tls(str(pki.ca), str(pki.client_cert), str(pki.client_key))
        store = EtcdStore([url], prefix="/tls/", tls=tls)
        deadline = time.monotonic() + 20
        while True:  # the port opens before the member has elected itself
            try:
                store.last_epoch()
                break
            except CoordinationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        rec = store.take_active("primary", "site-a", 0, TTL)
        assert store.active() == rec and store.last_epoch() == 1
        for refused in (Tls(str(pki.ca)), Tls()):  # no client certificate; no trusted CA
            with pytest.raises(CoordinationError, match="read active failed on every endpoint"):
                EtcdStore([url], prefix="/tls/", tls=refused).active()
        plain = url.replace("https:", "http:")
        with pytest.raises(CoordinationError):
            EtcdStore([plain], prefix="/tls/").active()


@pytest.mark.lab
def test_etcd_tells_its_clock_within_a_second(etcd_url: str) -> None:
    """etcd's answers carry a Date header: after a few reads the store's clock is known (on
    this machine, the same clock as ours), so an agent has one more clock to check its own."""
    from draas.coordination.etcd import EtcdStore

    store = EtcdStore([etcd_url], prefix=f"/t{time.time_ns()}/")
    assert store.clock_offset() is None  # nothing read yet
    for _ in range(5):
        store.last_epoch()
        time.sleep(0.3)
    off = store.clock_offset()
    assert off is not None and abs(off) < 1.0, off
    assert MemoryStore(FakeClock()).clock_offset() is None


def etcdctl(url: str, *args: str) -> str:
    got = subprocess.run(
        ["etcdctl", "--endpoints", url, *args],
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert got.returncode == 0, (args, got.stdout, got.stderr)
    return got.stdout


@pytest.mark.lab
def test_etcd_with_user_authentication(tmp_path: Path) -> None:
    """etcd with auth enabled (the commands of docs/operations.md): the configured user logs
    in and works under its prefix; no login, a wrong password or a key outside the user's
    prefix is refused with etcd's reason; an expired token is replaced without an error."""
    from draas.coordination.etcd import EtcdStore, Login

    root_pw, draas_pw = secrets.token_hex(8), secrets.token_hex(8)
    password = tmp_path / "etcd-password"
    password.write_text(draas_pw + "\n")
    password.chmod(0o600)
    with running_etcd(extra=("--auth-token-ttl", "2")) as url:
        etcdctl(url, "endpoint", "health")
        etcdctl(url, "user", "add", f"root:{root_pw}")
        etcdctl(url, "user", "add", f"draas:{draas_pw}")
        etcdctl(url, "role", "add", "draas")
        etcdctl(url, "role", "grant-permission", "draas", "--prefix=true", "readwrite", "/draas/")
        etcdctl(url, "user", "grant-role", "draas", "draas")
        etcdctl(url, "auth", "enable")

        store = EtcdStore([url], prefix="/draas/", login=Login("draas", str(password)))
        rec = store.take_active("primary", "site-a", 0, 30)  # outlives the token
        assert store.active() == rec and store.renew_active(rec, 30)
        store.append_event(event("failover-dr-e1", "promote", "done"))
        assert [e.step for e in store.events()] == ["promote"]
        time.sleep(3)  # the token expires unused (--auth-token-ttl 2)
        assert store.active() == rec  # logged in again, no error

        with pytest.raises(CoordinationError, match="user name is empty"):
            EtcdStore([url], prefix="/draas/").active()
        wrong = tmp_path / "wrong"
        wrong.write_text("not-it")
        with pytest.raises(CoordinationError, match="authentication failed"):
            EtcdStore([url], prefix="/draas/", login=Login("draas", str(wrong))).active()
        with pytest.raises(CoordinationError, match="permission denied"):
            EtcdStore([url], prefix="/other/", login=Login("draas", str(password))).active()
        with pytest.raises(CoordinationError, match="coordination.password_file .*No such file"):
            EtcdStore([url], prefix="/draas/", login=Login("draas", "/nonexistent")).active()
