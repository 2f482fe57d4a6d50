"""The failover runbook: take the lease (new epoch), fence the old primary, promote the DR
site, move traffic, verify through the path a client uses. Each step is idempotent."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from draas.coordination import CoordinationStore
from draas.errors import ReplicationError, TrafficError
from draas.failover.policy import Decision
from draas.failover.runbook import Runbook, Step
from draas.health.probes import HttpProbe
from draas.replication.mariadb import MariaDBReplicator
from draas.traffic import TrafficSwitch

log = logging.getLogger(__name__)


def failover_runbook(store: CoordinationStore, node: str, decision: Decision,
                     reps: dict[str, MariaDBReplicator], switches: list[tuple[TrafficSwitch, str]],
                     verify: list[HttpProbe], ttl_s: float, old_site: str) -> Runbook:  # fmt: skip
    target = decision.target or ""

    def take_lease(ctx: dict[str, Any]) -> None:
        current = store.active()
        if current is not None and current.site == target and current.holder == node:
            ctx["epoch"] = current.epoch  # already ours (resumed after a crash)
            return
        # Only a free record is taken: the old holder has released it or its lease expired,
        # so it has fenced itself (fence before promote).
        rec = store.take_active(target, node, int(decision.expected_epoch or 0), ttl_s)
        ctx["epoch"] = rec.epoch

    def fence_old(ctx: dict[str, Any]) -> None:
        old = reps.get(old_site)
        if old is None:
            return
        try:
            old.demote(connect_timeout_s=1.0)  # it is probably down: do not wait long
        except ReplicationError as exc:
            # Unreachable: it fences itself when it cannot renew its lease (the record moved).
            log.warning("could not demote %s (%s); relying on its self-fencing", old_site, exc)

    def promote(ctx: dict[str, Any]) -> None:
        reps[target].promote()

    def switch(ctx: dict[str, Any]) -> None:
        for sw, dest in switches:
            sw.point_to(dest)

    def check(ctx: dict[str, Any]) -> None:
        async def all_ok() -> list[bool]:
            return [r.ok for r in await asyncio.gather(*(p.check() for p in verify))]

        if not all(asyncio.run(all_ok())):
            raise TrafficError(f"{target} does not answer its checks after failover",
                               retryable=True)  # fmt: skip

    return Runbook("failover", [
        Step("take-lease", take_lease, fenced=False),
        Step("fence-old", fence_old),
        Step("promote", promote),
        Step("switch-traffic", switch),
        Step("verify", check),
    ])  # fmt: skip
