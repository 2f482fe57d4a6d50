"""The operator's commands, run from a machine that reaches the databases, the coordination
store and the DNS provider: a planned switchover, a manual failback, and a failover that the
quorum has not confirmed (refused unless forced, with the reason).

Each runs the same recorded, resumable runbook as the controller, under the same run ids.
A forced failover without a coordination store cannot take the lease: it fences the old
primary as well as it can, promotes, moves DNS, and says what it could not do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from draas.agent.effects import client_path_probes, replicators, traffic_switches
from draas.clock import SystemClock
from draas.config import Config
from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import CommandRefused, CoordinationError, DraasError, ReplicationError
from draas.failover.policy import Decision, View, decide
from draas.failover.runbook import RunbookRunner
from draas.failover.runbooks import OnTaken, failover_runbook, switchover_runbook
from draas.traffic import TrafficSwitch

log = logging.getLogger(__name__)

OPERATOR = "operator"
Stop = Callable[[], bool] | None  # asked between steps: the agent running the plan is stopping


def _dns(cfg: Config) -> TrafficSwitch | None:
    if cfg.dns is None:
        return None
    from draas.traffic.dns import make_provider

    return make_provider(cfg.dns)


def _other(cfg: Config, site: str) -> str:
    return next(s for s in cfg.sites if s != site)


def _holder(cfg: Config, site: str) -> str:
    return next(n.name for n in cfg.nodes if n.site == site and n.role == "site")


@dataclass(frozen=True)
class Plan:
    """A command that passed its checks: what it will do, and the run that does it."""

    kind: str  # switchover, failback, failover
    run_id: str
    target: str
    execute: Callable[[], str]  # runs (or resumes) the runbook; says what it did


def switchover(cfg: Config, store: CoordinationStore, to: str, *, failback: bool = False) -> str:
    """Move the service to ``to`` with zero loss (``failback``: it first rejoins as a
    replica). Refused, changing nothing, unless the other site is active."""
    return plan_switchover(cfg, store, to, failback=failback).execute()


def plan_switchover(
    cfg: Config,
    store: CoordinationStore,
    to: str,
    *,
    failback: bool = False,
    by: str = OPERATOR,
    should_stop: Stop = None,
) -> Plan:
    """The checks of ``switchover``, done now; the runbook, run when the plan is executed."""
    if to not in cfg.sites:
        raise DraasError(f"--to {to!r}: not a site; sites: {sorted(cfg.sites)}")
    current = store.active()
    if current is None:
        raise CommandRefused(
            "switchover refused: no site holds the active record (a failover is "
            "under way or the lease expired); nothing was changed"
        )
    if current.site == to:
        raise CommandRefused(f"switchover refused: {to} is already active (epoch {current.epoch})")
    source = current.site
    kind = "failback" if failback else "switchover"
    reps = _databases(cfg, kind, source, to)
    rid = f"{kind}-{to}-from-e{current.epoch}"
    rejoin = cfg.replication.recovery_dir if failback else None
    book = switchover_runbook(
        store,
        source=source,
        target=to,
        holder=_holder(cfg, to),
        reps=reps,
        switches=traffic_switches(cfg, store, to, _dns(cfg)),
        verify=client_path_probes(cfg, to),
        ttl_s=cfg.timings.lease_ttl_s,
        rejoin_dir=rejoin,
    )

    def execute() -> str:
        ctx: dict[str, Any] = {"epoch": current.epoch}
        RunbookRunner(store, by, should_stop=should_stop).run(book, rid, ctx)
        return f"{kind} to {to} done: {rid}, now epoch {ctx['epoch']}"

    return Plan(kind, rid, to, execute)


def _databases(cfg: Config, kind: str, *sites: str) -> dict[str, Any]:
    """The sites' replicators; refused when a site the runbook acts on has no database."""
    reps = replicators(cfg)
    missing = [s for s in sites if s not in reps]
    if missing:
        raise CommandRefused(
            f"{kind} refused: no database configured for site(s) "
            f"{', '.join(missing)} ([sites.NAME.database])"
        )
    return reps


def snapshot(
    cfg: Config,
    store: CoordinationStore,
    now: float | None = None,
    active: ActiveRecord | None = None,
) -> View:
    """The view the policy decides on, read from the store (``active``: already read)."""
    when = SystemClock().now() if now is None else now
    current = active if active is not None else store.active()
    return view_of(cfg, when, store.observations(), current, store.last_epoch())


def view_of(
    cfg: Config,
    now: float,
    observations: Mapping[str, Mapping[str, Any]],
    active: ActiveRecord | None,
    last_epoch: int,
) -> View:
    """The view from what was already read (the DR site's agent's database doc included: an
    unfit replica is never promoted automatically)."""
    primary, dr = cfg.site_with_role("primary"), cfg.site_with_role("dr")
    dr_agents = [n.name for n in cfg.nodes if n.role == "site" and n.site == dr]
    docs = [observations.get(a, {}).get("replication") for a in dr_agents]
    replica = next((d for d in docs if isinstance(d, Mapping)), None)
    return View(
        now=now,
        voters=[n.name for n in cfg.nodes if n.site != primary],
        observations=observations,
        active=active,
        last_epoch=last_epoch,
        primary=primary,
        dr=dr,
        confirm_window_s=cfg.timings.confirm_window_s,
        dr_replica=replica,
    )


def failover(cfg: Config, store: CoordinationStore | None, *, force: bool) -> str:
    """Fail over to the DR site now. Without ``force`` only what the quorum confirms."""
    return plan_failover(cfg, store, force=force).execute()


def plan_failover(
    cfg: Config,
    store: CoordinationStore | None,
    *,
    force: bool,
    by: str = OPERATOR,
    should_stop: Stop = None,
    on_taken: OnTaken = None,
) -> Plan:
    """The checks of ``failover``, done now; the runbook, run when the plan is executed."""
    primary, dr = cfg.site_with_role("primary"), cfg.site_with_role("dr")
    if store is None:
        if not force:
            raise CommandRefused(
                "failover refused: the coordination store is unreachable, so no "
                "quorum can confirm the disaster. If you know the primary site is "
                "down, run again with --force"
            )
        return Plan(
            "failover",
            f"failover-{dr}-without-store",
            dr,
            lambda: _failover_without_store(cfg, primary, dr),
        )
    view = snapshot(cfg, store)
    decision = decide(view)
    if decision.action != "failover":
        active = view.active
        if active is not None and active.site == dr:
            raise CommandRefused(f"failover refused: {dr} is already active (epoch {active.epoch})")
        if active is not None:
            raise CommandRefused(
                f"failover refused: {active.holder} still renews the lease of "
                f"{active.site} (epoch {active.epoch}), so it is alive and reaches "
                "the store; move the service with a switchover instead"
            )
        if not force:
            raise CommandRefused(
                f"failover refused: the quorum does not confirm it "
                f"({decision.action}: {decision.reason}). If you know {primary} is "
                "down, run again with --force"
            )
        decision = Decision(
            "failover",
            f"forced by the operator ({decision.reason})",
            target=dr,
            expected_epoch=view.last_epoch,
        )
    rid = f"failover-{dr}-from-e{decision.expected_epoch}"
    book = failover_runbook(
        store,
        by,
        decision,
        _databases(cfg, "failover", primary, dr),
        traffic_switches(cfg, store, dr, _dns(cfg)),
        client_path_probes(cfg, dr),
        cfg.timings.lease_ttl_s,
        primary,
        holder=_holder(cfg, dr),
        on_taken=on_taken,
    )

    def execute() -> str:
        ctx: dict[str, Any] = {}
        RunbookRunner(store, by, should_stop=should_stop).run(book, rid, ctx)
        return f"failover to {dr} done: {rid}, now epoch {ctx['epoch']}: {decision.reason}"

    return Plan("failover", rid, dr, execute)


def _failover_without_store(cfg: Config, primary: str, dr: str) -> str:
    reps = replicators(cfg)
    said = []
    try:
        reps[primary].demote(connect_timeout_s=1.0)
        said.append(f"fenced {primary}")
    except ReplicationError as exc:
        said.append(f"could not fence {primary} ({exc}): it fences itself when its lease runs out")
    reps[dr].promote()
    said.append(f"promoted {dr}")
    dns = _dns(cfg)
    if cfg.scheme == "dns" and dns is not None:
        dns.point_to(cfg.sites[dr].address)
        said.append(f"DNS points at {dr}")
    else:
        said.append("the frontends follow the lease and move when the store is back")
    said.append("no lease was taken (no store): record this failover by hand")
    log.warning("forced failover without a coordination store: %s", "; ".join(said))
    return "; ".join(said)


def store_or_none(cfg: Config) -> CoordinationStore | None:
    from draas.coordination import make_store

    store = make_store(cfg.coordination, timeout_s=2.0)
    try:
        store.last_epoch()
    except CoordinationError as exc:
        log.warning("coordination store unreachable: %s", exc)
        return None
    return store
