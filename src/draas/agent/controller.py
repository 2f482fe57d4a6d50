"""The controller's duties, run by whichever agent holds the controller lease
(``leadership.ControllerLease``): decide on the quorum's snapshot, run the failover and
failback runbooks (and resume an unfinished one when it takes the lease, after a restart or a
failed step), and in the hybrid scheme keep the DNS name on a live frontend. Roles are
symmetric: the decision protects whichever site is active and fails over to the other; a
failback to the home site follows a failover, never a planned switchover. Each change of the
policy's decision is an event, so an operator (and a test) sees why nothing moves."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from draas.agent.gate import RunbookGate
from draas.clock import Clock
from draas.config import Config
from draas.coordination import ActiveRecord, CoordinationStore, Event
from draas.deployment import Deployment
from draas.errors import CoordinationError, DraasError, StaleEpoch
from draas.failover.alerts import AlertBook, conditions
from draas.failover.convergence import Deployed, repair
from draas.failover.frontends import pick_frontend
from draas.failover.policy import (
    Decision,
    View,
    decide,
    failback_due,
    honour_pause,
    needed_votes,
    votes,
)
from draas.failover.receipts import Receipts, skewed
from draas.failover.repairs import repair_id, repair_runbook
from draas.failover.runbook import Runbook, RunbookRunner, RunContext, Step
from draas.failover.runs import Kind, RunId, finished, unfinished
from draas.failover.views import (
    Settling,
    home_site,
    site_agents,
    snapshot,
    voters,
    without_store,
)

log = logging.getLogger("draas.agent")

RETRY_S = 5.0  # pause before a failed runbook is tried again
DNS_REFRESH_S = 10.0  # how often the controller re-reads where the DNS name points
# A repair is made once what it repairs has been seen for this long (a run on another agent
# passes through such states for a moment; an agent's report lags its database by seconds).
REPAIR_GRACE_S = 5.0
# The steps that give a site the record under a new epoch.
TAKES = ("take-lease", "hand-over", "take-back")


class Controller:
    def __init__(
        self,
        *,
        cfg: Config,
        node: str,
        store: CoordinationStore,
        clock: Clock,
        runner: RunbookRunner,
        deployment: Deployment,
        gate: RunbookGate,
        on_taken: Callable[[ActiveRecord], None],
        emit: Callable[[Event], object],
        holding: Callable[[], bool] = lambda: True,
        receipts: Receipts | None = None,
    ) -> None:
        self.cfg = cfg
        self.node = node
        self.store = store
        self.clock = clock
        self.runner = runner
        self.deployment = deployment
        self.gate = gate
        self.on_taken = on_taken
        self.emit = emit
        self.holding = holding  # this agent holds the controller lease
        self.receipts = receipts or Receipts()  # other nodes' times, judged in our clock
        self.home = home_site(cfg)
        self.protected: str | None = None  # the site the last decision protected
        self.was_holding = False
        fes = cfg.nodes_with_role("frontend")
        self.frontends = [n.name for n in fes]
        self.fe_address = {n.name: n.address for n in fes}
        self.preferred = cfg.frontend.preferred or (self.frontends[0] if self.frontends else "")
        self.retry_at = 0.0
        self.check_log = True  # look for an unfinished run (at start, after a failure)
        self.dns_at: str | None = None
        self.dns_read = -DNS_REFRESH_S
        self.origin: dict[int, bool] = {}  # epoch -> came by a failover
        self.rejoined: set[str] = set()  # rejoin runs found finished
        self.decided: tuple[str, str] | None = None  # the last decision recorded
        self.keepable: str | None = None  # a site seen up by a quorum, nothing moving it
        self.settling = Settling(cfg.timings.failback_hold_s)
        self.repair_seen: tuple[tuple[str, str | None], float] | None = None
        self.repair_error = ""  # why the last repair failed ('' : it did not)
        self.alerts = AlertBook(hold_s=REPAIR_GRACE_S)
        self.judged: tuple[View, Decision] | None = None  # the last view and its decision

    # -- runbooks ------------------------------------------------------------------------------
    def book(self, run: RunId) -> Runbook:
        via = None
        if self.cfg.scheme == "hybrid":
            at = self.dns_at or self.preferred
            # The name points straight at a site (no frontend up): verify at the site only.
            via = [at] if at in self.frontends else []
        return self.deployment.runbook(run, on_taken=self.on_taken, via=via)

    def run(self, run: RunId, why: str) -> str:
        if not self.gate.try_enter(str(run)):  # an operator's command is running here
            self.check_log = True  # look at the log again once it is over
            return f"{run} waits: {self.gate.running} is running"
        try:
            return self._run(run, why)
        finally:
            self.gate.leave()

    def _run(self, run: RunId, why: str) -> str:
        ctx = RunContext() if run.kind == "failover" else RunContext(epoch=run.epoch)
        try:
            self.runner.run(self.book(run), str(run), ctx)
        except StaleEpoch as exc:
            self.store.append_event(
                Event(
                    ts=self.clock.now(),
                    node=self.node,
                    runbook=run.kind,
                    run=str(run),
                    step="-",
                    outcome="abandoned",
                    error=str(exc),
                )
            )
            return f"{run} abandoned: {exc}"
        except DraasError as exc:
            self.retry_at = self.clock.now() + RETRY_S
            self.check_log = True
            return f"{run} failed: {exc}; trying again in {RETRY_S:g} s"
        return f"{run} done (epoch {ctx.epoch}): {why}"

    # -- the duty ------------------------------------------------------------------------------
    def duty(self) -> str:
        if not self.holding():
            self.was_holding = False
            return ""
        if not self.was_holding:  # just took the lease: look for a run to finish first
            self.was_holding, self.check_log, self.decided = True, True, None
            self.retry_at = 0.0
        if self.clock.now() < self.retry_at:
            return ""
        try:
            if self.check_log:
                self.check_log = False
                run = unfinished(self.store.events(), self.store.active())
                if run is not None:
                    return self.run(run, "resumed an unfinished run")
            view = snapshot(self.cfg, self.store, self.clock.now(), receipts=self.receipts)
        except CoordinationError as exc:
            log.warning("%s: %s", self.node, exc)
            view = without_store(self.cfg, self.clock.now())
        said = [self.site_duty(view)]
        if self.cfg.scheme == "hybrid" and view.store_ok:
            said.append(self.frontend_dns_duty(view))
        said.append(self.alert_duty())
        return "; ".join(s for s in said if s)

    def alert_duty(self) -> str:
        """Raise (and clear) the alerts of the last view, each an event with its cause."""
        if self.judged is None:
            return ""
        view, decision = self.judged
        holding = conditions(
            view,
            decision,
            frontends=self.frontends,
            dns_at=self.dns_at,
            skew=skewed(self.receipts.offsets()),
            node=self.node,
            repair_error=self.repair_error,
        )
        said = []
        for name, outcome, cause in self.alerts.update(view.now, holding):
            self.emit(
                Event(
                    ts=self.clock.now(),
                    node=self.node,
                    runbook="alert",
                    run=f"alert-{name}",
                    step=name,
                    outcome=outcome,
                    detail=cause,
                )
            )
            said.append(f"alert {name} {outcome}: {cause}")
            log.log(logging.WARNING if outcome == "raised" else logging.INFO, "%s", said[-1])
        return "; ".join(said)

    def site_duty(self, view: View) -> str:
        view = self.settling.apply(view)
        self.protected = view.site
        decision = honour_pause(decide(view), view)
        self.judged = (view, decision)
        self._record(decision)
        up = votes(view, view.site, "up")
        quorum_up = decision.action == "none" and len(up) >= needed_votes(view.voters)
        self.keepable = view.site if quorum_up else None
        if decision.action == "failover" and decision.target is not None:
            return self.run(
                RunId("failover", decision.target, decision.expected_epoch or 0), decision.reason
            )
        active = view.active
        if view.paused is not None:  # maintenance: no failback, rejoin or repair either
            return f"decision: {decision.action}: {decision.reason}"
        if self.cfg.replication.failback == "auto" and view.store_ok and active is not None:
            # The site failed over away from is back: home gets the service back (failback);
            # the other site becomes home's standby again (rejoin).
            back_site = view.standby
            agents = site_agents(self.cfg, back_site)
            judged = dataclasses.replace(view, voters=voters(self.cfg, back_site))
            back = failback_due(judged, back_site, agents, self.cfg.timings.failback_hold_s)
            epoch = back.expected_epoch or 0
            kind: Kind = "failback" if back_site == self.home else "rejoin"
            rid = RunId(kind, back_site, epoch)
            if back.action == "failback" and self.came_by_failover(epoch) and self.due(rid):
                return self.run(rid, back.reason)
        said = f"decision: {decision.action}: {decision.reason}"
        if decision.action == "none" and view.store_ok:
            repaired = self.repair_duty(view)
            said = "; ".join(s for s in (said, repaired) if s)
        return said

    # -- convergence ---------------------------------------------------------------------------
    def deployed(self, view: View) -> Deployed:
        """What the repairs need, from the view (the agents' reports), the record and, in the
        DNS scheme, where the name points."""
        sites = list(self.cfg.sites)
        roles: dict[str, str | None] = {}
        alive = []
        for site in sites:
            reports = [
                obs.database
                for n in site_agents(self.cfg, site)
                if (obs := view.observations.get(n)) is not None
            ]
            if reports:
                alive.append(site)
            known = [r for r in reports if r is not None]
            roles[site] = known[0].role if known else None
        quorum_up = [
            s
            for s in sites
            if len(votes(view, s, "up", voters=(vs := voters(self.cfg, s)))) >= needed_votes(vs)
        ]
        traffic = None
        if self.cfg.scheme == "dns":
            at = self.dns_points_at(view.now)
            traffic = at if at in sites else None
        last = self.store.last_active() if view.active is None else view.active
        return Deployed(
            active=view.active,
            last_active=last,
            last_epoch=view.last_epoch,
            roles=roles,
            traffic=traffic,
            agents_alive=alive,
            quorum_up=quorum_up,
        )

    def dns_points_at(self, now: float) -> str | None:
        """The frontend or site the DNS name points at (re-read every ``DNS_REFRESH_S``)."""
        dns = self.deployment.dns()
        if dns is None:
            return None
        if self.dns_at is None or now - self.dns_read >= DNS_REFRESH_S:
            sites = {name: site.address for name, site in self.cfg.sites.items()}
            by_address = {addr: name for name, addr in {**self.fe_address, **sites}.items()}
            self.dns_at = by_address.get(dns.current() or "")
            self.dns_read = now
        return self.dns_at

    def repair_duty(self, view: View) -> str:
        """Drive the deployment to one writable active site with the traffic
        (``convergence``): a repair is made once it has been due for ``REPAIR_GRACE_S``, and
        never while a run is unfinished."""
        d = self.deployed(view)
        fix = repair(d)
        if fix.kind == "none":
            self.repair_seen, self.repair_error = None, ""
            return ""
        key = (fix.kind, fix.site)
        if self.repair_seen is None or self.repair_seen[0] != key:
            self.repair_seen = (key, view.now)
            return ""
        if view.now - self.repair_seen[1] < REPAIR_GRACE_S:
            return ""
        if unfinished(self.store.events(), view.active) is not None:
            self.check_log = True  # resumed on the next round, then looked at again
            return ""
        self.repair_seen = None
        book = repair_runbook(
            fix,
            d,
            store=self.store,
            reps=self.deployment.reps,
            switches=self.deployment.switches,
            holder=self.deployment.holder,
            ttl_s=self.cfg.timings.lease_ttl_s,
        )
        epoch = None if d.active is None else d.active.epoch
        try:
            self.runner.run(book, repair_id(fix, d, view.now), RunContext(epoch=epoch))
        except DraasError as exc:
            self.repair_error = f"could not {fix.kind} {fix.site}: {exc} ({fix.reason})"
            return self.repair_error
        self.repair_error = ""
        if fix.kind == "switch-traffic":
            self.dns_at = fix.site
        return f"repaired: {fix.kind} {fix.site}: {fix.reason}"

    def due(self, run: RunId) -> bool:
        """A rejoin keeps the epoch: once finished it is not run again under it."""
        if run.kind != "rejoin":
            return True
        key = str(run)
        if key not in self.rejoined and finished(key, "rejoin", self.store.events()):
            self.rejoined.add(key)
        return key not in self.rejoined

    def may_keep(self, site: str) -> bool:
        """Whether the controller may renew ``site``'s record for its absent agent (custody):
        only while the last decision found that site up by a quorum and moves nothing."""
        return self.keepable == site

    def _record(self, decision: Decision) -> None:
        """An event each time the decision changes (its action or its cause)."""
        key = (decision.action, decision.cause)
        if key == self.decided:
            return
        self.decided = key
        self.emit(
            Event(
                ts=self.clock.now(),
                node=self.node,
                runbook="decision",
                run="decision",
                step="decide",
                outcome=decision.action,
                target=decision.target,
                detail=decision.reason,
                extra={"cause": decision.cause}
                | ({} if decision.gave_up_trx is None else {"gave_up_trx": decision.gave_up_trx}),
            )
        )

    def came_by_failover(self, epoch: int) -> bool:
        """Whether the site away from home became active at ``epoch`` by a failover (failback
        follows) and not by a planned switchover (it stays until the operator moves it). An
        epoch taken again by the same site (its agent's take-back after the record expired, the
        controller's reinstate) keeps the origin of the epoch before it."""
        if epoch not in self.origin:
            done = [e for e in self.store.events() if e.outcome == "done"]
            self.origin[epoch] = self._origin(epoch, done)
        return self.origin[epoch]

    def _origin(self, epoch: int, done: list[Event]) -> bool:
        while epoch > 0:
            took = [e for e in done if e.epoch == epoch and e.step in TAKES]
            if not took:
                return False
            last = took[-1]
            if last.step != "take-back" and not last.run.startswith("repair-"):
                return last.run.startswith("failover")
            epoch -= 1  # taken again by the site that held it: the same origin
        return False

    def frontend_dns_duty(self, view: View) -> str:
        dns = self.deployment.dns()
        if dns is None:
            return ""
        sites = {name: site.address for name, site in self.cfg.sites.items()}
        addresses = {**self.fe_address, **sites}
        self.dns_points_at(view.now)
        nodes = [n.name for n in self.cfg.nodes]
        direct = view.active.site if view.active is not None else None
        if not self.cfg.frontend.direct_when_all_down:
            direct = None
        d = pick_frontend(
            view, nodes, self.frontends, self.preferred, self.dns_at, direct, list(sites)
        )
        if d.action != "move-dns" or d.target is None:
            return ""
        if view.paused is not None:
            return f"paused: DNS not moved to {d.target} ({d.reason})"
        target = d.target

        def move(ctx: RunContext) -> None:
            dns.point_to(addresses[target])

        rid = f"frontend-dns-{target}-{view.now:.3f}"
        try:
            self.runner.run(Runbook("frontend-dns", [Step("move-dns", move)]), rid, RunContext())
        except DraasError as exc:
            self.dns_at = None
            return f"moving the DNS name to {target} failed: {exc}"
        self.dns_at = target
        what = "site" if target in sites else "frontend"
        return f"DNS name moved to {what} {target}: {d.reason}"
