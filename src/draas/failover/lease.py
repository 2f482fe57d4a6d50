"""The lease rules of a site's agent, as one pure function: ``decide_lease(view) -> LeaseAction``.

The ``active`` record names the site that takes writes. A site's agent holds it under a lease
in the coordination store and must never let its database take writes when the record may be
someone else's. The agent gathers a ``LeaseView`` (what the store says, what it holds, its
database's role, the quorum's decision), calls ``decide_lease`` and carries out the answer.
The rules, first match wins:

1. **fence (time)**: holding, and not renewed for ``ttl - margin``: the database goes
   read-only before the lease can expire and anyone else can take the record. Needs no
   store: the fence watch checks it on a short timer that no store call can delay (and
   carries out nothing else). When the store could not be read, a holder still tries to
   renew (another member may answer the renewal) and does nothing else.
2. **fence (record)**: holding, and the store names another holder, or no holder at all (the
   record was taken over, or is gone): the record is no longer ours.
3. **take**: nobody has ever held the record (epoch 0) and this is the home site.
4. **take back**: the record this agent last held expired or was released, nobody took it
   since (the epoch did not move), this site's database is not a replica, and the quorum does
   not see the site down: the site still holds every write, take it again (new epoch) and
   reopen writes.
5. **step down**: this site holds the record and the quorum sees it down (the policy's
   ``await-release``, asynchronous mode): fence, then release, so the standby takes over
   without waiting for the lease to expire.
6. **adopt**: the store says this agent holds a record it does not (handed over by a planned
   switchover, taken by a failover run here, or this agent restarted): renew it and hold it.
7. **renew**: holding, due for renewal (``renew_s`` since the last one, give or take half a
   tick of the lease task).
8. **reopen**: holding, not fenced, the database read-only (closed behind our back or by a
   restart), and no planned move is draining it on purpose: open writes again.
9. otherwise nothing.

``LeaseState`` is the one object that owns what the agent holds (record, last renewal, fenced)
behind one lock; fencing and reopening run under ``exclusive()`` so they never interleave.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from draas.coordination import ActiveRecord
from draas.failover.policy import Action

LeaseKind = Literal["none", "take", "take-back", "adopt", "renew", "step-down", "fence", "reopen"]


@dataclass(frozen=True)
class LeaseTimings:
    ttl_s: float  # the lease's time to live
    renew_s: float  # renew this often
    margin_s: float  # fence this long before the lease can expire (the store's retry time)
    tick_s: float = 0.0  # how often the lease task runs: a renewal due within half a tick is
    # done on this one (renewals land on the task's ticks, which jitter)

    def renewal_due(self, since_renewal: float) -> bool:
        return since_renewal + self.tick_s / 2 >= self.renew_s


@dataclass(frozen=True)
class Held:
    """What this agent holds: a snapshot of ``LeaseState``."""

    record: ActiveRecord | None = None
    last_renewal: float | None = None
    fenced: bool = False

    @property
    def holding(self) -> bool:
        """The agent holds a record and has not fenced its database for it."""
        return self.record is not None and not self.fenced


@dataclass(frozen=True)
class StoreView:
    """What the coordination store said in this round."""

    active: ActiveRecord | None
    last_epoch: int
    last_active: ActiveRecord | None = None


@dataclass(frozen=True)
class LeaseView:
    now: float
    node: str
    site: str
    home: str  # the site that takes the record first (the config's home site)
    held: Held
    timings: LeaseTimings
    store: StoreView | None = None  # None: not read this round (the fence watch)
    db_role: str | None = None  # "primary", "replica", "read-only"; None: unknown
    quorum: Action | None = None  # the failover policy's action on the same snapshot
    planned_move: bool | None = None  # a switchover drains this site now; None: not read


@dataclass(frozen=True)
class LeaseAction:
    kind: LeaseKind
    reason: str
    record: ActiveRecord | None = None  # the record to adopt, renew, or take back from


def must_fence(now: float, last_renewal: float, lease_ttl_s: float, margin_s: float) -> bool:
    """The active site's own rule: stop taking writes before the lease can expire elsewhere.

    If the holder has not renewed for ``lease_ttl_s - margin_s``, it demotes itself: by the
    time anyone else can take the record (after the full TTL), it no longer accepts writes.
    """
    return now - last_renewal >= lease_ttl_s - margin_s


def wants_quorum(node: str, store: StoreView) -> bool:
    """Whether the rules may ask for the quorum's decision this round (reading the
    observations costs a store call: only when the record is free or ours)."""
    return store.active is None or store.active.holder == node


def wants_planned_move(view: LeaseView) -> bool:
    """Whether the rules may ask if a planned move drains this site (reading the event log
    costs a store call: only when the database is read-only under our own record)."""
    active = None if view.store is None else view.store.active
    return (
        view.held.holding
        and view.db_role == "read-only"
        and active is not None
        and active.holder == view.node
    )


def decide_lease(v: LeaseView) -> LeaseAction:
    held, t = v.held, v.timings
    last = held.last_renewal
    if held.holding and last is not None and must_fence(v.now, last, t.ttl_s, t.margin_s):
        return LeaseAction("fence", f"could not renew the lease for {v.now - last:.1f} s")
    if v.store is None:  # the store did not answer this round (or was not asked)
        if held.holding and last is not None and t.renewal_due(v.now - last):
            return LeaseAction("renew", "due; the record could not be read", held.record)
        return LeaseAction("none", "the store was not read")
    active = v.store.active
    if held.holding and (active is None or active.holder != v.node):
        if active is None:
            return LeaseAction("fence", "the active record is gone (expired or deleted)")
        return LeaseAction(
            "fence", f"the active record moved to {active.holder} (epoch {active.epoch})"
        )
    if active is None:
        return _free_record(v)
    if active.holder != v.node:
        return LeaseAction("none", f"{active.holder} holds the record (epoch {active.epoch})")
    if v.quorum == "await-release":
        return LeaseAction("step-down", "a quorum of vantage points sees this site down", active)
    if held.record is None or held.record.epoch != active.epoch or held.fenced:
        return LeaseAction(
            "adopt", f"the store names this agent holder (epoch {active.epoch})", active
        )
    if held.last_renewal is None or t.renewal_due(v.now - held.last_renewal):
        return LeaseAction("renew", "due", active)
    if v.db_role == "read-only" and v.planned_move is False:
        return LeaseAction(
            "reopen",
            f"{v.site}'s database is read-only while {v.site} holds the lease (epoch "
            f"{active.epoch})",
            active,
        )
    return LeaseAction("none", f"holds the record (epoch {active.epoch})")


def _free_record(v: LeaseView) -> LeaseAction:
    """Nobody holds the record: take it first, take it back, or leave it to a failover."""
    store = v.store
    assert store is not None
    if store.last_epoch == 0:
        if v.site == v.home:
            return LeaseAction("take", f"nobody ever held the record: {v.site} is home")
        return LeaseAction("none", f"nobody ever held the record; {v.home} takes it first")
    last = store.last_active
    if v.held.record is not None:
        return LeaseAction("none", "the record is free; this agent still holds an old one")
    if last is None or last.holder != v.node or last.site != v.site:
        return LeaseAction("none", "the record is free and this agent did not hold it last")
    if store.last_epoch != last.epoch:
        return LeaseAction("none", f"the epoch moved past {last.epoch}: someone took over")
    if v.db_role in (None, "unknown"):
        return LeaseAction("none", f"{v.site}'s database role is unknown: not taking it back")
    if v.db_role == "replica":
        return LeaseAction("none", f"{v.site}'s database is a replica: a failback brings it home")
    if v.quorum in (None, "failover", "await-release"):
        why = "not known" if v.quorum is None else "sees this site down"
        return LeaseAction("none", f"the quorum {why}: a failover decides")
    still = "still took writes" if v.db_role == "primary" else "is reopened for writes"
    return LeaseAction(
        "take-back",
        f"it last held epoch {last.epoch}, nobody took over since, and {v.site}'s database {still}",
        last,
    )


class LeaseState:
    """What the agent holds, owned here behind one lock: the record, when it was last
    renewed, whether the database was fenced for it. Readers take a ``Held`` snapshot (that
    lock is never held across I/O, so a renewal is never held up). The database's fence and
    reopen are serialized by ``exclusive()``, a second lock held across the demote or promote
    they run, so they never interleave. No store call is made under either: a hanging store
    must not delay a fence."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._act = threading.Lock()
        self._held = Held()

    def snapshot(self) -> Held:
        with self._lock:
            return self._held

    @contextmanager
    def exclusive(self) -> Iterator[Held]:
        """Held while the database is fenced or reopened; yields the state as it is now."""
        with self._act:
            yield self.snapshot()

    def hold(self, record: ActiveRecord, now: float) -> None:
        """The agent holds ``record`` (taken, taken back, adopted), renewed at ``now``."""
        with self._lock:
            self._held = Held(record, now, fenced=False)

    def renewed(self, record: ActiveRecord, now: float) -> bool:
        """A renewal of ``record`` succeeded at ``now``; False (nothing changed) when the agent
        no longer holds it (fenced or replaced meanwhile)."""
        with self._lock:
            h = self._held
            if h.record is None or not h.record.same_grant(record) or h.fenced:
                return False
            self._held = Held(record, max(now, h.last_renewal or now), fenced=False)
            return True

    def fenced(self) -> None:
        """The database was fenced: the agent holds nothing until it takes or adopts again."""
        with self._lock:
            self._held = Held(None, self._held.last_renewal, fenced=True)

    def dropped(self) -> None:
        """The record was given up (released) without fencing (the agent is stopping)."""
        with self._lock:
            self._held = Held(None, None, fenced=self._held.fenced)
