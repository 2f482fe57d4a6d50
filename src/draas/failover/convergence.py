"""What the controller repairs when no runbook runs and the quorum moves nothing: the state the
deployment must converge to is one active site (the record's), writable, with every other
site's database closed for writes and traffic pointing at it. Pure: ``repair`` takes what the
controller read and returns the one repair due now (or ``none``), first match wins:

1. **fence**: a site that does not hold the record reports a writable database (a fence that
   did not happen, an agent restarted on a writable database, an abandoned failover): two
   sites could acknowledge a write. Its database is made read-only.
2. **switch-traffic** (DNS scheme): the name points at a site that does not hold the record
   (a run interrupted between promotion and traffic, a manual edit). The name is pointed at
   the record's site. (The frontends follow the record on their own.)
3. **reinstate**: nobody holds the record, nobody took it since its last holder (the epoch did
   not move), a quorum sees that site up and its agent is not running (a running agent takes
   it back itself): the controller takes it again in that agent's name (a new epoch) and
   renews it for it until the agent is back. The last holder has every acknowledged write.

Each repair runs as a one-step runbook (an event), fenced by the record's epoch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from draas.coordination import ActiveRecord

RepairKind = Literal["none", "fence", "switch-traffic", "reinstate"]


@dataclass(frozen=True)
class Deployed:
    """What the controller knows of the deployment this round."""

    active: ActiveRecord | None
    last_active: ActiveRecord | None
    last_epoch: int
    # Each site's database role as its agent last published it ("primary": takes writes,
    # "replica", "read-only"); None: not known (its agent publishes nothing).
    roles: Mapping[str, str | None]
    traffic: str | None  # the site the DNS name points at; None: not known or not a site
    agents_alive: Collection[str]  # sites whose agent publishes
    quorum_up: Collection[str]  # sites a quorum of vantage points sees up


@dataclass(frozen=True)
class Repair:
    kind: RepairKind
    reason: str
    site: str | None = None  # the site repaired (fenced, given the traffic, reinstated)


def repair(d: Deployed) -> Repair:
    rec = d.active
    if rec is not None:
        for site, role in sorted(d.roles.items()):
            if site != rec.site and role == "primary":
                return Repair(
                    "fence",
                    f"{site}'s database takes writes while {rec.site} holds the record (epoch "
                    f"{rec.epoch}): two sites could acknowledge a write",
                    site,
                )
        if d.traffic is not None and d.traffic != rec.site:
            return Repair(
                "switch-traffic",
                f"the DNS name points at {d.traffic} while {rec.site} holds the record (epoch "
                f"{rec.epoch}): traffic follows the record",
                rec.site,
            )
        return Repair("none", f"{rec.site} holds the record and takes the traffic")
    last = d.last_active
    if last is None or d.last_epoch != last.epoch:
        return Repair("none", "the record is free and a failover decides who takes it")
    site = last.site
    if site not in d.quorum_up:
        return Repair("none", f"the record is free and {site} is not seen up by a quorum")
    if site in d.agents_alive:
        return Repair("none", f"the record is free; {site}'s agent takes it back itself")
    if d.roles.get(site) == "replica":
        return Repair("none", f"{site}'s database is a replica: not reinstating it")
    return Repair(
        "reinstate",
        f"nobody holds the record; {site} held it last (epoch {last.epoch}), nobody took over "
        f"since, a quorum sees it up and its agent is not running: the controller takes it "
        f"for {last.holder} and keeps it until the agent is back",
        site,
    )
