"""The runbooks, as data over the things they act on (any ``Replicator``, ``TrafficSwitch`` and
``Probe``: the MariaDB ones in production, the in-memory ones in unit tests).

- failover: take the lease (new epoch; in semi-sync mode from a primary that still holds it,
  once the target stopped acknowledging it), promote the target, move traffic, fence the old
  primary (best effort: it fences itself), verify through the path a client uses;
- switchover (planned, either direction, zero loss): the target catches up, writes pause on
  the source, the target drains to the source's last transaction, the lease is handed over
  (new epoch), the target is promoted, the source replicates from it, traffic moves, verify;
- failback: the old primary rejoins as a replica of the active site (its errant transactions
  saved, never silently dropped), then the same planned switchover home;
- rejoin: a site away from home that was failed over away from comes back as the home site's
  standby (the same first steps as failback, no move).

Every step is idempotent: after an agent restart the runner re-runs the step that has no
``done`` event, and each step first checks whether its work is already there. The order of the
steps is ``runs.STEPS``; each factory here supplies the functions by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import DraasError, ReplicationError, StaleEpoch, TrafficError
from draas.failover.runbook import Runbook, RunContext, Step
from draas.failover.runs import STEPS, Kind
from draas.health.probes import Probe
from draas.replication import Replicator
from draas.traffic import TrafficSwitch

log = logging.getLogger(__name__)

Switches = Sequence[tuple[TrafficSwitch, str]]
StepFn = Callable[[RunContext], None]
OnTaken = Callable[[ActiveRecord], None] | None
# The steps that set the epoch the others check: each checks the record itself (a resumed one
# finds its own work done under the next epoch, which the runner's check would refuse).
UNFENCED = {"take-lease", "hand-over"}


def book(kind: Kind, functions: Mapping[str, StepFn]) -> Runbook:
    """The runbook ``kind`` with its steps in ``runs.STEPS`` order."""
    missing = set(STEPS[kind]) ^ set(functions)
    if missing:
        raise DraasError(f"runbook {kind}: steps {sorted(missing)} do not match runs.STEPS")
    steps = [Step(name, functions[name], fenced=name not in UNFENCED) for name in STEPS[kind]]
    return Runbook(kind, steps)


def switch_fn(switches: Switches) -> StepFn:
    def switch(ctx: RunContext) -> None:
        for sw, dest in switches:
            sw.point_to(dest)

    return switch


def verify_fn(target: str, verify: Sequence[Probe], within_s: float = 10.0) -> StepFn:
    """Every check passes (tried again for up to ``within_s``: a promoted service may need a
    moment to answer from its now writable database)."""

    async def all_ok() -> list[str]:
        return [r.detail for r in await asyncio.gather(*(p.check() for p in verify)) if not r.ok]

    def check(ctx: RunContext) -> None:
        deadline = time.monotonic() + within_s
        while failed := asyncio.run(all_ok()):
            if time.monotonic() >= deadline:
                raise TrafficError(
                    f"{target} does not pass its checks: {'; '.join(failed)}", retryable=True
                )
            time.sleep(0.2)

    return check


def failover_runbook(
    store: CoordinationStore,
    *,
    target: str,
    old_site: str,
    expected_epoch: int,
    holder: str,
    reps: Mapping[str, Replicator],
    switches: Switches,
    verify: Sequence[Probe],
    ttl_s: float,
    on_taken: OnTaken = None,
    named_only: bool = False,
) -> Runbook:
    """``holder``: whose lease the new record is (the target site's agent, which renews it).
    ``on_taken``: told the record the moment it is taken, so that its holder renews it while
    the later steps run (they may outlast the lease). ``named_only`` (an automatic failover
    in semi-sync mode): the record is taken only while the sync record names ``target``
    under ``expected_epoch``, in the same compare-and-swap (a holder that removed it first
    wins); and it is taken from ``old_site`` even while its lease lives (see ``take_lease``)."""

    def take_lease(ctx: RunContext) -> None:
        current = store.active()
        if current is not None and current.site == target and current.holder == holder:
            rec = current  # already ours (resumed after a crash)
        elif not named_only:
            # Only a free record is taken: the old holder has released it or its lease
            # expired, so it has fenced itself (fence before promote).
            rec = store.take_active(target, holder, expected_epoch, ttl_s)
        else:
            rec = take_from_holder(current)
        ctx.epoch = rec.epoch
        if on_taken is not None:
            on_taken(rec)

    def take_from_holder(current: ActiveRecord | None) -> ActiveRecord:
        """Semi-sync: the old primary can complete a commit only with the acknowledgement of
        the named standby (no timeout, ``wait_no_slave``), and can stop waiting for it only
        after removing it from the sync record. So once the target's receiver is stopped,
        the old primary, dead or alive, acknowledges no more writes, and the record is taken
        from it under epoch + 1 (compare-and-swap on the record, the epoch and the sync record:
        a holder that removed the target first wins). Not free and not the old site's record
        of ``expected_epoch``: someone else moved it, nothing is stopped."""
        named = store.sync()
        if named is None or not named.names(target, expected_epoch):
            raise StaleEpoch(
                f"{target} is not the named synchronous standby of epoch "
                f"{expected_epoch} (sync record: {named}): not promoted automatically"
            )
        replace = None
        if current is not None:
            if current.site != old_site or current.epoch != expected_epoch:
                raise StaleEpoch(
                    f"the active record is {current}, not {old_site}'s of epoch "
                    f"{expected_epoch}: someone else moved it"
                )
            replace = current
        rep = reps.get(target)
        t0 = time.monotonic()
        if rep is not None:
            rep.stop_receiving()
        t1 = time.monotonic()
        try:
            rec = store.take_active(
                target, holder, expected_epoch, ttl_s, named=named, replace=replace
            )
            log.info(
                "%s stopped acknowledging in %.3f s; record taken in %.3f s",
                target,
                t1 - t0,
                time.monotonic() - t1,
            )
            return rec
        except StaleEpoch:
            # Not taken (the holder removed the target first, or moved on): acknowledge it
            # again. After any other failure the take may have applied: stay stopped.
            if rep is not None:
                try:
                    rep.resume_receiving()
                except DraasError as exc:
                    log.warning("%s: could not restart its receiver: %s", target, exc)
            raise

    def fence_old(ctx: RunContext) -> None:
        old = reps.get(old_site)
        if old is None:
            return
        # A dead host costs a connect timeout; a quick look first keeps promote close.
        if not old.reachable(timeout_s=0.3):
            log.warning("%s's database is unreachable; relying on its self-fencing", old_site)
            return
        try:
            old.demote(connect_timeout_s=1.0)  # it is probably down: do not wait long
        except ReplicationError as exc:
            # Unreachable: it fences itself when it cannot renew its lease (the record moved).
            log.warning("could not demote %s (%s); relying on its self-fencing", old_site, exc)

    def promote(ctx: RunContext) -> None:
        # Writes open as soon as all that was received is applied, without waiting for a
        # standby: the new epoch names none (the holder's agent names one when it can). The
        # replication threads are stopped after traffic has moved (one may still be
        # connecting to a dead host).
        reps[target].promote(detach=False, await_standby=False)

    def detach(ctx: RunContext) -> None:
        reps[target].detach()

    return book(
        "failover",
        {
            "take-lease": take_lease,
            "fence-old": fence_old,
            "promote": promote,
            "switch-traffic": switch_fn(switches),
            "verify": verify_fn(target, verify),
            "detach": detach,
        },
    )


def switchover_runbook(
    store: CoordinationStore,
    *,
    source: str,
    target: str,
    holder: str,
    reps: Mapping[str, Replicator],
    switches: Switches,
    verify: Sequence[Probe],
    ttl_s: float,
    rejoin_dir: Path | None = None,
    catch_up_s: float = 60.0,
) -> Runbook:
    """A planned move of the service from ``source`` to ``target`` (whose agent ``holder``
    takes the lease); with ``rejoin_dir`` it is a failback: ``target`` first rejoins as a
    replica of ``source``, saving its errant transactions under ``rejoin_dir``."""
    src, dst = reps[source], reps[target]
    joining = rejoin_steps(source=source, target=target, reps=reps, rejoin_dir=rejoin_dir)

    def pause_and_drain(ctx: RunContext) -> None:
        """Writes pause on the source; the target applies its last transaction. If it cannot,
        writes reopen on the source: a refused switchover leaves the service as it was."""
        src.demote()
        try:
            dst.wait_caught_up(src, timeout_s=30.0)
        except ReplicationError:
            src.promote()
            raise

    def hand_over(ctx: RunContext) -> None:
        current = store.active()
        mine = current is not None and current.site == target and current.holder == holder
        if mine and current is not None and current.epoch == (ctx.epoch or 0) + 1:
            ctx.epoch = current.epoch  # already handed over (resumed after a crash)
            return
        if current is None or current.epoch != ctx.epoch:
            raise StaleEpoch(
                f"cannot hand over: the active record is {current}, this run "
                f"acts for epoch {ctx.epoch}"
            )
        ctx.epoch = store.hand_over(current, target, holder, ttl_s).epoch

    def promote(ctx: RunContext) -> None:
        dst.promote()

    def reverse(ctx: RunContext) -> None:
        if not src.replicates_from(dst):
            src.replicate_from(dst, seed=False)

    steps: dict[str, StepFn] = {
        "catch-up": joining["catch-up"],
        "pause-and-drain": pause_and_drain,
        "hand-over": hand_over,
        "promote": promote,
        "reverse-replication": reverse,
        "switch-traffic": switch_fn(switches),
        "verify": verify_fn(target, verify),
    }
    if rejoin_dir is not None:
        return book("failback", {"rejoin": joining["rejoin"], **steps})
    return book("switchover", steps)


def rejoin_steps(
    *,
    source: str,
    target: str,
    reps: Mapping[str, Replicator],
    rejoin_dir: Path | None,
    catch_up_s: float = 60.0,
) -> dict[str, StepFn]:
    """``target`` replicates from the active ``source`` again (its errant transactions saved
    under ``rejoin_dir``), and catches up."""
    src, dst = reps[source], reps[target]

    def rejoin(ctx: RunContext) -> None:
        if dst.replicates_from(src):
            return
        report = dst.rejoin(src, rejoin_dir or Path("."))
        ctx.errant = report.errant_transactions
        if report.errant_transactions:
            log.warning(
                "%s held %d transaction(s) %s never received; saved to %s",
                target,
                report.errant_transactions,
                source,
                report.recovery_file,
            )

    def catch_up(ctx: RunContext) -> None:
        if not dst.replicates_from(src):
            raise ReplicationError(
                f"{target} does not replicate from {source}: {dst.status()}; nothing was changed"
            )
        dst.wait_caught_up(src, timeout_s=catch_up_s)

    return {"rejoin": rejoin, "catch-up": catch_up}


def rejoin_runbook(
    *, source: str, target: str, reps: Mapping[str, Replicator], rejoin_dir: Path
) -> Runbook:
    """A site failed over away from, back: it becomes the active ``source``'s standby (the
    service does not move; it is at home already)."""
    return book(
        "rejoin", rejoin_steps(source=source, target=target, reps=reps, rejoin_dir=rejoin_dir)
    )
