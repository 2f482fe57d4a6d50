"""The etcd coordination store, through etcd's v3 JSON gateway with ``etcd3gw``.

Keys under the configured prefix:

    <prefix>epoch              the last epoch granted (plain key: survives lease expiry)
    <prefix>active             the active record (JSON), attached to its holder's lease
    <prefix>sync               who may be promoted (JSON, plain key), written by the holder only
    <prefix>position           the holder's last GTID position (JSON, plain key)
    <prefix>controller         the node that runs the runbooks, attached to its own lease
    <prefix>observers/<name>   each observer's latest view, attached to that observer's lease
    <prefix>events/<time>      the event log

Every change of the active record is one transaction comparing the epoch key (and the record,
or its absence) before writing both, so two contenders can never both win.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from draas.coordination import (
    ActiveRecord,
    CoordinationStore,
    Event,
    Observation,
    Pause,
    Position,
    SyncRecord,
    another_grant,
)
from draas.coordination.servertime import ServerTime, parse_date
from draas.errors import CoordinationError, StaleEpoch

with warnings.catch_warnings():
    # etcd3gw imports futurist, which imports eventlet, which warns that it is deprecated
    # (with a Warning subclass of its own).
    warnings.simplefilter("ignore")
    import etcd3gw
    from etcd3gw.lease import Lease

T = TypeVar("T")
CONNECT_S = 0.3  # the longest a connection to a member may take


def nearest_first(endpoints: Sequence[str], prefer: Sequence[str]) -> list[str]:
    """``endpoints`` with those on the ``prefer`` hosts first (in that order), the rest as
    configured."""

    def rank(url: str) -> int:
        host = urlsplit(url).hostname or ""
        return prefer.index(host) if host in prefer else len(prefer)

    return sorted(endpoints, key=rank)  # stable: the configured order within a rank


def _reason(exc: BaseException) -> str:
    """What went wrong, in etcd's words when it answered: etcd3gw keeps etcd's error body
    apart (``detail_text``) and its own text may be only the HTTP reason; the requests error
    it wraps says more when there was no answer."""
    said = str(exc) or str(exc.__context__ or "") or "no detail"
    detail = getattr(exc, "detail_text", None)
    if isinstance(detail, str) and detail:
        try:
            body = json.loads(detail)
        except ValueError:
            body = None
        told = body.get("error") or body.get("message") if isinstance(body, dict) else detail
        if told:
            said = f"{said}: {told}" if said != "no detail" else str(told)
    return said


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Tls:
    """The files of a TLS connection to etcd (None: not used)."""

    ca: str | None = None  # the CA that signed the members' certificates
    cert: str | None = None  # this client's certificate and key (etcd --client-cert-auth)
    key: str | None = None


@dataclass(frozen=True)
class Login:
    """etcd user authentication (etcd ``auth enable``): the user and the file holding its
    password, read again at each authentication (a rotated password is picked up)."""

    user: str
    password_file: str


class EtcdStore(CoordinationStore):
    def __init__(
        self,
        endpoints: Sequence[str],
        prefix: str = "/draas/",
        timeout_s: float = 2.0,
        tls: Tls | None = None,
        login: Login | None = None,
    ) -> None:
        if not endpoints:
            raise CoordinationError("etcd store: no endpoint configured", retryable=False)
        self.tls = tls or Tls()
        self.login = login
        self.endpoints = list(endpoints)
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.timeout_s = timeout_s
        self._current = 0
        self._clients: dict[str, Any] = {}
        self._obs_leases: dict[str, tuple[int, float]] = {}  # observer -> (lease, its TTL)
        self._time = ServerTime()  # etcd's clock, from its answers' Date headers

    # -- plumbing ------------------------------------------------------------------------------
    def _client(self, url: str) -> Any:
        if url not in self._clients:
            u = urlsplit(url)
            # Our own session: requests lets $REQUESTS_CA_BUNDLE override a session's CA file
            # (and picks up proxies) unless it ignores the environment.
            session = requests.Session()
            session.trust_env = False
            if self.tls.ca is not None:
                session.verify = self.tls.ca
            if self.tls.cert is not None and self.tls.key is not None:
                session.cert = (self.tls.cert, self.tls.key)
            session.hooks["response"].append(self._note_time)
            self._clients[url] = etcd3gw.client(
                host=u.hostname or "localhost",
                port=u.port or 2379,
                protocol=u.scheme or "http",
                timeout=self.timeout_s,
                session=session,
            )
            # A member that is gone is given up on after a short connect timeout (a live
            # one accepts within a round trip); an answer may take the full timeout.
            self._clients[url].timeout = (min(self.timeout_s, CONNECT_S), self.timeout_s)
            if self.login is not None:
                try:
                    self._authenticate(self._clients[url])
                except Exception:
                    del self._clients[url]  # tried again, whole, on the next call
                    raise
        return self._clients[url]

    def _authenticate(self, client: Any) -> None:
        """Log in as the configured user; the member's token goes on every later request."""
        assert self.login is not None
        try:
            with open(self.login.password_file, encoding="utf-8") as f:
                password = f.read().strip()
        except OSError as exc:
            raise CoordinationError(
                f"coordination.password_file {self.login.password_file}: {exc.strerror}",
                retryable=False,
            ) from exc
        got = client.post(
            client.get_url("/auth/authenticate"),
            json={"name": self.login.user, "password": password},
        )
        client.session.headers["Authorization"] = str(got["token"])

    def _note_time(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every answer's Date header (etcd's Go server sets one) bounds etcd's clock."""
        self._time.answer(
            parse_date(response.headers.get("Date")),
            time.time(),
            response.elapsed.total_seconds(),
        )

    def clock_offset(self) -> float | None:
        return self._time.offset()

    def _on(self, url: str, fn: Callable[[Any], T]) -> T:
        """``fn`` on one member; logged in again once when the member forgot our token (it
        restarted, or the token expired unused: etcd's --auth-token-ttl)."""
        try:
            return fn(self._client(url))
        except StaleEpoch:
            raise
        except Exception as exc:
            if self.login is None or "invalid auth token" not in _reason(exc):
                raise
        self._clients.pop(url, None)
        return fn(self._client(url))

    def _do(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` on a reachable member, trying each endpoint once."""
        errors = []
        for i in range(len(self.endpoints)):
            url = self.endpoints[(self._current + i) % len(self.endpoints)]
            try:
                result = self._on(url, fn)
            except StaleEpoch:
                raise
            except Exception as exc:  # etcd3gw raises requests' and its own errors
                said = _reason(exc)
                errors.append(f"{url}: {type(exc).__name__}: {said[:300]}")
                continue
            self._current = (self._current + i) % len(self.endpoints)
            return result
        raise CoordinationError(f"etcd {what} failed on every endpoint: {'; '.join(errors)}")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _txn(
        self, client: Any, compare: list[dict[str, Any]], success: list[dict[str, Any]]
    ) -> bool:
        result = client.transaction({"compare": compare, "success": success, "failure": []})
        return bool(result.get("succeeded", False))

    def _grant(self, client: Any, ttl_s: float) -> int:
        return int(client.lease(ttl=max(1, math.ceil(ttl_s))).id)

    # -- the active record ---------------------------------------------------------------------
    def _read_active(self, client: Any) -> ActiveRecord | None:
        got = client.get(self._key("active"), metadata=True)
        if not got:
            return None
        value, meta = got[0]
        return ActiveRecord.from_json(value, lease=str(meta.get("lease", "")))

    def active(self) -> ActiveRecord | None:
        return self._do("read active", self._read_active)

    def last_active(self) -> ActiveRecord | None:
        got = self._do("read the last record", lambda c: c.get(self._key("last")))
        return ActiveRecord.from_json(got[0]) if got else None

    def last_epoch(self) -> int:
        got = self._do("read epoch", lambda c: c.get(self._key("epoch")))
        return int(got[0]) if got else 0

    def _epoch_is(self, epoch: int) -> dict[str, Any]:
        if epoch == 0:
            return {
                "key": _b64(self._key("epoch")),
                "result": "EQUAL",
                "target": "CREATE",
                "create_revision": 0,
            }
        return {
            "key": _b64(self._key("epoch")),
            "result": "EQUAL",
            "target": "VALUE",
            "value": _b64(str(epoch)),
        }

    def _writes(self, record: ActiveRecord, lease: int) -> list[dict[str, Any]]:
        return [
            {"request_put": {"key": _b64(self._key("epoch")), "value": _b64(str(record.epoch))}},
            {
                "request_put": {
                    "key": _b64(self._key("active")),
                    "value": _b64(record.to_json()),
                    "lease": lease,
                }
            },
            {"request_put": {"key": _b64(self._key("last")), "value": _b64(record.to_json())}},
        ]

    def _is(self, name: str, value: str | None) -> dict[str, Any]:
        """Compare: key ``name`` holds exactly ``value`` (None: it does not exist)."""
        if value is None:
            return {
                "key": _b64(self._key(name)),
                "result": "EQUAL",
                "target": "CREATE",
                "create_revision": 0,
            }
        return {
            "key": _b64(self._key(name)),
            "result": "EQUAL",
            "target": "VALUE",
            "value": _b64(value),
        }

    def take_active(
        self,
        site: str,
        holder: str,
        expected_epoch: int,
        ttl_s: float,
        named: SyncRecord | None = None,
        replace: ActiveRecord | None = None,
    ) -> ActiveRecord:
        def attempt(c: Any) -> ActiveRecord:
            lease = self._grant(c, ttl_s)
            record = ActiveRecord(site, expected_epoch + 1, holder, str(lease))
            held = None if replace is None else replace.to_json()
            compare = [self._is("active", held), self._epoch_is(expected_epoch)]
            if named is not None:
                compare.append(self._is("sync", named.to_json()))
            if self._txn(c, compare, self._writes(record, lease)):
                if replace is not None and replace.lease:
                    # Its holder's renewals now fail at once (the record moved anyway).
                    with contextlib.suppress(Exception):
                        Lease(int(replace.lease), c).revoke()
                return record
            Lease(lease, c).revoke()
            sync = "" if named is None else f", or {site} is no longer the named standby"
            raise StaleEpoch(
                f"cannot take the active record with epoch {expected_epoch}: "
                f"it is held ({self._read_active(c)}) or the epoch moved{sync}"
            )

        return self._do("take active", attempt)

    def hand_over(
        self, current: ActiveRecord, site: str, holder: str, ttl_s: float
    ) -> ActiveRecord:
        def attempt(c: Any) -> ActiveRecord:
            lease = self._grant(c, ttl_s)
            record = ActiveRecord(site, current.epoch + 1, holder, str(lease))
            same = {
                "key": _b64(self._key("active")),
                "result": "EQUAL",
                "target": "VALUE",
                "value": _b64(current.to_json()),
            }
            if self._txn(c, [same, self._epoch_is(current.epoch)], self._writes(record, lease)):
                if current.lease:
                    Lease(int(current.lease), c).revoke()
                return record
            Lease(lease, c).revoke()
            raise StaleEpoch(f"the active record is {self._read_active(c)}, not {current}")

        return self._do("hand over", attempt)

    def renew_active(self, record: ActiveRecord, ttl_s: float) -> bool:
        def attempt(c: Any) -> bool:
            live = self._read_active(c)
            if live is None or live != record:
                return False
            return int(Lease(int(record.lease), c).refresh()) > 0

        return self._do("renew active", attempt)

    def wait_active(self, seen: ActiveRecord | None, timeout_s: float) -> ActiveRecord | None:
        """A watch on the record's key from the revision it was read at, held open for at
        most ``timeout_s`` (one streaming request of etcd's gateway)."""

        def attempt(c: Any) -> ActiveRecord | None:
            got = c.post(c.get_url("/kv/range"), json={"key": _b64(self._key("active"))})
            kvs = got.get("kvs") or []
            current = None
            if kvs:
                value = base64.b64decode(kvs[0]["value"])
                current = ActiveRecord.from_json(value, lease=str(kvs[0].get("lease", "")))
            if another_grant(seen, current):
                return current
            start = int(got["header"]["revision"]) + 1
            watch = {"create_request": {"key": _b64(self._key("active")), "start_revision": start}}
            moved = False
            with (
                contextlib.suppress(requests.RequestException),
                c.session.post(
                    c.get_url("/watch"),
                    json=watch,
                    stream=True,
                    timeout=(self.timeout_s, timeout_s),
                ) as resp,
            ):
                deadline = time.monotonic() + timeout_s
                for chunk in resp.iter_content(chunk_size=None):
                    if b'"events"' in chunk or time.monotonic() >= deadline:
                        moved = b'"events"' in chunk
                        break
            return self._read_active(c) if moved else current

        return self._do("watch active", attempt)

    def lead_away_from(self, hosts: Sequence[str]) -> str:
        """When the raft leader is a member on ``hosts``, hand leadership to the first other
        member (in the configured order) that answers. etcd moves it at once, without an
        election; only the leader may be asked."""

        def attempt(c: Any) -> str:
            status = c.post(c.get_url("/maintenance/status"), json={})
            leader = int(status["leader"])
            members = c.post(c.get_url("/cluster/member/list"), json={})["members"]
            urls = {int(m["ID"]): m.get("clientURLs", []) for m in members}

            def on(member: int) -> bool:
                return any(urlsplit(u).hostname in hosts for u in urls.get(member, []))

            if not on(leader) or not urls.get(leader):
                return ""
            others = [m for m in urls if m != leader and not on(m) and urls[m]]
            for target in sorted(others, key=lambda m: self._rank(urls[m])):
                with contextlib.suppress(Exception):
                    lead = self._client(urls[leader][0])
                    lead.post(
                        lead.get_url("/maintenance/transfer-leadership"),
                        json={"targetID": str(target)},
                    )
                    return f"etcd leadership moved from {urls[leader][0]} to {urls[target][0]}"
            return ""

        return self._do("move the leader", attempt)

    def _rank(self, urls: Sequence[str]) -> int:
        ranks = [i for i, e in enumerate(self.endpoints) if e in urls]
        return min(ranks, default=len(self.endpoints))

    def release_active(self, record: ActiveRecord) -> None:
        def attempt(c: Any) -> None:
            if self._read_active(c) == record:
                Lease(int(record.lease), c).revoke()

        self._do("release active", attempt)

    # -- the controller lease ------------------------------------------------------------------
    def controller(self) -> str | None:
        got = self._do("read the controller", lambda c: c.get(self._key("controller")))
        return got[0].decode() if got else None

    def claim_controller(self, node: str, ttl_s: float) -> bool:
        def attempt(c: Any) -> bool:
            got = c.get(self._key("controller"), metadata=True)
            if got:
                value, meta = got[0]
                if value.decode() != node:
                    return False
                if int(Lease(int(meta.get("lease", 0)), c).refresh()) > 0:
                    return True  # renewed (an expired one is taken again below)
            lease = self._grant(c, ttl_s)
            put = {
                "request_put": {
                    "key": _b64(self._key("controller")),
                    "value": _b64(node),
                    "lease": lease,
                }
            }
            if self._txn(c, [self._is("controller", None)], [put]):
                return True
            Lease(lease, c).revoke()
            return False

        return self._do("claim the controller", attempt)

    def release_controller(self, node: str) -> None:
        def attempt(c: Any) -> None:
            got = c.get(self._key("controller"), metadata=True)
            if got:
                value, meta = got[0]
                if value.decode() == node:
                    Lease(int(meta.get("lease", 0)), c).revoke()

        self._do("release the controller", attempt)

    # -- who may be promoted -------------------------------------------------------------------
    def sync(self) -> SyncRecord | None:
        got = self._do("read sync", lambda c: c.get(self._key("sync")))
        return SyncRecord.from_json(got[0]) if got else None

    def set_sync(
        self, holder: ActiveRecord, expected: SyncRecord | None, new: SyncRecord
    ) -> SyncRecord:
        def attempt(c: Any) -> SyncRecord:
            compare = [
                self._is("active", holder.to_json()),
                self._is("sync", None if expected is None else expected.to_json()),
            ]
            put = {"request_put": {"key": _b64(self._key("sync")), "value": _b64(new.to_json())}}
            if self._txn(c, compare, [put]):
                return new
            got = c.get(self._key("sync"))
            raise StaleEpoch(
                f"cannot write the sync record: the active record is {self._read_active(c)} "
                f"(not {holder}) or the sync record is {got[0] if got else None} "
                f"(not {expected})"
            )

        return self._do("write sync", attempt)

    def publish_position(self, position: Position) -> None:
        self._do("publish position", lambda c: c.put(self._key("position"), position.to_json()))

    def position(self) -> Position | None:
        got = self._do("read position", lambda c: c.get(self._key("position")))
        return Position.from_json(got[0]) if got else None

    # -- observations --------------------------------------------------------------------------
    def publish(self, observation: Observation, ttl_s: float) -> None:
        observer = observation.observer
        key = self._key(f"observers/{observer}")
        value = json.dumps(observation.to_dict(), sort_keys=True)

        def attempt(c: Any) -> None:
            # A keep-alive renews a lease for the TTL it was granted with: a new TTL needs a
            # new lease.
            lease, ttl = self._obs_leases.get(observer, (0, 0.0))
            if ttl != ttl_s or Lease(lease, c).refresh() <= 0:
                lease = self._grant(c, ttl_s)
                self._obs_leases[observer] = (lease, ttl_s)
            c.put(key, value, lease=Lease(lease, c))

        self._do("publish", attempt)

    def withdraw(self, observer: str) -> None:
        def attempt(c: Any) -> None:
            c.delete(self._key(f"observers/{observer}"))
            lease, _ = self._obs_leases.pop(observer, (0, 0.0))
            if lease:
                Lease(lease, c).revoke()

        self._do("withdraw", attempt)

    def observations(self) -> dict[str, Observation]:
        rows = self._do("read observations", lambda c: c.get_prefix(self._key("observers/")))
        out = {}
        for value, meta in rows:
            name = meta["key"].decode().rsplit("/", 1)[1]
            out[name] = Observation.from_dict(json.loads(value), observer=name)
        return out

    # -- maintenance ---------------------------------------------------------------------------
    def set_pause(self, pause: Pause) -> None:
        def attempt(c: Any) -> None:
            if pause.for_s is None:
                c.put(self._key("pause"), pause.to_json())
            else:
                lease = self._grant(c, pause.for_s)
                c.put(self._key("pause"), pause.to_json(), lease=Lease(lease, c))

        self._do("set pause", attempt)

    def pause(self) -> Pause | None:
        got = self._do("read pause", lambda c: c.get(self._key("pause")))
        return Pause.from_json(got[0]) if got else None

    def clear_pause(self) -> bool:
        return bool(self._do("clear pause", lambda c: c.delete(self._key("pause"))))

    # -- events --------------------------------------------------------------------------------
    def append_event(self, event: Event) -> str:
        # Nanoseconds and a random tail: two agents storing in the same nanosecond differ.
        eid = f"{time.time_ns():020d}-{secrets.token_hex(2)}"
        doc = json.dumps({**event.to_dict(), "id": eid}, sort_keys=True)
        self._do("append event", lambda c: c.put(self._key(f"events/{eid}"), doc))
        return eid

    def events(self) -> list[Event]:
        """In the store's order (the revision each was created at), not by the writers' clocks:
        a skewed agent's events land where they happened. Each carries ``order``."""
        rows = self._do(
            "read events",
            lambda c: c.get_prefix(self._key("events/"), sort_order="ascend", sort_target="create"),
        )
        out = []
        for value, meta in rows:
            doc = json.loads(value)
            doc.setdefault("id", meta["key"].decode().rsplit("/", 1)[1])  # stored before ids
            doc["order"] = int(meta.get("create_revision", 0))
            out.append(Event.from_dict(doc))
        return out
