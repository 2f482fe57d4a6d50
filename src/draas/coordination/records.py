"""The records the agents share through the coordination store, typed.

- ``ActiveRecord``: the site that may take writes and serve traffic, under an epoch (the
  fencing token) and its holder's lease.
- ``SyncRecord``: the standby that may be promoted automatically (the holder names it only
  while it acknowledges every commit); ``Position``: the holder's last published GTID position.
- ``Observation``: what one vantage point sees of each target (up, down, unknown, since when),
  with where a frontend routes and a site's database report; it expires unless republished.
- ``Pause``: maintenance, no automatic action (with who, why and for how long).
- ``Event``: one recorded fact (a runbook step, a detection, a lease change), read by the
  status, the resumed runbooks, the experiments and the tests, never parsed from log text.

Each has ``to_dict``/``from_dict`` for the store's JSON, which keeps the wire format that
operators' tools and earlier versions read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

State = Literal["up", "down", "unknown"]
STATES: tuple[State, ...] = ("up", "down", "unknown")


@dataclass(frozen=True)
class ActiveRecord:
    site: str
    epoch: int
    holder: str
    lease: str = ""  # the store's handle of the lease the record lives under

    def to_json(self) -> str:
        doc = {"site": self.site, "epoch": self.epoch, "holder": self.holder}
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, lease: str = "") -> ActiveRecord:
        doc = json.loads(text)
        return cls(str(doc["site"]), int(doc["epoch"]), str(doc["holder"]), lease)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def same_grant(self, other: ActiveRecord | None) -> bool:
        """Whether ``other`` is this grant (site, epoch, holder), whatever lease handle it has."""
        return other is not None and (other.site, other.epoch, other.holder) == (
            self.site,
            self.epoch,
            self.holder,
        )


@dataclass(frozen=True)
class Pause:
    """Maintenance: no automatic action (failover, failback, rejoin, repairs, DNS moves) while
    this record exists. ``by`` and ``reason`` say who and why; ``at`` is the writer's clock,
    for display only; ``for_s`` (None: until ``draas resume``) is enforced by the store itself
    (the record lives under a lease of that length), never by comparing clocks."""

    reason: str
    by: str
    at: float
    for_s: float | None = None

    def to_json(self) -> str:
        doc = {"reason": self.reason, "by": self.by, "at": self.at, "for_s": self.for_s}
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Pause:
        doc = json.loads(text)
        for_s = doc.get("for_s")
        return cls(
            str(doc.get("reason") or ""),
            str(doc.get("by") or ""),
            float(doc.get("at", 0.0)),
            None if for_s is None else float(for_s),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SyncRecord:
    """Who may be promoted: the standby site that the holder of epoch ``epoch`` replicates to
    synchronously (None: none, so no automatic failover), since ``since`` (holder's clock),
    and why it changed. Written only by the holder of ``epoch``, each change a compare-and-swap;
    a record of an older epoch names no one (the new holder has not named a standby yet)."""

    epoch: int
    standby: str | None
    since: float
    reason: str = ""

    def to_json(self) -> str:
        doc = {
            "epoch": self.epoch,
            "standby": self.standby,
            "since": self.since,
            "reason": self.reason,
        }
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> SyncRecord:
        doc = json.loads(text)
        standby = doc.get("standby")
        return cls(
            int(doc["epoch"]),
            None if standby is None else str(standby),
            float(doc.get("since", 0.0)),
            str(doc.get("reason") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def names(self, site: str, epoch: int) -> bool:
        """Whether ``site`` is the named standby of the holder of ``epoch``."""
        return self.epoch == epoch and self.standby == site


@dataclass(frozen=True)
class Position:
    """The last GTID position the holder of ``epoch`` at ``site`` published (its clock ``at``):
    what a failover in asynchronous mode measures a candidate against."""

    site: str
    epoch: int
    gtid: str
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Position:
        doc = json.loads(text)
        return cls(str(doc["site"]), int(doc["epoch"]), str(doc["gtid"]), float(doc["at"]))


@dataclass(frozen=True)
class Seen:
    """One target as one vantage point sees it: its state and since when (that point's clock),
    and since when none of its ports accepts a TCP connection (a hard failure: powered off,
    cut off, its service gone; None: it is reachable)."""

    state: State
    since: float
    unreachable_since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"state": self.state, "since": self.since}
        if self.unreachable_since is not None:
            doc["unreachable_since"] = self.unreachable_since
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Seen:
        state = str(doc.get("state", "unknown"))
        gone = doc.get("unreachable_since")
        return cls(
            state if state in STATES else "unknown",
            float(doc["since"]),
            None if gone is None else float(gone),
        )


@dataclass(frozen=True)
class DatabaseReport:
    """A site's database as its own agent last read it (published with its observation)."""

    role: str  # "primary", "replica", "read-only", "unknown" (unreadable)
    healthy: bool
    read_only: bool | None = None
    lag_s: float | None = None
    lag_trx: int | None = None
    io_running: str | None = None
    sql_running: str | None = None
    semi_sync: str | None = None
    last_error: str = ""
    unfit: str | None = None  # why it must not be promoted automatically
    gtid_binlog_pos: str | None = None
    gtid_slave_pos: str | None = None  # a replica: what it applied
    source: str | None = None  # a replica: its source's host

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DatabaseReport:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        values.setdefault("role", "unknown")
        values.setdefault("healthy", False)
        values["last_error"] = str(values.get("last_error") or "")
        return cls(**values)


KEYS_STALE_S = 60.0  # keys compared longer ago than this (or differing) are an alert


@dataclass(frozen=True)
class KeysReport:
    """What the standby's agent publishes about its copy (never the keys)."""

    source: str  # the active site the keys come from
    match: bool  # every directory equals the source's at the last comparison
    compared_at: float | None  # the last successful comparison (wall clock)
    in_sync_since: float | None  # since when they have matched (None: they differ now)
    differing: tuple[int, ...] = ()
    error: str = ""  # why the last comparison failed ('' when it did not)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "match": self.match,
            "compared_at": self.compared_at,
            "in_sync_since": self.in_sync_since,
            "differing": list(self.differing),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> KeysReport:
        return cls(
            source=str(doc.get("source") or ""),
            match=bool(doc.get("match")),
            compared_at=doc.get("compared_at"),
            in_sync_since=doc.get("in_sync_since"),
            differing=tuple(int(i) for i in doc.get("differing") or ()),
            error=str(doc.get("error") or ""),
        )

    def alert(self, now: float) -> str:
        """'' when fine; else what an operator must look at."""
        if self.match and self.compared_at is not None and now - self.compared_at <= KEYS_STALE_S:
            return ""
        if self.error:
            return f"key directories not compared with {self.source}: {self.error}"
        if not self.match:
            return f"key directories {list(self.differing)} differ from {self.source}'s"
        ago = now - (self.compared_at or 0)
        return f"key directories last compared with {self.source} {ago:.0f} s ago"


@dataclass(frozen=True)
class Observation:
    """What ``observer`` published at ``at``."""

    observer: str
    at: float
    targets: Mapping[str, Seen] = field(default_factory=dict)
    routes_to: str | None = None  # a frontend's agent: the site its data plane routes to
    database: DatabaseReport | None = None  # a site's agent: its database
    keys: KeysReport | None = None  # the standby site's agent: its copy of the key directories

    def state_of(self, target: str) -> Seen | None:
        return self.targets.get(target)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "observer": self.observer,
            "at": self.at,
            "targets": {t: s.to_dict() for t, s in self.targets.items()},
        }
        if self.routes_to is not None:
            doc["routes_to"] = self.routes_to
        if self.database is not None:
            doc["replication"] = self.database.to_dict()
        if self.keys is not None:
            doc["keys"] = self.keys.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], observer: str = "") -> Observation:
        targets = {str(t): Seen.from_dict(s) for t, s in dict(doc.get("targets") or {}).items()}
        db = doc.get("replication")
        keys = doc.get("keys")
        return cls(
            observer=str(doc.get("observer") or observer),
            at=float(doc.get("at", 0.0)),
            targets=targets,
            routes_to=None if doc.get("routes_to") is None else str(doc["routes_to"]),
            database=DatabaseReport.from_dict(db) if isinstance(db, Mapping) else None,
            keys=KeysReport.from_dict(keys) if isinstance(keys, Mapping) else None,
        )


# Events' fields with a meaning of their own; anything else travels in ``extra``.
_CORE = ("ts", "node", "runbook", "run", "step", "outcome", "epoch", "target", "detail")
_OPTIONAL = ("error", "duration_s")


@dataclass(frozen=True)
class Event:
    """One recorded fact. ``runbook`` names the kind: a runbook's name for its steps,
    ``monitor`` for what an agent noticed (detections, replication, a reopened database),
    ``lease`` for the lease's changes, ``command``, ``drill``, ``decision``."""

    ts: float
    node: str
    runbook: str
    run: str
    step: str
    outcome: str
    epoch: int | None = None
    target: str | None = None
    detail: str | None = None
    error: str | None = None
    duration_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""  # given by the store, unique (made from the writer's clock)
    # The event's place in the store's order (etcd: the revision it was created at); the
    # writer's own time is ``ts``. Not part of what was written: not compared.
    order: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {k: getattr(self, k) for k in _CORE}
        doc.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        doc.update(self.extra)
        if self.id:
            doc["id"] = self.id
        if self.order is not None:
            doc["order"] = self.order
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Event:
        def text(key: str) -> str | None:
            return None if doc.get(key) is None else str(doc[key])

        epoch = doc.get("epoch")
        duration = doc.get("duration_s")
        extra = {k: v for k, v in doc.items() if k not in (*_CORE, *_OPTIONAL, "id", "order")}
        order = doc.get("order")
        return cls(
            ts=float(doc.get("ts", 0.0)),
            node=str(doc.get("node", "")),
            runbook=str(doc.get("runbook", "")),
            run=str(doc.get("run", "")),
            step=str(doc.get("step", "")),
            outcome=str(doc.get("outcome", "")),
            epoch=None if epoch is None else int(epoch),
            target=text("target"),
            detail=text("detail"),
            error=text("error"),
            duration_s=None if duration is None else float(duration),
            extra=extra,
            id=str(doc.get("id", "")),
            order=None if order is None else int(order),
        )

    def get(self, key: str, default: Any = None) -> Any:
        """A field by name, the extra ones included (for filters over any field)."""
        if key in _CORE or key in _OPTIONAL or key in ("id", "order"):
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)
