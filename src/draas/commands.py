"""The operator's commands, checked: a planned switchover, a manual failback, and a failover
that the quorum has not confirmed (refused unless forced, with the reason). Run by an agent's
control API, or from the operator's machine with ``--direct``.

Each is first checked (``CommandRefused`` changes nothing), then runs the same recorded,
resumable runbook as the controller, under the same run id (``Deployment.runbook``). A forced
failover without a coordination store cannot take the lease: it fences the old primary as well
as it can, promotes, moves DNS, and says what it could not do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from draas.clock import Clock, SystemClock
from draas.config import Config
from draas.coordination import CoordinationStore, make_store
from draas.deployment import Deployment, dns_provider, replicators
from draas.errors import (
    CommandRefused,
    CoordinationError,
    InvalidInput,
    ReplicationError,
)
from draas.failover.policy import decide
from draas.failover.runbook import RunbookRunner, RunContext
from draas.failover.runbooks import OnTaken
from draas.failover.runs import Kind, RunId
from draas.failover.views import eligibility_of, snapshot, standby_doc, standby_site

log = logging.getLogger(__name__)

OPERATOR = "operator"
Stop = Callable[[], bool] | None  # asked between steps: the agent running the plan is stopping


@dataclass(frozen=True)
class Plan:
    """A command that passed its checks: what it will do, and the run that does it."""

    kind: Kind
    run_id: str
    target: str
    execute: Callable[[], str]  # runs (or resumes) the runbook; says what it did
    # A forced failover to a standby that is not eligible: the loss it accepts, in words and
    # in transactions (at least that many: behind the old primary's last published position).
    loss: str = ""
    loss_trx: int | None = None


def describe(cfg: Config, kind: Kind, to: str | None = None, force: bool = False) -> str:
    """What a command that moves traffic will do, in words (the confirmation question)."""
    if kind == "switchover":
        return f"move the service to site {to} (planned switchover)"
    if kind == "failback":
        return f"fail back to site {cfg.site_with_role('primary')}"
    where = f"site {to}" if to else "the standby site (the active site's partner)"
    return f"fail over to {where}" + (" (FORCED)" if force else "")


def _checked_reps(deployment: Deployment, kind: str, *sites: str) -> None:
    """Refused when a site the runbook acts on has no database."""
    missing = [s for s in sites if s not in deployment.reps]
    if missing:
        raise CommandRefused(
            f"{kind} refused: no database configured for site(s) "
            f"{', '.join(missing)} ([sites.NAME.database])"
        )


def _runner(
    deployment: Deployment,
    run: RunId,
    by: str,
    should_stop: Stop,
    clock: Clock | None,
    on_taken: OnTaken = None,
    forced: bool = False,
) -> Callable[[RunContext], None]:
    """Runs (or resumes) ``run``'s runbook, recording its steps as ``by``."""
    book = deployment.runbook(run, on_taken=on_taken, forced=forced)

    def go(ctx: RunContext) -> None:
        RunbookRunner(deployment.store, by, clock, should_stop=should_stop).run(book, str(run), ctx)

    return go


def plan_switchover(
    deployment: Deployment,
    to: str,
    *,
    failback: bool = False,
    by: str = OPERATOR,
    should_stop: Stop = None,
    clock: Clock | None = None,
) -> Plan:
    """Move the service to ``to`` with zero loss (``failback``: it first rejoins as a
    replica). Refused, changing nothing, unless the other site is active."""
    cfg, store = deployment.cfg, deployment.store
    if to not in cfg.sites:
        raise InvalidInput(f"--to {to!r}: not a site; sites: {sorted(cfg.sites)}")
    current = store.active()
    if current is None:
        raise CommandRefused(
            "switchover refused: no site holds the active record (a failover is "
            "under way or the lease expired); nothing was changed"
        )
    if current.site == to:
        raise CommandRefused(f"switchover refused: {to} is already active (epoch {current.epoch})")
    kind: Kind = "failback" if failback else "switchover"
    _checked_reps(deployment, kind, current.site, to)
    run = RunId(kind, to, current.epoch)
    go = _runner(deployment, run, by, should_stop, clock)

    def execute() -> str:
        ctx = RunContext(epoch=current.epoch)
        go(ctx)
        return f"{kind} to {to} done: {run}, now epoch {ctx.epoch}"

    return Plan(kind, str(run), to, execute)


def plan_failover(
    deployment: Deployment | None,
    cfg: Config,
    *,
    force: bool,
    by: str = OPERATOR,
    should_stop: Stop = None,
    on_taken: OnTaken = None,
    clock: Clock | None = None,
) -> Plan:
    """Fail over from the active site to its standby now: only what the quorum confirms,
    unless ``force``. ``deployment`` None: the coordination store is unreachable (only a
    forced failover, without a lease, from the home site to the other)."""
    primary, dr = cfg.site_with_role("primary"), cfg.site_with_role("dr")
    if deployment is None:
        if not force:
            raise CommandRefused(
                "failover refused: the coordination store is unreachable, so no "
                "quorum can confirm the disaster. If you know the primary site is "
                "down, run again with --without-quorum"
            )
        return Plan(
            "failover",
            f"failover-{dr}-without-store",
            dr,
            lambda: _failover_without_store(cfg, primary, dr),
        )
    view = snapshot(cfg, deployment.store, (clock or SystemClock()).now())
    primary, dr = view.site, view.standby  # from the active site to its standby
    decision = decide(view)
    reason = decision.reason
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
                "down, run again with --without-quorum"
            )
        reason = f"forced by the operator ({decision.reason})"
    _checked_reps(deployment, "failover", primary, dr)
    run = RunId("failover", dr, view.last_epoch)
    forced = decision.action != "failover"
    go = _runner(deployment, run, by, should_stop, clock, on_taken=on_taken, forced=forced)
    fit = eligibility_of(
        cfg,
        dr,
        view.observations,
        view.last_epoch,
        deployment.store.sync(),
        deployment.store.position(),
    )
    loss = known_loss(dr, fit.why_not, fit.behind, fit.since) if forced and fit.why_not else ""

    def execute() -> str:
        ctx = RunContext()
        go(ctx)
        said = f"failover to {dr} done: {run}, now epoch {ctx.epoch}: {reason}"
        return f"{said}; {loss}" if loss else said

    return Plan("failover", str(run), dr, execute, loss, fit.behind if loss else None)


def standby_of(cfg: Config, store: CoordinationStore) -> dict[str, Any]:
    """The standby's eligibility as the status document shows it, read from the store."""
    obs, last = store.observations(), store.last_epoch()
    return standby_doc(cfg, standby_site(cfg, store), obs, last, store.sync(), store.position())


def known_loss(site: str, why_not: str, behind: int | None, since: float | None) -> str:
    """What a forced failover to an ineligible ``site`` gives up, in words."""
    when = "" if since is None else " since " + time.strftime("%H:%M:%S", time.localtime(since))
    count = (
        "an unknown number of acknowledged writes"
        if behind is None
        else f"at least {behind} acknowledged transaction(s) (what {site} lacked of the old "
        "primary's last published position)"
    )
    return (
        f"KNOWN LOSS: {why_not}{when}; promoting it gives up {count}; the old primary saves "
        "them to a recovery file when it rejoins"
    )


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
    dns = dns_provider(cfg)
    if cfg.scheme == "dns" and dns is not None:
        dns.point_to(cfg.sites[dr].address)
        said.append(f"DNS points at {dr}")
    else:
        said.append("the frontends follow the lease and move when the store is back")
    said.append("no lease was taken (no store): record this failover by hand")
    log.warning("forced failover without a coordination store: %s", "; ".join(said))
    return "; ".join(said)


def store_or_none(cfg: Config) -> CoordinationStore | None:
    """The coordination store, or None when it does not answer (a forced failover is then
    the only command that can act)."""
    store = make_store(cfg.coordination, timeout_s=2.0)
    try:
        store.last_epoch()
    except CoordinationError as exc:
        log.warning("coordination store unreachable: %s", exc)
        return None
    return store
