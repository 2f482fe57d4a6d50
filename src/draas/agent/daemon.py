"""The agent: wires the tasks a node's role needs and runs them on one event loop.

Every agent observes (probes the sites, and in the hybrid scheme the frontends, and publishes
what it sees) and serves the control API. A site's agent also keeps the lease
(``keeper.LeaseKeeper``: take, renew, step down, fence, reopen) and watches its database
(``dbwatch.DatabaseWatch``); a frontend's agent routes its data plane to the lease holder
(``routing.RouteFollower``); the agent that holds the controller lease
(``leadership.ControllerLease``) is the controller (``controller.Controller``). Each task
runs on its own timer, the blocking ones in threads:

    cycle        every probe interval: observe (the service's checks), publish
    reach        every reach interval (0.1 s in the fast preset): a TCP connection to each
                 site's ports; a change is published at once and wakes the controller
    controller   on the holder of the controller lease, on a thread of its own: decide and
                 run the runbooks, as soon as something was published (woken) or every probe
                 interval
    leadership   every third of the controller lease's TTL, on a thread of its own: claim,
                 renew or hand on the controller lease (and keep a dead site agent's record)
    lease        every probe interval (at most the renewal interval): the lease rules
    fence watch  every 0.1 s, on a thread of its own: the self-fencing rule alone
    db watch     every 2 s: this site's database
    sync         every 0.25 s (at most a quarter of the degrade bound), on a thread of its own,
                 on the active site: the sync record (``syncer.Syncer``) and the position
    routes       a frontend watches the record (held open up to 1 s) and follows it at once
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from draas.agent.api import ControlApi
from draas.agent.control import Control
from draas.agent.controller import Controller
from draas.agent.dbwatch import CHECK_S, DatabaseWatch
from draas.agent.gate import RunbookGate
from draas.agent.keeper import LeaseKeeper
from draas.agent.keysync import KEYS_S, KeyPuller
from draas.agent.leadership import ControllerLease
from draas.agent.observer import Observer
from draas.agent.outbox import Outbox
from draas.agent.routing import WATCH_S, RouteFollower
from draas.agent.syncer import Syncer
from draas.apiclient import ApiClient, agent_url
from draas.clock import Clock, SystemClock
from draas.config import Config, Node, load_config
from draas.coordination import ActiveRecord, CoordinationStore, Event
from draas.deployment import Deployment, frontend_engine, probes, reach_probes, read_secret
from draas.errors import ApiError, ConfigError, CoordinationError, DraasError, InvalidInput
from draas.failover.policy import Action, decide
from draas.failover.receipts import Receipts
from draas.failover.runbook import RunbookRunner
from draas.failover.views import Settling, lease_timings, site_agents, view_of, voters
from draas.health.probes import ProbeResult
from draas.replication import Replicator
from draas.traffic.frontend.proxy import ProxyEngine

log = logging.getLogger("draas.agent")

ROUTES_S = 0.01  # pause between a frontend's rounds (each one watches the record)
FENCE_CHECK_S = 0.1  # how often the self-fencing rule is checked
SYNC_CHECK_S = 0.25  # how often the active site checks its standby (at most degrade / 4)
LEADER_EVERY_S = 5.0  # how often the holder checks where the store's leader is


def api_token(cfg: Config) -> str | None:
    """The commands' bearer token (None: commands disabled); a loose file is refused."""
    if cfg.api.token_file is None:
        return None
    token = read_secret(cfg.api.token_file, "api.token_file")
    if len(token) < 16:
        raise ConfigError(
            str(cfg.api.token_file), ["api.token_file: the token is shorter than 16 characters"]
        )
    return token


class Agent:
    """``config_path``: where SIGHUP reloads the config from; ``serve_api``: run the control
    API on the node's address and ``api_port``."""

    def __init__(
        self,
        cfg: Config,
        node: str,
        store: CoordinationStore,
        clock: Clock | None = None,
        config_path: str | None = None,
        serve_api: bool = False,
    ) -> None:
        matches = [n for n in cfg.nodes if n.name == node]
        if not matches:
            known = ", ".join(n.name for n in cfg.nodes)
            raise InvalidInput(f"node {node!r} is not in the config; nodes: {known}")
        self.node: Node = matches[0]
        self.store = store
        self.clock = clock or SystemClock()
        self.config_path = config_path
        self.stopping = False
        self.outbox = Outbox(store)
        self.gate = RunbookGate()
        self.runner = RunbookRunner(store, node, self.clock, should_stop=lambda: self.stopping)
        # The controller's runs also stop (between steps) when this agent lost the lease.
        self.controller_runner = RunbookRunner(
            store,
            node,
            self.clock,
            should_stop=lambda: self.stopping or not self._controlling_now(),
        )
        self.leadership: ControllerLease | None = None
        # Other nodes' times, judged in this agent's clock.
        self.receipts = Receipts(me=node, store_offset=store.clock_offset)
        self.last_said = ""
        # Set once this agent has probed and published: the lease task starts then (the
        # record is taken by an agent that already sees, as the others see it).
        self.observed = asyncio.Event()
        # Set when there is something new to decide on: the controller runs at once.
        self.wake = asyncio.Event()
        self._leader_checked = -1e9  # monotonic time the store's leader was last checked
        self.settling = Settling(cfg.timings.failback_hold_s)  # for the lease rules' quorum
        self.keeper: LeaseKeeper | None = None
        self.dbwatch: DatabaseWatch | None = None
        self.syncer: Syncer | None = None
        self.follower: RouteFollower | None = None
        self._configure(cfg)
        self.control = Control(
            cfg=cfg,
            node=self.node,
            store=store,
            clock=self.clock,
            deployment=self.deployment,
            gate=self.gate,
            on_taken=self.keeper.took_over if self.keeper else None,
            stopping=lambda: self.stopping,
            receipts=self.receipts,
        )
        self.api = ControlApi(cfg, self.control, api_token(cfg)) if serve_api else None

    # -- wiring --------------------------------------------------------------------------------
    def _configure(self, cfg: Config) -> None:
        """Build what the node's role needs from ``cfg`` (again on SIGHUP: the lease state and
        the data plane are kept, the rest is built anew)."""
        self.cfg = cfg
        node, t = self.node, cfg.timings
        self.deployment = Deployment(cfg, self.store)
        self.observer = Observer(
            node=node.name,
            probes=probes(cfg),
            rise=t.rise,
            fall=t.fall,
            ttl_s=3 * t.probe_interval_s + 1,
            store=self.store,
            clock=self.clock,
            emit=self.outbox.emit,
            on_probe=self._on_probe,
            # Each agent votes on the sites it is not at: it reaches those.
            reach={s: p for s, p in reach_probes(cfg).items() if s != node.site},
            reach_fall=t.reach_fall,
        )
        rep = self.deployment.reps.get(node.site or "") if node.role == "site" else None
        if node.site is not None:
            self._configure_site(cfg, node.site, rep)
        self.keys: KeyPuller | None = None
        self._key_clients: dict[str, ApiClient] = {}  # reset with the config
        here = cfg.sites.get(node.site or "")
        if node.role == "site" and here is not None and here.key_directories:
            self.keys = KeyPuller(
                dirs=here.key_directories,
                fetch_listing=lambda site: self._keys_api(site).get_secret("/v1/keys"),
                fetch_manifest=lambda site, i: self._keys_api(site).get_secret(
                    f"/v1/keys/{i}", raw_text=True
                ),
            )
            puller = self.keys
            self.observer.keys = lambda: puller.report
        if node.role == "frontend":
            if self.follower is None:
                self.follower = RouteFollower(
                    node=node.name,
                    engine=frontend_engine(cfg, node),
                    store=self.store,
                    clock=self.clock,
                    emit=self.outbox.emit,
                    on_move=self.observer.publish,
                )
            follower = self.follower
            self.observer.routes_to = lambda: follower.routes_to
        self.controller = None
        if node.name in cfg.controller_candidates():
            self.controller = Controller(
                cfg=cfg,
                node=node.name,
                store=self.store,
                clock=self.clock,
                runner=self.controller_runner,
                deployment=self.deployment,
                gate=self.gate,
                on_taken=self._took_over,
                emit=self.outbox.emit,
                holding=self._controlling_now,
                receipts=self.receipts,
            )
            if self.leadership is None:
                self.leadership = ControllerLease(
                    cfg=cfg,
                    node=node,
                    store=self.store,
                    clock=self.clock,
                    emit=self.outbox.emit,
                    busy=lambda: self.gate.running is not None,
                    may_keep=self._may_keep,
                    receipts=self.receipts,
                )
            else:
                self.leadership.cfg = cfg

    def _configure_site(self, cfg: Config, site: str, replicator: Replicator | None) -> None:
        if replicator is not None:
            hosts = {s: r.endpoint.host for s, r in self.deployment.reps.items()}
            if self.dbwatch is None:
                self.dbwatch = DatabaseWatch(
                    node=self.node.name,
                    site=site,
                    rep=replicator,
                    store=self.store,
                    clock=self.clock,
                    emit=self.outbox.emit,
                    holding=self._holding,
                    db_hosts=hosts,
                )
            else:
                self.dbwatch.rep, self.dbwatch.db_hosts = replicator, hosts
            dbwatch = self.dbwatch
            self.observer.database = lambda: dbwatch.report
        if self.keeper is None:
            self.keeper = LeaseKeeper(
                node=self.node.name,
                site=site,
                home=cfg.site_with_role("primary"),
                timings=lease_timings(cfg),
                store=self.store,
                replicator=replicator,
                clock=self.clock,
                quorum=self._quorum,
                db_role=self.dbwatch or _NoDatabase(),
                emit=self.outbox.emit,
            )
        else:
            self.keeper.timings, self.keeper.rep = lease_timings(cfg), replicator
        self.syncer = None
        if replicator is not None:
            standby = self.deployment.other(site)
            keeper = self.keeper
            self.syncer = Syncer(
                node=self.node.name,
                site=site,
                standby=standby,
                own=replicator,
                partner=self.deployment.reps.get(standby),
                standby_agents=site_agents(cfg, standby),
                store=self.store,
                clock=self.clock,
                emit=self.outbox.emit,
                held=lambda: keeper.state.snapshot().record,
                degrade_after_s=cfg.timings.sync_degrade_s,
                semi_sync=cfg.replication.mode == "semi-sync",
            )

    def _controlling_now(self) -> bool:
        return self.leadership is not None and self.leadership.holding()

    def _may_keep(self, site: str) -> bool:
        return self.controller is not None and self.controller.may_keep(site)

    def _holding(self) -> bool:
        return self.keeper is not None and self.keeper.state.snapshot().record is not None

    def _took_over(self, record: ActiveRecord) -> None:
        if self.keeper is not None:
            self.keeper.took_over(record)

    def _quorum(self, active: ActiveRecord | None, last_epoch: int) -> Action:
        store = self.store
        now = self.clock.now()
        view = view_of(
            self.cfg,
            now,
            self.receipts.rebase(store.observations(), now),
            active,
            last_epoch,
            store.sync(),
            store.position(),
            last=store.last_active() if active is None else None,
        )
        return decide(self.settling.apply(view)).action

    def _sync_tick(self) -> str:
        """The syncer of the current config (a reload may build a new one)."""
        return "" if self.syncer is None else self.syncer.tick()

    def _on_probe(self, target: str, result: ProbeResult) -> None:
        self.control.metrics.observe_probe(target, result.ok, result.latency_s)

    def reload(self) -> str:
        """SIGHUP: validate the config file again and apply it; a bad one changes nothing."""
        if self.config_path is None:
            return "SIGHUP ignored: no config file to reload"
        try:
            new = load_config(self.config_path)
            token = api_token(new)
        except ConfigError as exc:
            return f"reload REFUSED, still running the previous config: {exc}"
        mine = [n for n in new.nodes if n.name == self.node.name]
        if not mine:
            return (
                f"reload REFUSED: node {self.node.name!r} is no longer in "
                f"{self.config_path}; still running the previous config"
            )
        fixed = ("role", "site", "address", "api_port")
        if (
            any(getattr(mine[0], k) != getattr(self.node, k) for k in fixed)
            or new.scheme != self.cfg.scheme
            or new.frontend != self.cfg.frontend
            or new.coordination != self.cfg.coordination
        ):
            return (
                "reload REFUSED: the node's role, site, address or api_port, the scheme, "
                "the frontend or the coordination settings changed; those need a restart "
                "(still running the previous config)"
            )
        self.node = mine[0]
        self._configure(new)
        self.control.reconfigure(new, self.node, self.deployment)
        if self.api is not None:
            self.api.reload(new, token)
        return f"reloaded {self.config_path} (scheme {new.scheme}, {len(new.nodes)} nodes)"

    # -- the tasks -----------------------------------------------------------------------------
    def duties(self) -> str:
        """The blocking part of a cycle: the lag history; the holder keeps the store's leader
        off its own site."""
        said = [self.control.lag_duty()]
        if self._holding() and time.monotonic() - self._leader_checked >= LEADER_EVERY_S:
            self._leader_checked = time.monotonic()
            said.append(self._lead_away())
        return "; ".join(s for s in said if s)

    def _keys_api(self, site: str) -> ApiClient:
        """The API of ``site``'s agent (the active site's: the keys' source), one client per
        site (its TLS context is built once, not every round)."""
        if site in self._key_clients:
            return self._key_clients[site]
        if self.cfg.api.tls_cert_file is None and not self.cfg.api.insecure_key_transfer:
            raise ApiError(
                "key directories travel only over TLS: set api.tls_cert_file and api.tls_key_file"
            )
        there = [n for n in self.cfg.nodes if n.role == "site" and n.site == site]
        if not there:
            raise ApiError(f"no agent of site {site} is configured to fetch its keys from")
        client = ApiClient(self.cfg, agent=agent_url(self.cfg, there[0]), timeout_s=5)
        self._key_clients[site] = client
        return client

    def _keys_tick(self) -> str:
        """The standby copies the active site's key directories when they changed."""
        if self.keys is None:
            return ""
        try:
            active = self.store.active()
        except CoordinationError as exc:
            return f"keys not compared: coordination store unreachable: {exc}"
        if active is None or active.site == self.node.site:
            self.keys.report = None  # the source, or nobody is: nothing to compare with
            return ""
        said = self.keys.tick(active.site)
        if said:
            self.outbox.emit(
                Event(
                    ts=self.clock.now(),
                    node=self.node.name,
                    runbook="keys",
                    run=f"keys-{self.node.site}",
                    step="sync",
                    outcome="copied",
                    target=self.node.site,
                    detail=said,
                )
            )
        report = self.keys.report
        if report is not None and report.error:
            return f"keys FAILED to sync from {report.source}: {report.error}"
        return said

    def _lead_away(self) -> str:
        """A leader on the active site would make a disaster there cost the store a leader
        election (etcd: at least its election timeout) before the failover can write."""
        site = self.node.site
        here = self.cfg.sites.get(site) if site else None
        hosts = [n.address for n in self.cfg.nodes if site and n.site == site]
        if here is not None:
            hosts += [here.address] + ([here.database.host] if here.database else [])
        try:
            moved = self.store.lead_away_from(hosts)
        except CoordinationError as exc:
            return f"store leader not checked: {exc}"
        if moved:
            log.info("%s: %s (off the active site %s)", self.node.name, moved, site)
        return moved

    async def cycle(self) -> str:
        detections = await self.observer.observe()
        for line in detections:
            log.info("%s", line)
        self.observed.set()
        await asyncio.to_thread(self.observer.publish)
        self.wake.set()  # the controller decides on what was just published
        await asyncio.to_thread(self.outbox.flush)
        return await asyncio.to_thread(self.duties)

    async def _reaching(self, stop: asyncio.Event) -> None:
        """The hard-failure check, on its own short interval: a change is published at once
        (not at the next probe cycle), and wakes the controller; while a site is
        unreachable the controller is woken every round (the other voters' reports come in
        one by one)."""
        loop = asyncio.get_running_loop()
        every = self.cfg.timings.reach_interval_s
        while not stop.is_set():
            started = loop.time()
            try:
                changes = await self.observer.reach_round()
                for line in changes:
                    log.info("%s", line)
                if changes:
                    await asyncio.to_thread(self.observer.publish)
                if changes or (self.observer.unreachable() and self._eager()):
                    self.wake.set()
            except DraasError as exc:
                log.warning("reachability round failed: %s", exc)
            pause = max(0.0, every - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    def _eager(self) -> bool:
        """Whether the controller has a decision to take early: this agent holds the
        controller lease and the site it protects is the one found unreachable."""
        return (
            self.controller is not None
            and self._controlling_now()
            and self.controller.protected in self.observer.unreachable()
        )

    async def _controlling(self, stop: asyncio.Event, executor: Executor) -> None:
        """The controller's duty on a thread of its own, as soon as something new was
        published (woken) or every probe interval, never two at once."""
        assert self.controller is not None
        loop = asyncio.get_running_loop()
        await self.observed.wait()
        last = ""
        while not stop.is_set():
            self.wake.clear()
            controller = self.controller  # a reload may build a new one
            try:
                said = await loop.run_in_executor(executor, controller.duty)
            except DraasError as exc:
                said = f"controller failed: {exc}"
            except Exception:  # a bug must not stop the controller: say it, go on
                log.exception("the controller's duty failed unexpectedly")
                said = ""
            if said and said != last:
                log.info("%s", said)
            last = said
            woken = asyncio.ensure_future(self.wake.wait())
            stopped = asyncio.ensure_future(stop.wait())
            _, pending = await asyncio.wait(
                {woken, stopped},
                timeout=self.cfg.timings.probe_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        log.info(
            "agent %s (%s, site %s) starting; voters %s",
            self.node.name,
            self.node.role,
            self.node.site,
            voters(self.cfg),
        )
        engine = None if self.follower is None else self.follower.engine
        if isinstance(engine, ProxyEngine):
            await engine.start()
        if self.follower is not None:
            await asyncio.to_thread(self.follower.read_back)
        if self.api is not None:
            await self.api.start(self.node.address, self.node.api_port)
        # The lease and the self-fencing rule on threads of their own: they never wait behind
        # a runbook, an API call or each other (a store call may take a timeout per etcd member
        # when this site is cut off; the fence rule makes none).
        own = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=n)
            for n in ("lease", "fence", "sync", "controller", "routes", "leadership")
        ]
        tasks = [
            asyncio.create_task(self._cycles(stop)),
            asyncio.create_task(self._reaching(stop)),
        ]
        if self.controller is not None and self.leadership is not None:
            lead = self.leadership
            tasks += [
                asyncio.create_task(self._controlling(stop, own[3])),
                asyncio.create_task(
                    self._every(stop, lead.tick, lead.every_s, "controller lease", own[5])
                ),
            ]
        if self.keeper is not None:
            keeper = self.keeper
            every = lease_timings(self.cfg).tick_s
            tasks += [
                asyncio.create_task(
                    self._every(stop, keeper.tick, every, "lease", own[0], self.observed)
                ),
                asyncio.create_task(
                    self._every(stop, keeper.fence_tick, FENCE_CHECK_S, "fence", own[1])
                ),
            ]
        if self.syncer is not None:
            every = min(SYNC_CHECK_S, self.cfg.timings.sync_degrade_s / 4)
            tasks.append(
                asyncio.create_task(self._every(stop, self._sync_tick, every, "sync", own[2]))
            )
        if self.keys is not None:
            tasks.append(asyncio.create_task(self._every(stop, self._keys_tick, KEYS_S, "keys")))
        if self.dbwatch is not None:
            dbwatch = self.dbwatch
            tasks.append(asyncio.create_task(self._every(stop, dbwatch.check, CHECK_S, "db")))
        if self.follower is not None:
            follower = self.follower

            def follow() -> str:  # a watch held open up to WATCH_S, then at once again
                return follower.follow(watch_s=WATCH_S)

            tasks.append(asyncio.create_task(self._every(stop, follow, ROUTES_S, "routes", own[4])))
        await stop.wait()
        await self._shut_down(tasks)
        for executor in own:
            executor.shutdown(wait=False)

    async def _cycles(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                line = await self.cycle()
            except DraasError as exc:
                line = f"cycle failed: {exc}"
            except Exception:  # a bug must not stop the agent: say it, go on next cycle
                log.exception("cycle failed unexpectedly")
                line = "cycle failed unexpectedly (see the traceback above)"
            if line and line != self.last_said:
                log.info("%s", line)
                self.last_said = line
            # A fixed cadence: the next cycle starts one interval after this one started.
            pause = max(0.0, self.cfg.timings.probe_interval_s - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def _every(
        self,
        stop: asyncio.Event,
        duty: Callable[[], str],
        every_s: float,
        name: str,
        executor: Executor | None = None,
        after: asyncio.Event | None = None,
    ) -> None:
        """Run the blocking ``duty`` in a thread every ``every_s`` until ``stop`` (from when
        ``after`` is set); log what it says when that changes (a fence is a warning)."""
        loop = asyncio.get_running_loop()
        if after is not None:
            await after.wait()
        last = ""
        while not stop.is_set():
            try:
                said = await loop.run_in_executor(executor, duty)
            except DraasError as exc:
                said = f"{name} failed: {exc}"
            except Exception:  # a bug must not stop the task: say it, go on
                log.exception("%s failed unexpectedly", name)
                said = ""
            if said and said != last:
                level = logging.WARNING if "fence" in said or "FAILED" in said else logging.INFO
                log.log(level, "%s", said)
            last = said
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def _on_sighup(self) -> None:
        said = self.reload()
        log.log(logging.ERROR if "REFUSED" in said else logging.INFO, "%s", said)

    async def _shut_down(self, tasks: list[asyncio.Task[None]]) -> None:
        """SIGTERM: the current step finishes (a runbook stops before its next step and can
        be resumed); this agent withdraws its observation (the others see it gone at once),
        leaves the active record it holds to the controller's custody, releases the controller
        lease and stops serving."""
        log.info("agent %s stopping: finishing the current step", self.node.name)
        self.stopping = True
        for task in tasks:
            task.cancel()
        if not await asyncio.to_thread(self.control.wait_idle, 60.0):
            log.warning(
                "a command is still running after 60 s; stopping anyway (it resumes "
                "when an agent runs it again)"
            )
        if self.keeper is not None:
            said = await asyncio.to_thread(self.keeper.leave)
            if said:
                log.warning("%s", said)
        try:
            await asyncio.to_thread(self.store.withdraw, self.node.name)
        except CoordinationError as exc:
            log.warning("observation not withdrawn (it expires): %s", exc)
        if self.leadership is not None:
            said = await asyncio.to_thread(self.leadership.release)
            if said:
                log.info("%s", said)
        await asyncio.to_thread(self.outbox.flush)
        if self.api is not None:
            await self.api.stop()
        engine = None if self.follower is None else self.follower.engine
        if isinstance(engine, ProxyEngine):
            await engine.stop()
        log.info("agent %s stopped", self.node.name)


class _NoDatabase:
    """A site node without a database section: its role is never known."""

    def role(self) -> str | None:
        return None

    def learned(self, role: str) -> None:
        return None
