"""The runbooks, as data over the things they act on.

- failover: take the lease (new epoch), fence the old primary, promote the DR site, move
  traffic, verify through the path a client uses;
- switchover (planned, either direction, zero loss): the target catches up, writes pause on
  the source, the target drains to the source's last transaction, the lease is handed over
  (new epoch), the target is promoted, the source replicates from it, traffic moves, verify;
- failback: the old primary rejoins as a replica of the active site (its errant transactions
  saved, never silently dropped), then the same planned switchover home.

Every step is idempotent: after an agent restart the runner re-runs the step that has no
``done`` event, and each step first checks whether its work is already there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import ReplicationError, StaleEpoch, TrafficError
from draas.failover.policy import Decision
from draas.failover.runbook import Runbook, Step
from draas.health.probes import HttpProbe
from draas.replication.mariadb import MariaDBReplicator
from draas.traffic import TrafficSwitch

log = logging.getLogger(__name__)

Switches = Sequence[tuple[TrafficSwitch, str]]


def switch_step(switches: Switches) -> Step:
    def switch(ctx: dict[str, Any]) -> None:
        for sw, dest in switches:
            sw.point_to(dest)

    return Step("switch-traffic", switch)


def verify_step(target: str, verify: Sequence[HttpProbe], within_s: float = 10.0) -> Step:
    """Every check passes (tried again for up to ``within_s``: a promoted service may need a
    moment to answer from its now writable database)."""

    async def all_ok() -> list[str]:
        return [r.detail for r in await asyncio.gather(*(p.check() for p in verify)) if not r.ok]

    def check(ctx: dict[str, Any]) -> None:
        deadline = time.monotonic() + within_s
        while failed := asyncio.run(all_ok()):
            if time.monotonic() >= deadline:
                raise TrafficError(
                    f"{target} does not pass its checks: {'; '.join(failed)}", retryable=True
                )
            time.sleep(0.2)

    return Step("verify", check)


OnTaken = Callable[[ActiveRecord], None] | None


def failover_runbook(
    store: CoordinationStore,
    node: str,
    decision: Decision,
    reps: dict[str, MariaDBReplicator],
    switches: Switches,
    verify: Sequence[HttpProbe],
    ttl_s: float,
    old_site: str,
    holder: str | None = None,
    on_taken: OnTaken = None,
) -> Runbook:
    """``holder``: whose lease the new record is (default ``node``; an operator's forced
    failover gives it to the DR site's agent, which renews it). ``on_taken``: told the
    record the moment it is taken, so that its holder renews it while the later steps run
    (they may outlast the lease)."""
    target = decision.target or ""
    holder = holder or node

    def take_lease(ctx: dict[str, Any]) -> None:
        current = store.active()
        if current is not None and current.site == target and current.holder == holder:
            ctx["epoch"] = current.epoch  # already ours (resumed after a crash)
            rec = current
        else:
            # Only a free record is taken: the old holder has released it or its lease
            # expired, so it has fenced itself (fence before promote).
            rec = store.take_active(target, holder, int(decision.expected_epoch or 0), ttl_s)
            ctx["epoch"] = rec.epoch
        if on_taken is not None:
            on_taken(rec)

    def fence_old(ctx: dict[str, Any]) -> None:
        old = reps.get(old_site)
        if old is None:
            return
        ep = old.endpoint
        try:  # a dead host costs a connect timeout; a quick look first keeps promote close
            socket.create_connection((ep.host, ep.port), timeout=0.3).close()
        except OSError as exc:
            log.warning(
                "%s's database is unreachable (%s); relying on its self-fencing", old_site, exc
            )
            return
        try:
            old.demote(connect_timeout_s=1.0)  # it is probably down: do not wait long
        except ReplicationError as exc:
            # Unreachable: it fences itself when it cannot renew its lease (the record moved).
            log.warning("could not demote %s (%s); relying on its self-fencing", old_site, exc)

    def promote(ctx: dict[str, Any]) -> None:
        # Writes open as soon as all that was received is applied; the replication threads
        # are stopped after traffic has moved (one may still be connecting to a dead host).
        reps[target].promote(detach=False)

    def detach(ctx: dict[str, Any]) -> None:
        reps[target].detach()

    return Runbook(
        "failover",
        [
            Step("take-lease", take_lease, fenced=False),
            Step("fence-old", fence_old),
            Step("promote", promote),
            switch_step(switches),
            verify_step(target, verify),
            Step("detach", detach),
        ],
    )


def _replicates_from(rep: MariaDBReplicator, source: MariaDBReplicator) -> bool:
    st = rep.status()
    return st.healthy_replica and st.source == source.endpoint.host


def switchover_runbook(
    store: CoordinationStore,
    *,
    source: str,
    target: str,
    holder: str,
    reps: dict[str, MariaDBReplicator],
    switches: Switches,
    verify: Sequence[HttpProbe],
    ttl_s: float,
    rejoin_dir: Path | None = None,
    catch_up_s: float = 60.0,
) -> Runbook:
    """A planned move of the service from ``source`` to ``target`` (whose agent ``holder``
    takes the lease); with ``rejoin_dir`` it is a failback: ``target`` first rejoins as a
    replica of ``source``, saving its errant transactions under ``rejoin_dir``."""
    src, dst = reps[source], reps[target]

    def rejoin(ctx: dict[str, Any]) -> None:
        if _replicates_from(dst, src):
            return
        report = dst.rejoin(src, rejoin_dir or Path("."))
        ctx["errant"] = report.errant_transactions
        if report.errant_transactions:
            log.warning(
                "%s held %d transaction(s) %s never received; saved to %s",
                target,
                report.errant_transactions,
                source,
                report.recovery_file,
            )

    def catch_up(ctx: dict[str, Any]) -> None:
        if not _replicates_from(dst, src):
            raise ReplicationError(
                f"{target} does not replicate from {source}: {dst.status()}; nothing was changed"
            )
        dst.wait_caught_up(src, timeout_s=catch_up_s)

    def pause_and_drain(ctx: dict[str, Any]) -> None:
        """Writes pause on the source; the target applies its last transaction. If it cannot,
        writes reopen on the source: a refused switchover leaves the service as it was."""
        src.demote()
        try:
            dst.wait_caught_up(src, timeout_s=30.0)
        except ReplicationError:
            src.promote()
            raise

    def hand_over(ctx: dict[str, Any]) -> None:
        current = store.active()
        if current is not None and current.site == target and current.holder == holder:
            ctx["epoch"] = current.epoch  # already handed over (resumed)
            return
        if current is None or current.epoch != ctx.get("epoch"):
            raise StaleEpoch(
                f"cannot hand over: the active record is {current}, this run "
                f"acts for epoch {ctx.get('epoch')}"
            )
        ctx["epoch"] = store.hand_over(current, target, holder, ttl_s).epoch

    def promote(ctx: dict[str, Any]) -> None:
        dst.promote()

    def reverse(ctx: dict[str, Any]) -> None:
        if not _replicates_from(src, dst):
            src.replicate_from(dst, seed=False)

    steps = [Step("rejoin", rejoin)] if rejoin_dir is not None else []
    steps += [
        Step("catch-up", catch_up),
        Step("pause-and-drain", pause_and_drain),
        Step("hand-over", hand_over),
        Step("promote", promote),
        Step("reverse-replication", reverse),
        switch_step(switches),
        verify_step(target, verify),
    ]
    return Runbook("failback" if rejoin_dir is not None else "switchover", steps)
