"""The views the decisions take, built from the config and what the store says: who votes,
the failover policy's ``View``, the lease's timings. One place for each, so the agents, the
operator's commands and the status read the same facts the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from draas.config import Config
from draas.coordination import (
    ActiveRecord,
    CoordinationStore,
    DatabaseReport,
    Observation,
    Position,
    SyncRecord,
)
from draas.errors import CoordinationError
from draas.failover.lease import LeaseTimings
from draas.failover.policy import View
from draas.failover.receipts import Receipts
from draas.failover.sync import Eligibility, eligibility


def home_site(cfg: Config) -> str:
    """The site the service lives at when all is well (the config's ``role = "primary"``): it
    takes the record first, and a failover away from it is followed by a failback."""
    return cfg.site_with_role("primary")


def other_site(cfg: Config, site: str) -> str:
    return next(s for s in cfg.sites if s != site)


def protected_site(cfg: Config, active: ActiveRecord | None, last: ActiveRecord | None) -> str:
    """The site the failover decision protects: the one that holds the record, or held it
    last (its lease may have expired in a disaster), else the home site."""
    held = active or last
    return held.site if held is not None and held.site in cfg.sites else home_site(cfg)


def standby_site(cfg: Config, store: CoordinationStore | None) -> str:
    """The site a failover would go to now: the active site's partner (the DR site when the
    store cannot be read)."""
    if store is None:
        return other_site(cfg, home_site(cfg))
    try:
        active = store.active()
        last = store.last_active() if active is None else None
    except CoordinationError:
        return other_site(cfg, home_site(cfg))
    return other_site(cfg, protected_site(cfg, active, last))


def voters(cfg: Config, site: str | None = None) -> list[str]:
    """The vantage points whose word confirms a disaster at ``site`` (default: the home site):
    every node that is not at that site (the other site, the witness, the frontends)."""
    at = home_site(cfg) if site is None else site
    return [n.name for n in cfg.nodes if n.site != at]


def site_agents(cfg: Config, site: str) -> list[str]:
    """The agents that manage ``site``'s database."""
    return [n.name for n in cfg.nodes if n.role == "site" and n.site == site]


def database_of(
    cfg: Config, site: str, observations: Mapping[str, Observation]
) -> DatabaseReport | None:
    """``site``'s database as its own agent last published it (None: nothing published)."""
    reports = [observations[a].database for a in site_agents(cfg, site) if a in observations]
    return next((r for r in reports if r is not None), None)


def eligibility_of(
    cfg: Config,
    site: str,
    observations: Mapping[str, Observation],
    last_epoch: int,
    sync: SyncRecord | None,
    position: Position | None,
) -> Eligibility:
    """Whether ``site`` may be promoted automatically, by the config's replication mode."""
    return eligibility(
        mode=cfg.replication.mode,
        standby=site,
        last_epoch=last_epoch,
        record=sync,
        report=database_of(cfg, site, observations),
        position=position,
        max_lag_trx=cfg.replication.max_failover_lag_trx,
    )


def standby_doc(
    cfg: Config,
    site: str,
    observations: Mapping[str, Observation],
    last_epoch: int,
    sync: SyncRecord | None,
    position: Position | None,
) -> dict[str, Any]:
    """``site``'s eligibility as the status, the metrics and the forced failover show it."""
    fit = eligibility_of(cfg, site, observations, last_epoch, sync, position)
    return {
        "site": site,
        "mode": cfg.replication.mode,
        "eligible": not fit.why_not,
        "why_not": fit.why_not or None,
        "since": fit.since,
        "behind_trx": fit.behind,
    }


def view_of(
    cfg: Config,
    now: float,
    observations: Mapping[str, Observation],
    active: ActiveRecord | None,
    last_epoch: int,
    sync: SyncRecord | None = None,
    position: Position | None = None,
    last: ActiveRecord | None = None,
) -> View:
    """The policy's view from what was already read, protecting the active site (``last``: the
    record as last granted, when none is held now). The standby's database report and its
    eligibility are included: an unfit or ineligible replica is never promoted automatically."""
    site = protected_site(cfg, active, last)
    standby = other_site(cfg, site)
    fit = eligibility_of(cfg, standby, observations, last_epoch, sync, position)
    return View(
        now=now,
        voters=voters(cfg, site),
        observations=observations,
        active=active,
        last_epoch=last_epoch,
        site=site,
        standby=standby,
        confirm_window_s=cfg.timings.confirm_window_s,
        standby_replica=database_of(cfg, standby, observations),
        standby_ineligible=fit.why_not,
        standby_gives_up=fit.behind if cfg.replication.mode == "async" else None,
        preempt=cfg.replication.mode == "semi-sync",
        reach_window_s=cfg.timings.reach_window_s,
    )


def snapshot(
    cfg: Config,
    store: CoordinationStore,
    now: float,
    active: ActiveRecord | None = None,
    receipts: Receipts | None = None,
) -> View:
    """The policy's view, read from the store (``active``: already read; ``receipts``: the
    observers' times judged in this node's clock)."""
    current = active if active is not None else store.active()
    observations = store.observations()
    if receipts is not None:
        observations = receipts.rebase(observations, now)
    view = view_of(
        cfg,
        now,
        observations,
        current,
        store.last_epoch(),
        store.sync(),
        store.position(),
        last=store.last_active() if current is None else None,
    )
    return dataclasses.replace(view, paused=store.pause())


def without_store(cfg: Config, now: float) -> View:
    """The view when the store cannot be read: nothing is known, no automatic decision."""
    return View(
        now=now,
        voters=voters(cfg),
        observations={},
        active=None,
        last_epoch=0,
        site=home_site(cfg),
        standby=other_site(cfg, home_site(cfg)),
        confirm_window_s=cfg.timings.confirm_window_s,
        store_ok=False,
    )


def lease_timings(cfg: Config) -> LeaseTimings:
    """The lease task runs every probe interval (at most every ``lease_renew_s``) and renews
    on each of its rounds: the lease's TTL and margin then leave the most room for a store
    that answers slowly."""
    t = cfg.timings
    every = min(t.probe_interval_s, t.lease_renew_s)
    return LeaseTimings(
        ttl_s=t.lease_ttl_s, renew_s=every, margin_s=t.retry_timeout_s, tick_s=every
    )


class Settling:
    """Holds gray symptoms back for ``hold_s`` after the active record's epoch was seen to
    change (a failback, a switchover): a site just given the service back is often slow for
    seconds; an unreachable one still counts (``View.gray_after``). The epoch found at the
    first look (the observer's own start) is not a change: nothing is held back then."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.seen: tuple[int, float] | None = None  # the epoch, and since when

    def apply(self, view: View) -> View:
        epoch = None if view.active is None else view.active.epoch
        if epoch is not None and self.seen is None:
            self.seen = (epoch, float("-inf"))
        elif epoch is not None and self.seen is not None and self.seen[0] != epoch:
            self.seen = (epoch, view.now)
        if self.seen is None:
            return view
        return dataclasses.replace(view, gray_after=self.seen[1] + self.hold_s)
