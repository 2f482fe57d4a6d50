"""The status document every agent serves (``GET /v1/status``, ``draas status``, the
dashboard): sites and their databases, what each vantage point sees, the active record, where
the DNS name and each frontend point, and the latest runbook step. Pure: built from what the
agent read, so it is tested without any I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from draas.config import Config
from draas.coordination import ActiveRecord, Event, Observation, Pause, Position, SyncRecord
from draas.failover.alerts import BLOCKED
from draas.failover.policy import Decision
from draas.failover.receipts import skewed
from draas.failover.views import database_of, home_site, other_site, protected_site, standby_doc

RUNBOOKS = ("failover", "failback", "switchover", "frontend-dns", "drill", "command")


def _seen(observations: Mapping[str, Observation], target: str) -> dict[str, str]:
    """What each live observer says of ``target`` (up, down, unknown)."""
    out: dict[str, str] = {}
    for observer, obs in sorted(observations.items()):
        seen = obs.state_of(target)
        if seen is not None:
            out[observer] = seen.state
    return out


def keys_of(
    cfg: Config, site: str, observations: Mapping[str, Observation], now: float
) -> dict[str, Any] | None:
    """The site's copy of the key directories, as its agent published it (None: the site has
    no key directories, or it is their source)."""
    for node in cfg.nodes:
        obs = observations.get(node.name)
        if node.site == site and node.role == "site" and obs is not None and obs.keys:
            return {**obs.keys.to_dict(), "alert": obs.keys.alert(now)}
    return None


def last_step(events: Sequence[Event]) -> dict[str, Any] | None:
    for e in reversed(events):
        if e.runbook in RUNBOOKS or e.run.startswith(RUNBOOKS):
            return {
                k: e.get(k)
                for k in ("id", "ts", "node", "run", "step", "outcome", "error")
                if e.get(k) is not None
            }
    return None


def raised_alerts(events: Sequence[Event]) -> dict[str, str]:
    """The controller's alerts raised and not cleared, by name, with their cause."""
    out: dict[str, str] = {}
    for e in events:
        if e.runbook != "alert":
            continue
        if e.outcome == "raised":
            out[e.step] = e.detail or ""
        else:
            out.pop(e.step, None)
    return out


def failovers(events: Sequence[Event]) -> list[tuple[str, float]]:
    """Each failover run that took the lease, with when it did (oldest first)."""
    seen: dict[str, float] = {}
    for e in events:
        if (
            e.run.startswith("failover-")
            and e.step == "take-lease"
            and e.outcome == "done"
            and e.run not in seen
        ):
            seen[e.run] = e.ts
    return list(seen.items())


def status_doc(
    cfg: Config,
    *,
    node: str,
    now: float,
    active: ActiveRecord | None,
    last_epoch: int,
    observations: Mapping[str, Observation],
    events: Sequence[Event],
    dns_points_at: str | None,
    store_ok: bool = True,
    decision: Decision | None = None,
    sync: SyncRecord | None = None,
    position: Position | None = None,
    last_active: ActiveRecord | None = None,
    controller: str | None = None,
    clock_offsets: Mapping[str, float] | None = None,
    paused: Pause | None = None,
) -> dict[str, Any]:
    """``decision``: what the failover policy says on this same view (shown so that an
    operator sees why nothing moves, e.g. a lost quorum or an unfit replica); ``sync`` and
    ``position``: who may be promoted (the standby's eligibility); ``last_active``: the record
    as last granted (who was active when none holds it now); ``controller``: the agent that
    holds the controller lease."""
    protected = protected_site(cfg, active, last_active)
    sites = []
    for name, site in cfg.sites.items():
        db = database_of(cfg, name, observations)
        sites.append(
            {
                "name": name,
                "role": site.role,
                "home": site.role == "primary",
                # Roles are symmetric: the active site (or the last one, while the record is
                # free) and its standby, whichever is home.
                "state": "active" if name == protected else "standby",
                "address": site.address,
                "active": active is not None and active.site == name,
                "database": None if db is None else db.to_dict(),
                "seen": _seen(observations, name),
                "keys": keys_of(cfg, name, observations, now),
            }
        )
    frontends = []
    for fe in cfg.nodes_with_role("frontend"):
        doc = observations.get(fe.name)
        frontends.append(
            {
                "name": fe.name,
                "address": fe.address,
                "routes_to": None if doc is None else doc.routes_to,
                "agent_alive": doc is not None,
                "seen": _seen(observations, fe.name),
            }
        )
    vantage = [
        {
            "name": n.name,
            "role": n.role,
            "site": n.site,
            "alive": n.name in observations,
            "sees": {t: v.state for t, v in observations[n.name].targets.items()}
            if n.name in observations
            else {},
        }
        for n in cfg.nodes
    ]
    by_address = {s.address: s_name for s_name, s in cfg.sites.items()}  # direct: a site
    by_address.update({fe.address: fe.name for fe in cfg.nodes_with_role("frontend")})
    dns = None
    if cfg.dns is not None:
        dns = {
            "name": cfg.service.dns_name,
            "points_at": dns_points_at,
            "target": by_address.get(dns_points_at or ""),
        }
    runs = failovers(events)
    standby = None
    if store_ok:
        # The active site's partner (with no record: the last active site's partner).
        other = other_site(cfg, protected)
        standby = standby_doc(cfg, other, observations, last_epoch, sync, position)
    return {
        "node": node,
        "time": round(now, 3),
        "scheme": cfg.scheme,
        "service": cfg.service.dns_name,
        "store_ok": store_ok,
        "active": None
        if active is None
        else {"site": active.site, "epoch": active.epoch, "holder": active.holder},
        "last_epoch": last_epoch,
        "home": home_site(cfg),
        "controller": controller,
        # Each observer's clock minus this agent's, measured on receipt; the odd ones out.
        "clock": {"offsets_s": dict(clock_offsets or {}), "skewed": skewed(clock_offsets or {})},
        "sites": sites,
        "frontends": frontends,
        "vantage_points": vantage,
        "dns": dns,
        "last_step": last_step(events),
        "alerts": raised_alerts(events),
        "failovers_total": len(runs),
        "last_failover_at": runs[-1][1] if runs else None,
        "standby": standby,
        "paused": None if paused is None else paused.to_dict(),
        "summary": summary(
            active, sites, store_ok, standby, frontends, dns, node, clock_offsets, decision, paused
        ),
        "automatic": None
        if decision is None
        else {"action": decision.action, "reason": decision.reason},
    }


def eligible_line(standby: Mapping[str, Any]) -> str:
    """'dr: eligible for failover' or 'dr: NOT eligible since 23:56:23, 12 transactions
    behind at last report (why)'."""
    site = standby["site"]
    if standby["eligible"]:
        return f"{site}: eligible for failover"
    since = standby.get("since")
    when = "" if since is None else " since " + time.strftime("%H:%M:%S", time.localtime(since))
    behind = standby.get("behind_trx")
    lacks = "" if behind is None else f", {behind} transaction(s) behind at last report"
    return f"{site}: NOT eligible for failover{when}{lacks} ({standby['why_not']})"


def seen_down(seen: Mapping[str, str]) -> bool:
    """Down as at least two vantage points see it (what a quorum could confirm)."""
    return sum(1 for v in seen.values() if v == "down") >= 2


def path_warning(frontends: Sequence[Mapping[str, Any]], dns: Mapping[str, Any] | None) -> str:
    """'' while traffic has a way in; else what is wrong with it, for the headline."""
    if not frontends or not all(seen_down(f["seen"]) for f in frontends):
        return ""
    target = None if dns is None else dns.get("target")
    if target is not None and target not in {f["name"] for f in frontends}:
        return f"every frontend is DOWN; the DNS name points straight at {target}"
    return "NO WORKING PATH: every frontend is DOWN"


def clock_warning(node: str, offsets: Mapping[str, float] | None) -> str:
    bad = skewed(offsets or {})
    if not bad:
        return ""
    said = ", ".join(f"{n or node} {o:+.0f} s" for n, o in sorted(bad.items()))
    return f"CLOCK SKEW: {said} off the others (fix NTP; votes are judged on receipt)"


def summary(
    active: ActiveRecord | None,
    sites: list[dict[str, Any]],
    store_ok: bool,
    standby_doc: Mapping[str, Any] | None = None,
    frontends: Sequence[Mapping[str, Any]] = (),
    dns: Mapping[str, Any] | None = None,
    node: str = "",
    clock_offsets: Mapping[str, float] | None = None,
    decision: Decision | None = None,
    paused: Pause | None = None,
) -> str:
    """The headline: never healthy-looking while users have no path, an automatic failover
    is blocked or paused, the service runs without an eligible standby or a clock is off."""
    warn = [w for w in (path_warning(frontends, dns), clock_warning(node, clock_offsets)) if w]
    if paused is not None:
        until = "until draas resume" if paused.for_s is None else f"for {paused.for_s:g} s"
        warn.insert(0, f"PAUSED by {paused.by} {until}: {paused.reason}")
    if decision is not None and decision.cause in BLOCKED and decision.votes.get("site_down"):
        warn.append(f"AUTOMATIC FAILOVER BLOCKED: {decision.reason}")
    if standby_doc is not None and not standby_doc["eligible"]:
        warn.append("UNPROTECTED: no standby may be promoted automatically")
    head = _state_line(active, sites, store_ok, standby_doc)
    return "; ".join([*warn, head])


def _state_line(
    active: ActiveRecord | None,
    sites: list[dict[str, Any]],
    store_ok: bool,
    standby_doc: Mapping[str, Any] | None,
) -> str:
    if not store_ok:
        return "coordination store unreachable: no automatic action possible"
    if active is None:
        head = "no site holds the active lease (failover under way, or lease expired)"
        return head if standby_doc is None else f"{head}; {eligible_line(standby_doc)}"
    standby = [s for s in sites if s["name"] != active.site]
    db = (standby[0]["database"] or {}) if standby else {}
    rep = "replica state unknown"
    if db.get("role") == "replica":
        lag = db.get("lag_s")
        rep = f"{standby[0]['name']} replicating" + ("" if lag is None else f", lag {lag} s")
        if not db.get("healthy", True):
            rep = f"{standby[0]['name']} replication BROKEN: {db.get('last_error') or '?'}"
        if db.get("unfit"):
            rep = (
                f"{standby[0]['name']} replica UNFIT to take over (no automatic failover): "
                f"{db['unfit']}"
            )
    elif standby and db:
        rep = f"{standby[0]['name']} is {db.get('role')}, not replicating"
    head = f"{active.site} active (epoch {active.epoch}, held by {active.holder}); {rep}"
    return head if standby_doc is None else f"{head}; {eligible_line(standby_doc)}"
