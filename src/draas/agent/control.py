"""What the control API asks of an agent: its status, the event log, metrics, and the
operator's commands. Blocking (store, SQL, DNS): the API calls it from worker threads.

One runbook at a time per agent: a command is refused while another command or the
controller's own run is under way (``runbook_lock``). A command is checked first (refused with
the reason, nothing changed), recorded as an event, and its runbook then runs in the
background; the answer names the event and the run, whose steps appear in the event log.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from draas.agent.effects import replicators
from draas.agent.metrics import Metrics
from draas.agent.status import status_doc
from draas.errors import CommandRefused, CoordinationError, DraasError
from draas.failover import manual
from draas.failover.drill import run_drill
from draas.failover.manual import view_of
from draas.failover.policy import decide

if TYPE_CHECKING:
    from draas.agent.daemon import Agent

log = logging.getLogger("draas.agent")

DNS_CACHE_S = 2.0
LAG_EVERY_S = 2.0
LAG_SAMPLES = 900  # 30 minutes at one sample every 2 s
EVENT_FIELDS = ("run", "node", "step", "outcome", "runbook")


def filter_events(
    events: list[dict[str, Any]],
    *,
    after: str | None = None,
    since: float | None = None,
    limit: int = 100,
    last: int | None = None,
    **match: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Events after the id ``after`` (or at/after time ``since``) whose fields equal the
    given values (``run`` matches a prefix), oldest first, at most ``limit``; and the id to
    ask ``after`` for the next page (None when this page is the last). ``last``: only the
    newest ``last`` of them (still oldest first; no next page)."""
    out = []
    for e in events:
        if after is not None and str(e.get("id", "")) <= after:
            continue
        if since is not None and float(e.get("ts", 0)) < since:
            continue
        ok = True
        for key, want in match.items():
            if want is None:
                continue
            got = str(e.get(key, ""))
            ok = ok and (got.startswith(want) if key == "run" else got == want)
        if ok:
            out.append(e)
    if last is not None:
        return out[-last:], None
    page = out[:limit]
    return page, (str(page[-1]["id"]) if len(out) > limit else None)


class Control:
    def __init__(self, agent: Agent) -> None:
        self.a = agent
        self.runbook_lock = threading.Lock()
        self.running: str | None = None  # the command's run id while it runs
        self.metrics = Metrics(self.status, agent.node.name, agent.node.role)
        self.lag: collections.deque[tuple[float, str, float]] = collections.deque(
            maxlen=LAG_SAMPLES
        )
        self._dns: tuple[float, str | None] = (-DNS_CACHE_S, None)
        self._lag_read = -LAG_EVERY_S

    # -- reading -------------------------------------------------------------------------------
    def dns_points_at(self) -> str | None:
        at, value = self._dns
        now = time.monotonic()
        if now - at < DNS_CACHE_S:
            return value
        value = None
        if self.a.cfg.dns is not None:
            try:
                from draas.traffic.dns import make_provider

                value = make_provider(self.a.cfg.dns).current()
            except DraasError as exc:
                log.info("status: cannot read where the DNS name points: %s", exc)
        self._dns = (now, value)
        return value

    def status(self) -> dict[str, Any]:
        a = self.a
        try:
            active, last, obs = a.store.active(), a.store.last_epoch(), a.store.observations()
            events, ok = a.store.events(), True
        except CoordinationError:
            active, last, obs, events, ok = None, 0, {}, [], False
        now = a.clock.now()
        decision = decide(view_of(a.cfg, now, obs, active, last)) if ok else None
        doc = status_doc(
            a.cfg,
            node=a.node.name,
            now=now,
            active=active,
            last_epoch=last,
            observations=obs,
            events=events,
            dns_points_at=self.dns_points_at(),
            store_ok=ok,
            decision=decision,
        )
        doc["command_running"] = self.running
        doc["lag_history"] = [list(x) for x in self.lag]
        return doc

    def lag_duty(self) -> str:
        """Every few seconds, the sites' replication lag as their agents published it: the
        dashboard's lag-over-time picture (the last 30 minutes, kept in memory)."""
        now = time.time()
        if now - self._lag_read < LAG_EVERY_S:
            return ""
        self._lag_read = now
        try:
            obs = self.a.store.observations()
        except CoordinationError:
            return ""
        for node in self.a.cfg.nodes:
            lag = obs.get(node.name, {}).get("replication", {}).get("lag_s")
            if node.role == "site" and node.site and lag is not None:
                self.lag.append((round(now, 1), node.site, float(lag)))
        return ""

    def events(self, **query: Any) -> tuple[list[dict[str, Any]], str | None]:
        return filter_events(self.a.store.events(), **query)

    # -- commands ------------------------------------------------------------------------------
    def command(
        self, kind: str, *, to: str | None = None, force: bool = False, by: str = "api"
    ) -> dict[str, Any]:
        """Check ``kind`` now (``CommandRefused`` changes nothing), then run it in the
        background. Returns the event id and the run id."""
        a = self.a
        if not self.runbook_lock.acquire(blocking=False):
            raise CommandRefused(
                f"{kind} refused: a runbook is already running on "
                f"{a.node.name} ({self.running or 'the controller'})"
            )
        try:
            who = f"{a.node.name}:{by}"
            if kind == "failover":
                store = a.store if self._store_answers() else None
                plan = manual.plan_failover(
                    a.cfg,
                    store,
                    force=force,
                    by=who,
                    should_stop=self.stopping,
                    on_taken=a.took_over,
                )
            elif kind in ("switchover", "failback"):
                target = a.primary if kind == "failback" else str(to)
                plan = manual.plan_switchover(
                    a.cfg,
                    a.store,
                    target,
                    failback=kind == "failback",
                    by=who,
                    should_stop=self.stopping,
                )
            else:
                raise CommandRefused(f"unknown command {kind!r}")
            eid = a.store.append_event(
                {
                    "ts": a.clock.now(),
                    "node": a.node.name,
                    "runbook": "command",
                    "run": plan.run_id,
                    "step": kind,
                    "outcome": "accepted",
                    "by": by,
                    "target": plan.target,
                    "force": force,
                }
            )
        except BaseException:
            self.runbook_lock.release()
            raise
        self.running = plan.run_id
        threading.Thread(
            target=self._execute,
            args=(plan.run_id, plan.execute),
            name=f"command-{plan.run_id}",
            daemon=True,
        ).start()
        log.info("%s accepted (%s, target %s): running %s", kind, by, plan.target, plan.run_id)
        return {"event": eid, "run": plan.run_id, "kind": kind, "target": plan.target}

    def stopping(self) -> bool:
        return self.a.stopping

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait for a running command to end (it stops between two steps when the agent
        stops); False if it is still running after ``timeout_s``."""
        if self.runbook_lock.acquire(timeout=timeout_s):
            self.runbook_lock.release()
            return True
        return False

    def _store_answers(self) -> bool:
        try:
            self.a.store.last_epoch()
        except CoordinationError:
            return False
        return True

    def _execute(self, rid: str, execute: Callable[[], str]) -> None:
        try:
            log.info("%s", execute())
        except DraasError as exc:
            log.warning("%s failed: %s", rid, exc)
        except Exception:
            log.exception("%s failed unexpectedly", rid)
        finally:
            self.running = None
            self.runbook_lock.release()

    def drill(self, by: str = "api") -> dict[str, Any]:
        a = self.a
        dns = None
        if a.cfg.dns is not None:
            from draas.traffic.dns import make_provider

            dns = make_provider(a.cfg.dns)
        store = a.store if self._store_answers() else None
        # A witness or frontend agent has no replicators of its own: the config's will do.
        report = run_drill(a.cfg, store, a.reps or replicators(a.cfg), dns)
        failed = [c["name"] for c in report["checks"] if c["verdict"] == "FAIL"]
        event = {
            "ts": a.clock.now(),
            "node": a.node.name,
            "runbook": "drill",
            "run": f"drill-{int(report['started_at'])}",
            "step": "drill",
            "outcome": "passed" if report["passed"] else "failed",
            "by": by,
            "failed_checks": failed,
        }
        if store is not None:
            report["event"] = store.append_event(event)
        log.info("drill %s%s", event["outcome"], f": {', '.join(failed)}" if failed else "")
        return report
