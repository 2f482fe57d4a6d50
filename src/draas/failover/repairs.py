"""The runbooks of the controller's repairs (``convergence.repair`` says which is due): each a
short runbook whose steps are recorded as events like any other, fenced by the epoch of the
record they act under. Their run ids never parse as a resumable run (``runs.RunId``): a repair
interrupted is simply found due again on a later round."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import ReplicationError
from draas.failover.convergence import Deployed, Repair
from draas.failover.runbook import Runbook, RunContext, Step
from draas.failover.runbooks import Switches, switch_fn
from draas.replication import Replicator


def repair_id(fix: Repair, d: Deployed, now: float) -> str:
    epoch = d.active.epoch if d.active is not None else d.last_epoch
    return f"repair-{fix.kind}-{fix.site}-e{epoch}-{now:.3f}"


def repair_runbook(
    fix: Repair,
    d: Deployed,
    *,
    store: CoordinationStore,
    reps: Mapping[str, Replicator],
    switches: Callable[[str], Switches],
    holder: Callable[[str], str],
    ttl_s: float,
    on_taken: Callable[[ActiveRecord], None] | None = None,
) -> Runbook:
    site = fix.site
    assert site is not None

    def fence(ctx: RunContext) -> None:
        reps[site].demote(connect_timeout_s=1.0)

    def take_lease(ctx: RunContext) -> None:
        role = reps[site].status().role
        if role == "replica":
            raise ReplicationError(f"{site}'s database is a replica: not reinstating it")
        rec = store.take_active(site, holder(site), d.last_epoch, ttl_s)
        ctx.epoch = rec.epoch
        if on_taken is not None:
            on_taken(rec)

    def reopen(ctx: RunContext) -> None:
        if reps[site].status().role == "read-only":
            reps[site].promote(detach=False, await_standby=False)

    if fix.kind == "fence":
        return Runbook("repair", [Step("fence", fence)])
    if fix.kind == "switch-traffic":
        return Runbook("repair", [Step("switch-traffic", switch_fn(switches(site)))])
    if fix.kind == "reinstate":
        return Runbook(
            "repair", [Step("take-lease", take_lease, fenced=False), Step("reopen", reopen)]
        )
    raise ValueError(f"no runbook for the repair {fix.kind!r}")
