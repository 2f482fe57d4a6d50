"""The failover decision, taken on one immutable view of the world. No I/O, no clock of its
own: the agent gathers observations and the active record, calls ``decide``, carries out what
it returns, and logs the one sentence it says.

Roles are symmetric: the view protects whichever site is active (``View.site``, the holder of
the record, or of the last one) and names the other its ``standby``; the configured home site
only matters for failback (``failback_due``).

Rules (DESIGN.md's invariants):
- a site is confirmed down when at least ``need`` vantage points (a majority of those
  configured, and never fewer than two) have each seen it down for the whole confirmation
  window; observers whose publications expired do not vote;
- failover goes to the standby site only if the same quorum sees it up (for the window; when
  the active site is unreachable, a hard failure, seen up now is enough), and never automatically
  to a replica its agent reports unfit (stopped by an error, or stalled on a full disk) or
  that is not eligible (``failover.sync``: not the named synchronous standby, or too far
  behind in asynchronous mode); the active site is then not asked to step down either;
- without a coordination store there is no automatic decision (manual failover only);
- semi-sync mode (``preempt``): the named synchronous standby does not wait for the failed
  site's lease. The answer is ``failover`` with ``replace`` (the record held): the runbook
  first stops the standby's receiver, so the old primary, dead or alive, can no longer
  complete a commit, then takes the record from it under epoch + 1 (compare-and-swap on the
  record, the epoch and the sync record), applies what it received and opens for writes.
  The old primary fences itself when it sees the record moved, or when it cannot renew;
- asynchronous mode (an old primary may still acknowledge writes alone): while the failed
  site holds the ``active`` lease the answer is ``await-release``: its agent, seeing the
  same quorum, demotes its database and releases the lease; if it cannot (powered off, cut
  off), the lease expires, and it has fenced itself before that (``must_fence``). Only then
  is the DR site promoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from draas.coordination import ActiveRecord, DatabaseReport, Observation, Pause, State

Action = Literal["none", "wait", "await-release", "failover", "manual-only", "failback", "move-dns"]
# Why a decision is what it is, as a stable word (events and tests match on it, not on text).
Cause = Literal[
    "",
    "store-lost",
    "too-few-alive",
    "not-confirmed",
    "no-healthy-target",
    "unfit-replica",
    "not-eligible",
    "held",
    "confirmed",
    "paused",
]


@dataclass(frozen=True)
class View:
    now: float
    voters: Sequence[str]
    observations: Mapping[str, Observation]
    active: ActiveRecord | None
    last_epoch: int
    site: str  # the site the decision protects: the active one (or the last one active)
    standby: str  # the other site: where a failover goes
    confirm_window_s: float
    store_ok: bool = True
    # What the standby site's agent last published about its database, None when it
    # publishes nothing: an unfit replica is never promoted automatically.
    standby_replica: DatabaseReport | None = None
    # Why the standby may not be promoted automatically ('' : it may): not the named
    # synchronous standby, or too far behind the last published position (async).
    standby_ineligible: str = ""
    # Async mode: transactions of the last published position the standby had not applied
    # (within the bound, so eligible): what a failover now gives up. None: none known.
    standby_gives_up: int | None = None
    # Semi-sync mode: the named standby takes the record from a live holder once it stopped
    # acknowledging it (no wait for the lease). Async mode: it waits for the lease.
    preempt: bool = False
    # A hard failure (no TCP connection to any of the site's ports) counts as a vote once
    # seen for this long (None: only the confirmation window counts).
    reach_window_s: float | None = None
    # Until then (the record moved a moment ago: a failback, a switchover, this controller just
    # started), gray symptoms (errors, slow answers) do not count as down; a site that is
    # unreachable still does. A site just given the service back is often slow for seconds.
    gray_after: float = float("-inf")
    # An operator's pause (maintenance): no automatic action while it is in force.
    paused: Pause | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    target: str | None = None
    expected_epoch: int | None = None
    replace: ActiveRecord | None = None
    votes: dict[str, list[str]] = field(default_factory=dict)
    cause: Cause = ""
    gave_up_trx: int | None = None  # async mode: acknowledged transactions a failover gives up


def needed_votes(voters: Sequence[str]) -> int:
    return max(2, len(voters) // 2 + 1)


def votes(
    view: View,
    site: str,
    state: State,
    voters: Sequence[str] | None = None,
    window_s: float | None = None,
) -> list[str]:
    """Voters (the view's, or ``voters``) that have seen ``site`` in ``state`` for at least
    the confirmation window (or ``window_s``). A site none of whose ports accepts a TCP
    connection counts as down after the shorter ``reach_window_s``, and never as up."""
    window = view.confirm_window_s if window_s is None else window_s
    out = []
    for voter in view.voters if voters is None else voters:
        obs = view.observations.get(voter)
        if obs is None:
            continue  # expired: a silent observer does not vote
        seen = obs.state_of(site)
        if seen is None:
            continue
        gone = seen.unreachable_since
        if state == "up" and gone is not None:
            continue
        confirmed = seen.state == state and view.now - seen.since >= window
        if state == "down" and view.now < view.gray_after:
            confirmed = False  # settling after a move: only a hard failure counts
        if confirmed or (state == "down" and hard_down(view, gone)):
            out.append(voter)
    return out


def _unreachable(view: View, voter: str, site: str) -> float | None:
    obs = view.observations.get(voter)
    seen = None if obs is None else obs.state_of(site)
    return None if seen is None else seen.unreachable_since


def hard_down(view: View, unreachable_since: float | None) -> bool:
    """Unreachable (no TCP at all) for the reach window: a hard failure, confirmed sooner
    than a gray one (errors, slow answers) whose window is ``confirm_window_s``."""
    return (
        view.reach_window_s is not None
        and unreachable_since is not None
        and view.now - unreachable_since >= view.reach_window_s
    )


def honour_pause(decision: Decision, view: View) -> Decision:
    """The decision while an operator's pause is in force: an automatic move (failover,
    failback, DNS move) becomes a wait that says what it would have done."""
    p = view.paused
    if p is None or decision.action not in ("failover", "failback", "move-dns"):
        return decision
    return Decision(
        "wait",
        f"automatic action paused by {p.by}: {p.reason}; would {decision.action}: "
        f"{decision.reason}",
        votes=decision.votes,
        cause="paused",
    )


def decide(view: View) -> Decision:
    if not view.store_ok:
        return Decision(
            "manual-only",
            "no quorum store: only a forced manual failover is allowed",
            cause="store-lost",
        )
    need = needed_votes(view.voters)
    alive = [v for v in view.voters if v in view.observations]
    down = votes(view, view.site, "down")
    unreachable = bool(down) and all(
        hard_down(view, _unreachable(view, v, view.site)) for v in down
    )
    # A hard failure (no TCP at all) is acted on at once: the standby need only be seen up
    # now (a blip of its own checks a moment before must not hold the failover for a window).
    up_dr = votes(view, view.standby, "up", window_s=0.0 if unreachable else None)
    tally = {"site_down": down, "standby_up": up_dr, "alive": alive}
    if len(alive) < need:
        return Decision(
            "wait",
            f"only {len(alive)} of {len(view.voters)} vantage points alive, "
            f"{need} needed: no automatic failover",
            votes=tally,
            cause="too-few-alive",
        )
    if len(down) < need:
        why = f"{view.site} confirmed down by {len(down)} of {need} needed vantage points" + (
            f" ({', '.join(down)})" if down else ""
        )
        if view.now < view.gray_after:
            # No countdown in the text: the controller logs a reason once, when it changes.
            why += "; the record moved a moment ago: for now only an unreachable site counts"
        return Decision("none", why, votes=tally, cause="not-confirmed")
    if len(up_dr) < need:
        return Decision(
            "wait",
            f"{view.site} is down ({', '.join(down)}) but {view.standby} is "
            f"seen up by only {len(up_dr)} of {need}: no healthy target",
            votes=tally,
            cause="no-healthy-target",
        )
    unfit = None if view.standby_replica is None else view.standby_replica.unfit
    if unfit:
        return Decision(
            "wait",
            f"{view.site} is down ({', '.join(down)}) but {view.standby}'s "
            f"replica is not fit to take over: {unfit}. No automatic failover (it "
            f"would lose what {view.site} acknowledged since); fix the replica, or "
            "accept the loss with a forced failover",
            votes=tally,
            cause="unfit-replica",
        )
    if view.standby_ineligible:
        return Decision(
            "wait",
            f"{view.site} is down ({', '.join(down)}) but {view.standby_ineligible}: no "
            f"automatic failover (it may lack acknowledged writes); wait for {view.site}, or "
            "accept the stated loss with a forced failover",
            votes=tally,
            cause="not-eligible",
        )
    hard = [v for v in down if hard_down(view, _unreachable(view, v, view.site))]
    how = (
        f"unreachable for {view.reach_window_s:g} s"
        if len(hard) == len(down)
        else f"down for {view.confirm_window_s:g} s"
    )
    why = f"{view.site} {how} by {', '.join(down)}; {view.standby} up by {', '.join(up_dr)}"
    lost = view.standby_gives_up
    if lost:
        why += (
            f"; {view.standby} gives up {lost} transaction(s) of {view.site}'s last published "
            "position (asynchronous mode, within replication.max_failover_lag_trx)"
        )
    if view.active is not None and view.preempt and view.active.site == view.site:
        held = view.active
        return Decision(
            "failover",
            f"{why}; {view.standby} is the named synchronous standby: it stops acknowledging "
            f"{view.site} and takes the record from {held.holder} (epoch {held.epoch}) "
            "without waiting for its lease",
            target=view.standby,
            expected_epoch=view.last_epoch,
            replace=held,
            votes=tally,
            cause="confirmed",
        )
    if view.active is not None:
        held = view.active
        wait = f"waiting until {held.holder} releases or its lease (epoch {held.epoch}) expires"
        return Decision(
            "await-release",
            f"{why}; {wait}",
            target=view.standby,
            expected_epoch=view.last_epoch,
            replace=held,
            votes=tally,
            cause="held",
        )
    return Decision(
        "failover",
        why,
        target=view.standby,
        expected_epoch=view.last_epoch,
        votes=tally,
        cause="confirmed",
        gave_up_trx=lost,
    )


def failback_due(view: View, site: str, site_nodes: Sequence[str], hold_s: float) -> Decision:
    """Whether ``site``, failed over away from, is back for long enough to take it back: the
    home site gets the service back (the failback runbook), the other site becomes the home
    site's standby again (the rejoin runbook).

    Only while the other site is active (the caller checks that it became active by a
    failover, not by a planned switchover); the quorum must have seen ``site`` up, without a
    break, for ``hold_s`` (a flapping site does not get the service back), and its own agent
    must be alive (after a failback it holds the lease, so it has to be there to renew it).
    """
    if view.active is None or view.active.site == site:
        return Decision("none", f"{site} is active or nobody is: nothing to bring back")
    need = needed_votes(view.voters)
    up = votes(view, site, "up", window_s=hold_s)
    if len(up) < need:
        return Decision("none", f"{site} seen up for {hold_s:g} s by {len(up)} of {need} needed")
    alive = [n for n in site_nodes if n in view.observations]
    if not alive:
        return Decision("none", f"{site} answers but its agent is not running")
    return Decision(
        "failback",
        f"{site} up for {hold_s:g} s by {', '.join(up)}; its agent {alive[0]} is alive",
        target=site,
        expected_epoch=view.active.epoch,
    )


def must_fence(now: float, last_renewal: float, lease_ttl_s: float, margin_s: float) -> bool:
    """The active site's own rule: stop taking writes before the lease can expire elsewhere.

    If the holder has not renewed for ``lease_ttl_s - margin_s``, it demotes itself: by the
    time anyone else can take the record (after the full TTL), it no longer accepts writes.
    """
    return now - last_renewal >= lease_ttl_s - margin_s
