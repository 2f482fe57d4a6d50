"""The conditions the controller raises as alerts (events ``alert-NAME`` ``raised`` with the
cause, then ``cleared``), judged on the same view as its decision. Pure: ``conditions`` says
what holds now; ``AlertBook`` turns that into raise and clear transitions once a condition has
held (or stopped holding) for ``hold_s``, so that the moment of a move (a record free for a
second during a failover) raises nothing.

Names are stable (tests, Prometheus rules and operators match on them):

- ``clock-skew``: some node's clock (ours included) is off the others' by more than
  ``receipts.SKEW_ALERT_S``;
- ``frontend-down``: a frontend is seen down by at least two vantage points;
- ``all-frontends-down``: every frontend is;
- ``no-working-path``: every frontend is, and the DNS name does not point straight at a site;
- ``no-holder``: the service was active once and no site holds the record;
- ``failover-blocked``: the active site is confirmed down and the decision waits (no healthy
  target, an unfit or ineligible replica, too few vantage points alive);
- ``unprotected``: the standby may not be promoted automatically (ineligible or unfit);
- ``repair-failing``: the controller's last repair failed;
- ``paused``: an operator paused automatic action (``draas pause``): who, why, for how long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from draas.failover.policy import Decision, View

BLOCKED = ("too-few-alive", "no-healthy-target", "unfit-replica", "not-eligible")


def seen_down_by(view: View, target: str) -> list[str]:
    """The vantage points that see ``target`` down now (no window: an alert, not a vote)."""
    out = []
    for voter, obs in sorted(view.observations.items()):
        seen = obs.state_of(target)
        if voter != target and seen is not None and seen.state == "down":
            out.append(voter)
    return out


def conditions(
    view: View,
    decision: Decision,
    *,
    frontends: Sequence[str],
    dns_at: str | None,
    skew: Mapping[str, float],
    node: str,
    repair_error: str = "",
) -> dict[str, str]:
    """Each alert that holds now, with its cause."""
    out: dict[str, str] = {}
    if skew:
        said = ", ".join(f"{n or node} {o:+.0f} s" for n, o in sorted(skew.items()))
        out["clock-skew"] = f"clock off the others: {said} (fix NTP; votes are judged on receipt)"
    down = {fe: by for fe in frontends if len(by := seen_down_by(view, fe)) >= 2}
    if down:
        out["frontend-down"] = "; ".join(
            f"{fe} seen down by {', '.join(by)}" for fe, by in down.items()
        )
        if len(down) == len(frontends):
            out["all-frontends-down"] = f"every frontend is down ({', '.join(frontends)})"
        if len(down) == len(frontends) and (dns_at is None or dns_at in frontends):
            out["no-working-path"] = (
                f"every frontend is down and the DNS name points at {dns_at or 'no frontend'}: "
                "users are not served"
            )
    if view.paused is not None:
        p = view.paused
        until = "until draas resume" if p.for_s is None else f"for {p.for_s:g} s"
        out["paused"] = f"automatic action paused by {p.by} {until}: {p.reason}"
    if view.store_ok and view.active is None and view.last_epoch > 0:
        out["no-holder"] = (
            f"no site holds the active record (last epoch {view.last_epoch}): nothing takes "
            "writes under a lease"
        )
    if decision.action == "wait" and decision.cause in BLOCKED and decision.votes.get("site_down"):
        out["failover-blocked"] = decision.reason
    unfit = None if view.standby_replica is None else view.standby_replica.unfit
    if view.standby_ineligible or unfit:
        why = f"{view.standby}'s replica is unfit: {unfit}" if unfit else view.standby_ineligible
        out["unprotected"] = (
            f"{view.site} runs without a standby that may be promoted automatically: {why}"
        )
    if repair_error:
        out["repair-failing"] = repair_error
    return out


@dataclass
class AlertBook:
    """What is raised, and since when each condition has held (or stopped holding)."""

    hold_s: float
    raised: dict[str, str] = field(default_factory=dict)
    _since: dict[str, float] = field(default_factory=dict)

    def update(self, now: float, holding: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """(name, 'raised' or 'cleared', cause) for each transition due now."""
        out: list[tuple[str, str, str]] = []
        for name in sorted(set(holding) | set(self.raised) | set(self._since)):
            changed = (name in holding) != (name in self.raised)
            if not changed:
                self._since.pop(name, None)
                continue
            since = self._since.setdefault(name, now)
            if now - since < self.hold_s:
                continue
            self._since.pop(name, None)
            if name in holding:
                self.raised[name] = holding[name]
                out.append((name, "raised", holding[name]))
            else:
                out.append((name, "cleared", self.raised.pop(name)))
        return out
