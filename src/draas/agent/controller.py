"""The controller's duties, run by the DR site's agent in this version: decide on the quorum's
snapshot, run the failover and failback runbooks (and resume an unfinished one after a
restart or a failed step), and in the hybrid scheme keep the DNS name on a live frontend.

Run ids name what a run does, so a restarted agent can rebuild it from the event log:
``{runbook}-{target}-from-e{epoch}`` (the epoch the run started from).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from draas.agent.effects import client_path_probes, traffic_switches
from draas.errors import CoordinationError, DraasError, StaleEpoch
from draas.failover.frontends import pick_frontend
from draas.failover.policy import Decision, View, decide, failback_due
from draas.failover.runbook import Runbook, Step, state_of
from draas.failover.runbooks import failover_runbook, switchover_runbook
from draas.traffic import TrafficSwitch

if TYPE_CHECKING:
    from draas.agent.daemon import Agent

log = logging.getLogger("draas.agent")

RUN_ID = re.compile(r"^(failover|failback|switchover)-(.+)-from-e(\d+)$")
LAST_STEP = {"failover": "detach", "failback": "verify", "switchover": "verify"}
RETRY_S = 5.0  # pause before a failed runbook is tried again
DNS_REFRESH_S = 10.0  # how often the controller re-reads where the DNS name points


def run_id(kind: str, target: str, epoch: int) -> str:
    return f"{kind}-{target}-from-e{epoch}"


def unfinished(events: list[dict[str, Any]]) -> str | None:
    """The latest runbook run that made progress but did not finish (nor was abandoned)."""
    runs = [e["run"] for e in events if RUN_ID.match(str(e.get("run", "")))]
    if not runs:
        return None
    last = runs[-1]
    mine = [e for e in events if e.get("run") == last]
    if any(e.get("outcome") == "abandoned" for e in mine):
        return None
    st = state_of(last, events)
    kind = RUN_ID.match(last).group(1)  # type: ignore[union-attr]
    return last if st.done and LAST_STEP[kind] not in st.done else None


class Controller:
    def __init__(self, agent: Agent) -> None:
        self.a = agent
        cfg = agent.cfg
        self.frontends = [n.name for n in cfg.nodes_with_role("frontend")]
        self.fe_address = {n.name: n.address for n in cfg.nodes_with_role("frontend")}
        self.preferred = cfg.frontend.preferred or (self.frontends[0] if self.frontends else "")
        self.retry_at = 0.0
        self.check_log = True  # look for an unfinished run (at start, after a failure)
        self.dns_at: str | None = None
        self.dns_read = -DNS_REFRESH_S
        self._dns: TrafficSwitch | None = None
        self.origin: dict[int, bool] = {}  # epoch -> came by a failover

    # -- what moves traffic --------------------------------------------------------------------
    def dns(self) -> TrafficSwitch | None:
        if self._dns is None and self.a.cfg.dns is not None:
            from draas.traffic.dns import make_provider

            self._dns = make_provider(self.a.cfg.dns)
        return self._dns

    def switches(self, site: str) -> list[tuple[TrafficSwitch, str]]:
        return traffic_switches(self.a.cfg, self.a.store, site, self.dns())

    def verify_probes(self, site: str) -> list[Any]:
        via = [self.dns_at or self.preferred] if self.a.cfg.scheme == "hybrid" else None
        return client_path_probes(self.a.cfg, site, via)

    # -- runbooks ------------------------------------------------------------------------------
    def book(self, rid: str) -> Runbook:
        m = RUN_ID.match(rid)
        if m is None:
            raise DraasError(f"not a runbook run id: {rid!r}")
        kind, target, epoch = m.group(1), m.group(2), int(m.group(3))
        a = self.a
        source = a.dr if target == a.primary else a.primary
        ttl = a.cfg.timings.lease_ttl_s
        if kind == "failover":
            decision = Decision("failover", "resumed", target=target, expected_epoch=epoch)
            return failover_runbook(
                a.store,
                a.node.name,
                decision,
                a.reps,
                self.switches(target),
                self.verify_probes(target),
                ttl,
                source,
                on_taken=a.took_over,
            )
        holder = next(n.name for n in a.cfg.nodes if n.site == target and n.role == "site")
        rejoin = a.cfg.replication.recovery_dir if kind == "failback" else None
        return switchover_runbook(
            a.store,
            source=source,
            target=target,
            holder=holder,
            reps=a.reps,
            switches=self.switches(target),
            verify=self.verify_probes(target),
            ttl_s=ttl,
            rejoin_dir=rejoin,
        )

    def run(self, rid: str, why: str) -> str:
        lock = self.a.control.runbook_lock
        if not lock.acquire(blocking=False):  # an operator's command is running here
            self.check_log = True  # look at the log again once it is over
            return f"{rid} waits: {self.a.control.running} is running"
        try:
            return self._run(rid, why)
        finally:
            lock.release()

    def _run(self, rid: str, why: str) -> str:
        epoch = int(RUN_ID.match(rid).group(3))  # type: ignore[union-attr]
        ctx: dict[str, Any] = {} if rid.startswith("failover") else {"epoch": epoch}
        try:
            self.a.runner.run(self.book(rid), rid, ctx)
        except StaleEpoch as exc:
            self.a.store.append_event(
                {
                    "ts": self.a.clock.now(),
                    "node": self.a.node.name,
                    "run": rid,
                    "step": "-",
                    "outcome": "abandoned",
                    "error": str(exc),
                }
            )
            return f"{rid} abandoned: {exc}"
        except DraasError as exc:
            self.retry_at = self.a.clock.now() + RETRY_S
            self.check_log = True
            return f"{rid} failed: {exc}; trying again in {RETRY_S:g} s"
        return f"{rid} done (epoch {ctx.get('epoch')}): {why}"

    # -- the duty ------------------------------------------------------------------------------
    def duty(self) -> str:
        a = self.a
        if a.clock.now() < self.retry_at:
            return ""
        try:
            if self.check_log:
                self.check_log = False
                rid = unfinished(a.store.events())
                if rid is not None:
                    return self.run(rid, "resumed an unfinished run")
            view = a.view()
        except CoordinationError as exc:
            log.warning("%s: %s", a.node.name, exc)
            view = a.view_without_store()
        said = [self.site_duty(view)]
        if a.cfg.scheme == "hybrid" and view.store_ok:
            said.append(self.frontend_dns_duty(view))
        return "; ".join(s for s in said if s)

    def site_duty(self, view: View) -> str:
        a = self.a
        decision = decide(view)
        if decision.action == "failover":
            rid = run_id("failover", a.dr, int(decision.expected_epoch or 0))
            return self.run(rid, decision.reason)
        if a.cfg.replication.failback == "auto" and view.store_ok:
            primary_nodes = [n.name for n in a.cfg.nodes if n.site == a.primary]
            back = failback_due(view, primary_nodes, a.cfg.timings.failback_hold_s)
            if back.action == "failback" and self.came_by_failover(int(back.expected_epoch or 0)):
                return self.run(
                    run_id("failback", a.primary, int(back.expected_epoch or 0)), back.reason
                )
        return f"decision: {decision.action}: {decision.reason}"

    def came_by_failover(self, epoch: int) -> bool:
        """Whether the DR site became active at ``epoch`` by a failover (failback follows) and
        not by a planned switchover (it stays until the operator moves it)."""
        if epoch not in self.origin:
            runs = [
                str(e.get("run", ""))
                for e in self.a.store.events()
                if e.get("epoch") == epoch
                and e.get("outcome") == "done"
                and e.get("step") in ("take-lease", "hand-over")
            ]
            self.origin[epoch] = bool(runs) and runs[-1].startswith("failover")
        return self.origin[epoch]

    def frontend_dns_duty(self, view: View) -> str:
        dns = self.dns()
        if dns is None:
            return ""
        by_address = {addr: fe for fe, addr in self.fe_address.items()}
        if self.dns_at is None or view.now - self.dns_read >= DNS_REFRESH_S:
            self.dns_at = by_address.get(dns.current() or "")
            self.dns_read = view.now
        nodes = [n.name for n in self.a.cfg.nodes]
        d = pick_frontend(view, nodes, self.frontends, self.preferred, self.dns_at)
        if d.action != "move-dns" or d.target is None:
            return ""
        target = d.target

        def move(ctx: dict[str, Any]) -> None:
            dns.point_to(self.fe_address[target])

        rid = f"frontend-dns-{target}-{view.now:.3f}"
        try:
            self.a.runner.run(Runbook("frontend-dns", [Step("move-dns", move)]), rid, {})
        except DraasError as exc:
            self.dns_at = None
            return f"moving the DNS name to {target} failed: {exc}"
        self.dns_at = target
        return f"DNS name moved to frontend {target}: {d.reason}"
