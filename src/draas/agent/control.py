"""What the control API asks of an agent: its status, the event log, metrics, and the
operator's commands. Blocking (store, SQL, DNS): the API calls it from worker threads.

One runbook at a time per agent: a command is refused while another command or the
controller's own run is under way (the ``RunbookGate``). A command is checked first (refused with
the reason, nothing changed), recorded as an event, and its runbook then runs in the
background; the answer names the event and the run, whose steps appear in the event log.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from draas.agent.gate import RunbookGate
from draas.agent.metrics import Metrics
from draas.agent.status import status_doc
from draas.clock import Clock
from draas.commands import Plan, plan_failover, plan_switchover
from draas.config import Config, Node
from draas.coordination import ActiveRecord, CoordinationStore, Event, Pause
from draas.deployment import Deployment, read_secret, site_probes
from draas.errors import CommandRefused, CoordinationError, DraasError, InvalidInput
from draas.failover.drill import run_drill
from draas.failover.policy import decide, honour_pause
from draas.failover.receipts import Receipts
from draas.failover.views import standby_site, view_of

log = logging.getLogger("draas.agent")

DNS_CACHE_S = 2.0
LAG_EVERY_S = 2.0
LAG_SAMPLES = 900  # 30 minutes at one sample every 2 s
MAX_REASON = 200  # a pause's reason, in characters
MIN_PAUSE_S = 10.0  # a pause with an end lasts at least this long (etcd leases: whole seconds)
MAX_PAUSE_S = 7 * 86400.0


def filter_events(
    events: Sequence[Event],
    *,
    after: str | None = None,
    since: float | None = None,
    limit: int = 100,
    last: int | None = None,
    **match: str | None,
) -> tuple[list[Event], str | None]:
    """Events after the id ``after`` (or at/after time ``since``) whose fields equal the
    given values (``run`` matches a prefix), oldest first, at most ``limit``; and the id to
    ask ``after`` for the next page (None when this page is the last). ``last``: only the
    newest ``last`` of them (still oldest first; no next page)."""
    out = []
    ids = [e.id for e in events]
    if after is not None and after in ids:  # the store's order: whatever came after it
        events, after = events[ids.index(after) + 1 :], None
    for e in events:
        if after is not None and e.id <= after:  # an id no longer stored: by the id
            continue
        if since is not None and e.ts < since:
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
    return page, (page[-1].id if len(out) > limit else None)


class Control:
    def __init__(
        self,
        *,
        cfg: Config,
        node: Node,
        store: CoordinationStore,
        clock: Clock,
        deployment: Deployment,
        gate: RunbookGate,
        on_taken: Callable[[ActiveRecord], None] | None,
        stopping: Callable[[], bool],
        receipts: Receipts | None = None,
    ) -> None:
        self.cfg = cfg
        self.node = node
        self.store = store
        self.clock = clock
        self.deployment = deployment
        self.gate = gate
        self.on_taken = on_taken
        self.stopping = stopping
        self.receipts = receipts or Receipts()
        self.metrics = Metrics(self.status, node.name, node.role)
        self.lag: collections.deque[tuple[float, str, float]] = collections.deque(
            maxlen=LAG_SAMPLES
        )
        self._dns: tuple[float, str | None] = (-DNS_CACHE_S, None)
        self._lag_read = -LAG_EVERY_S

    def reconfigure(self, cfg: Config, node: Node, deployment: Deployment) -> None:
        """SIGHUP: the new config and what was built from it."""
        self.cfg, self.node, self.deployment = cfg, node, deployment

    # -- reading -------------------------------------------------------------------------------
    def dns_points_at(self) -> str | None:
        at, value = self._dns
        now = time.monotonic()
        if now - at < DNS_CACHE_S:
            return value
        value = None
        dns = self.deployment.dns()
        if dns is not None:
            try:
                value = dns.current()
            except DraasError as exc:
                log.info("status: cannot read where the DNS name points: %s", exc)
        self._dns = (now, value)
        return value

    def status(self) -> dict[str, Any]:
        try:
            active, last = self.store.active(), self.store.last_epoch()
            obs, events, ok = self.store.observations(), self.store.events(), True
            sync, position = self.store.sync(), self.store.position()
            last_active = self.store.last_active() if active is None else None
            controller, paused = self.store.controller(), self.store.pause()
        except CoordinationError:
            active, last, obs, events, ok = None, 0, {}, [], False
            sync, position, last_active, controller, paused = None, None, None, None, None
        now = self.clock.now()
        obs = self.receipts.rebase(obs, now)
        view = view_of(self.cfg, now, obs, active, last, sync, position, last=last_active)
        view = dataclasses.replace(view, paused=paused)
        decision = honour_pause(decide(view), view) if ok else None
        doc = status_doc(
            self.cfg,
            node=self.node.name,
            now=now,
            active=active,
            last_epoch=last,
            observations=obs,
            events=events,
            dns_points_at=self.dns_points_at(),
            store_ok=ok,
            decision=decision,
            sync=sync,
            position=position,
            last_active=last_active,
            controller=controller,
            clock_offsets=self.receipts.offsets(),
            paused=paused,
        )
        doc["command_running"] = self.gate.running
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
            obs = self.store.observations()
        except CoordinationError:
            return ""
        for node in self.cfg.nodes:
            doc = obs.get(node.name)
            db = None if doc is None else doc.database
            if node.role == "site" and node.site and db is not None and db.lag_s is not None:
                self.lag.append((round(now, 1), node.site, float(db.lag_s)))
        return ""

    def events(self, **query: Any) -> tuple[list[dict[str, Any]], str | None]:
        page, nxt = filter_events(self.store.events(), **query)
        return [e.to_dict() for e in page], nxt

    # -- commands ------------------------------------------------------------------------------
    def _plan(self, kind: str, to: str | None, force: bool, who: str) -> Plan:
        if kind == "failover":
            deployment = self.deployment if self._store_answers() else None
            return plan_failover(
                deployment,
                self.cfg,
                force=force,
                by=who,
                should_stop=self.stopping,
                on_taken=self.on_taken,
                clock=self.clock,
            )
        if kind in ("switchover", "failback"):
            target = self.cfg.site_with_role("primary") if kind == "failback" else str(to)
            return plan_switchover(
                self.deployment,
                target,
                failback=kind == "failback",
                by=who,
                should_stop=self.stopping,
                clock=self.clock,
            )
        raise CommandRefused(f"unknown command {kind!r}")

    def command(
        self, kind: str, *, to: str | None = None, force: bool = False, by: str = "api"
    ) -> dict[str, Any]:
        """Check ``kind`` now (``CommandRefused`` changes nothing), then run it in the
        background. Returns the event id and the run id."""
        if not self.gate.try_enter(f"{kind} (being checked)"):
            raise CommandRefused(
                f"{kind} refused: a runbook is already running on "
                f"{self.node.name} ({self.gate.running or 'the controller'})"
            )
        try:
            plan = self._plan(kind, to, force, f"{self.node.name}:{by}")
            eid = self.store.append_event(
                Event(
                    ts=self.clock.now(),
                    node=self.node.name,
                    runbook="command",
                    run=plan.run_id,
                    step=kind,
                    outcome="accepted",
                    target=plan.target,
                    extra={"by": by, "force": force}
                    | (
                        {"known_loss": plan.loss, "known_loss_trx": plan.loss_trx}
                        if plan.loss
                        else {}
                    ),
                )
            )
        except BaseException:
            self.gate.leave()
            raise
        self.gate.running = plan.run_id
        threading.Thread(
            target=self._execute,
            args=(plan.run_id, plan.execute),
            name=f"command-{plan.run_id}",
            daemon=True,
        ).start()
        log.info("%s accepted (%s, target %s): running %s", kind, by, plan.target, plan.run_id)
        return {"event": eid, "run": plan.run_id, "kind": kind, "target": plan.target}

    def pause(self, reason: str, for_s: float | None, by: str = "api") -> dict[str, Any]:
        """Pause automatic action (every agent's controller reads it on its next round);
        ``for_s``: it ends by itself after that long (the store's lease), else at resume."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("reason: empty; say why automatic action is paused")
        if len(reason) > MAX_REASON:
            raise InvalidInput(f"reason: {len(reason)} characters; at most {MAX_REASON}")
        if for_s is not None and not MIN_PAUSE_S <= for_s <= MAX_PAUSE_S:
            raise InvalidInput(
                f"for_s: {for_s:g}; allowed from {MIN_PAUSE_S:g} to {MAX_PAUSE_S:g} seconds "
                "(or none: until resumed)"
            )
        who = f"{self.node.name}:{by}"
        pause = Pause(reason=reason, by=who, at=self.clock.now(), for_s=for_s)
        self.store.set_pause(pause)
        eid = self._event(
            "pause",
            "set",
            f"{reason} ({'until resumed' if for_s is None else f'for {for_s:g} s'})",
            by,
        )
        log.warning("automatic action paused by %s: %s", who, reason)
        return {"event": eid, "paused": pause.to_dict()}

    def resume(self, by: str = "api") -> dict[str, Any]:
        """End the pause; says whether one was in force (resuming twice changes nothing)."""
        was = self.store.pause()
        had = self.store.clear_pause()
        detail = "no pause was in force" if not had or was is None else f"was: {was.reason}"
        eid = self._event("pause", "cleared", detail, by)
        log.warning("automatic action resumed by %s:%s (%s)", self.node.name, by, detail)
        return {"event": eid, "was_paused": had}

    def _event(self, step: str, outcome: str, detail: str, by: str) -> str:
        return self.store.append_event(
            Event(
                ts=self.clock.now(),
                node=self.node.name,
                runbook="command",
                run=f"{step}-{self.clock.now():.3f}",
                step=step,
                outcome=outcome,
                detail=detail,
                extra={"by": by},
            )
        )

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait for a running command to end (it stops between two steps when the agent
        stops); False if it is still running after ``timeout_s``."""
        return self.gate.wait_idle(timeout_s)

    def _store_answers(self) -> bool:
        try:
            self.store.last_epoch()
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
            self.gate.leave()

    def key_directories(self) -> list[Path]:
        """This site's key directories (none on a frontend or the witness)."""
        site = self.cfg.sites.get(self.node.site or "")
        return list(site.key_directories) if site is not None and self.node.role == "site" else []

    def drill(self, by: str = "api") -> dict[str, Any]:
        cfg = self.cfg
        store = self.store if self._store_answers() else None
        dr = standby_site(cfg, store)  # the site a failover would go to now
        password = None
        if cfg.drill is not None:
            password = read_secret(cfg.drill.password_file, "drill.password_file")
        report = run_drill(
            cfg,
            store,
            self.deployment.reps,
            self.deployment.dns(),
            site_probes(cfg)[dr],
            password,
            dr,
        )
        failed = [c["name"] for c in report["checks"] if c["verdict"] == "FAIL"]
        outcome = "passed" if report["passed"] else "failed"
        event = Event(
            ts=self.clock.now(),
            node=self.node.name,
            runbook="drill",
            run=f"drill-{int(report['started_at'])}",
            step="drill",
            outcome=outcome,
            extra={"by": by, "failed_checks": failed},
        )
        if store is not None:
            report["event"] = store.append_event(event)
        log.info("drill %s%s", outcome, f": {', '.join(failed)}" if failed else "")
        return report
