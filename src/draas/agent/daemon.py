"""The agent's loop: one cycle every probe interval, one log line per cycle that changed
something.

Every agent probes the sites and publishes what it sees (with an expiry). The agent of the
site that holds the ``active`` record renews its lease, and demotes its own database when it
could not renew in time (self-fencing). The DR site's agent is the controller in this
version: it decides on the snapshot of observations and, on a confirmed disaster, runs the
failover runbook (which takes the lease first, so a second controller could never win too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from draas.agent.effects import replicators, site_probes
from draas.clock import Clock, SystemClock
from draas.config import Config
from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import CoordinationError, DraasError
from draas.failover.policy import View, decide, must_fence
from draas.failover.runbook import RunbookRunner
from draas.failover.runbooks import failover_runbook
from draas.health.detector import VantagePoint
from draas.traffic import TrafficSwitch

log = logging.getLogger("draas.agent")


class Agent:
    def __init__(self, cfg: Config, node: str, store: CoordinationStore,
                 clock: Clock | None = None) -> None:  # fmt: skip
        matches = [n for n in cfg.nodes if n.name == node]
        if not matches:
            known = ", ".join(n.name for n in cfg.nodes)
            raise DraasError(f"node {node!r} is not in the config; nodes: {known}")
        self.cfg = cfg
        self.node = matches[0]
        self.store = store
        self.clock = clock or SystemClock()
        self.primary = cfg.site_with_role("primary")
        self.dr = cfg.site_with_role("dr")
        t = cfg.timings
        self.vantage = VantagePoint(node, list(cfg.sites), t.rise, t.fall)
        self.probes = site_probes(cfg)
        self.voters = [n.name for n in cfg.nodes if n.site != self.primary]
        self.reps = replicators(cfg) if self.node.role == "site" else {}
        self.runner = RunbookRunner(store, node, self.clock)
        self.last_renewal: float | None = None
        self.held: ActiveRecord | None = None
        self.fenced = False
        self.last_said = ""

    # -- observing -----------------------------------------------------------------------------
    async def observe(self) -> None:
        now = self.clock.now()
        sites = list(self.probes)
        # Every probe of every site at once: a cycle lasts one probe timeout at most.
        results = await asyncio.gather(*(asyncio.gather(*(p.check() for p in self.probes[s]))
                                         for s in sites))  # fmt: skip
        for site, res in zip(sites, results, strict=True):
            if self.vantage.feed(site, all(r.ok for r in res), now):
                log.info("%s sees %s %s", self.node.name, site,
                         self.vantage.detectors[site].state)  # fmt: skip
        ttl = 3 * self.cfg.timings.probe_interval_s + 1
        self.store.publish(self.node.name, self.vantage.view(now), ttl)

    # -- the lease -----------------------------------------------------------------------------
    def lease_duty(self) -> str:
        t = self.cfg.timings
        now = self.clock.now()
        mine = self.node.site
        if mine is None:
            return ""
        try:
            active = self.store.active()
            if active is None and self.store.last_epoch() == 0 and mine == self.primary:
                self.held = self.store.take_active(mine, self.node.name, 0, t.lease_ttl_s)
                self.last_renewal = now
                return f"took the active record for {mine} (epoch {self.held.epoch})"
            held_by_me = active is not None and active.holder == self.node.name
            if held_by_me and self._quorum_says_my_site_is_down(active):
                said = self.fence("a quorum of vantage points sees this site down")
                self.store.release_active(active)  # type: ignore[arg-type]
                return said + "; released the active lease"
            if held_by_me and self.store.renew_active(active, t.lease_ttl_s):  # type: ignore[arg-type]
                self.held, self.last_renewal = active, now
                return ""
        except CoordinationError as exc:
            log.warning("%s: coordination store unreachable: %s", self.node.name, exc)
        return ""

    def fence_check(self) -> str:
        """The self-fencing rule, checked on its own short timer: a store call that hangs
        must never delay it past the lease's expiry."""
        t = self.cfg.timings
        now = self.clock.now()
        if self.held is None or self.fenced or self.last_renewal is None:
            return ""
        if must_fence(now, self.last_renewal, t.lease_ttl_s, t.retry_timeout_s):
            return self.fence(f"could not renew the lease for {now - self.last_renewal:.1f} s")
        return ""

    def _view(self, active: ActiveRecord | None = None) -> View:
        """The snapshot to decide on (``active`` when the caller has just read it)."""
        return View(now=self.clock.now(), voters=self.voters,
                    observations=self.store.observations(),
                    active=active if active is not None else self.store.active(),
                    last_epoch=self.store.last_epoch(), primary=self.primary, dr=self.dr,
                    confirm_window_s=self.cfg.timings.confirm_window_s)  # fmt: skip

    def _quorum_says_my_site_is_down(self, active: ActiveRecord) -> bool:
        """The holder steps down when the quorum would fail it over (it fences first)."""
        return self.node.site == self.primary and \
            decide(self._view(active)).action == "await-release"  # fmt: skip

    def fence(self, why: str) -> str:
        site = self.node.site or ""
        rep = self.reps.get(site)
        try:
            if rep is not None:
                rep.demote()
            self.fenced = True
        except DraasError as exc:
            return f"FAILED to fence {site}: {exc}"
        self.held = None
        return f"fenced {site} (database read-only): {why}"

    # -- deciding ------------------------------------------------------------------------------
    def controller_duty(self) -> str:
        if self.node.site != self.dr:
            return ""
        try:
            view = self._view()
        except CoordinationError as exc:
            view = View(now=self.clock.now(), voters=self.voters, observations={}, active=None,
                        last_epoch=0, primary=self.primary, dr=self.dr, store_ok=False,
                        confirm_window_s=self.cfg.timings.confirm_window_s)  # fmt: skip
            log.warning("%s: %s", self.node.name, exc)
        decision = decide(view)
        if decision.action != "failover":
            return f"decision: {decision.action}: {decision.reason}"
        run_id = f"failover-e{(decision.expected_epoch or 0) + 1}"
        book = failover_runbook(self.store, self.node.name, decision, self.reps,
                                self._switches(), self.probes[self.dr],
                                self.cfg.timings.lease_ttl_s, self.primary)  # fmt: skip
        ctx: dict[str, Any] = {}
        self.runner.run(book, run_id, ctx)
        self.held = self.store.active()
        self.last_renewal = self.clock.now()
        return f"failover to {self.dr} done (epoch {ctx.get('epoch')}): {decision.reason}"

    def _switches(self) -> list[tuple[TrafficSwitch, str]]:
        out: list[tuple[TrafficSwitch, str]] = []
        if self.cfg.dns is not None and self.cfg.scheme == "dns":
            from draas.traffic.dns import make_provider

            out.append((make_provider(self.cfg.dns), self.cfg.sites[self.dr].address))
        return out

    # -- the loop ------------------------------------------------------------------------------
    def cycle_sync(self) -> str:
        said = [s for s in (self.lease_duty(), self.controller_duty()) if s]
        return "; ".join(said)

    async def run(self, cycles: int | None = None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("agent %s (%s, site %s) starting; voters %s", self.node.name, self.node.role,
                 self.node.site, self.voters)  # fmt: skip
        watchdog = asyncio.create_task(self._watchdog(stop))
        n = 0
        while not stop.is_set() and (cycles is None or n < cycles):
            n += 1
            started = loop.time()
            try:
                await self.observe()
                line = await asyncio.to_thread(self.cycle_sync)
            except DraasError as exc:
                line = f"cycle failed: {exc}"
            if line and line != self.last_said:
                log.info("%s", line)
                self.last_said = line
            # A fixed cadence: the next cycle starts one interval after this one started.
            pause = max(0.0, self.cfg.timings.probe_interval_s - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        watchdog.cancel()
        log.info("agent %s stopping", self.node.name)

    async def _watchdog(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            said = await asyncio.to_thread(self.fence_check)
            if said:
                log.warning("%s", said)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
