"""The agent's loop: one cycle every probe interval, one log line per cycle that changed
something.

Every agent probes the sites (and, in the hybrid scheme, the frontends) and publishes what it
sees, with an expiry. The agent of the site that holds the ``active`` record renews its
lease, and demotes its own database when it could not renew in time (self-fencing) or sees
the record held by someone else. A frontend's agent routes its frontend to the site that
holds the record (traffic follows the lease). The DR site's agent is the controller in this
version (see ``controller.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from draas.agent.api import ControlApi
from draas.agent.control import Control
from draas.agent.controller import Controller
from draas.agent.effects import (
    frontend_engine,
    frontend_probes,
    read_secret,
    replicators,
    site_probes,
)
from draas.clock import Clock, SystemClock
from draas.config import Config, load_config
from draas.coordination import ActiveRecord, CoordinationStore
from draas.errors import ConfigError, CoordinationError, DraasError, StaleEpoch
from draas.failover.manual import snapshot
from draas.failover.policy import View, decide, must_fence
from draas.failover.runbook import RunbookRunner, planned_move_under_way
from draas.health.detector import VantagePoint
from draas.replication import ReplicationStatus
from draas.traffic.frontend.proxy import ProxyEngine

log = logging.getLogger("draas.agent")


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


FOLLOW_S = 0.2  # how often the lease watchdog and a frontend's lease follower run
REPLICATION_CHECK_S = 2.0


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
            raise DraasError(f"node {node!r} is not in the config; nodes: {known}")
        self.node = matches[0]
        self.store = store
        self.clock = clock or SystemClock()
        self.config_path = config_path
        self.stopping = False
        self._configure(cfg)
        self.runner = RunbookRunner(store, node, self.clock, should_stop=lambda: self.stopping)
        self.engine = frontend_engine(cfg, self.node) if self.node.role == "frontend" else None
        self.routes_to: str | None = None
        self.follow_rounds = 0
        self.last_renewal: float | None = None
        self.held: ActiveRecord | None = None
        self.fenced = False
        self.replication: str | None = None
        self.replication_read = -REPLICATION_CHECK_S
        self.replica_ran_since: float | None = None  # server start of the run seen replicating
        self.db_doc: dict[str, object] | None = None
        self.last_said = ""
        self.last_db_said = ""
        # Fencing and reopening the site's database never interleave (they run on the cycle,
        # the watchdog and the database watch).
        self.db_lock = threading.Lock()
        self.control = Control(self)
        self.api = ControlApi(cfg, self.control, api_token(cfg)) if serve_api else None

    def _configure(self, cfg: Config) -> None:
        """Everything derived from the config (again on SIGHUP)."""
        self.cfg = cfg
        self.primary = cfg.site_with_role("primary")
        self.dr = cfg.site_with_role("dr")
        t = cfg.timings
        self.probes: dict[str, list] = dict(site_probes(cfg))  # type: ignore[type-arg]
        if cfg.scheme == "hybrid":
            self.probes.update(frontend_probes(cfg))
        self.vantage = VantagePoint(self.node.name, list(self.probes), t.rise, t.fall)
        self.voters = [n.name for n in cfg.nodes if n.site != self.primary]
        self.reps = replicators(cfg) if self.node.role == "site" else {}
        self.controller = Controller(self) if self.node.site == self.dr else None

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
        if self.api is not None:
            self.api.reload(new, token)
        return f"reloaded {self.config_path} (scheme {new.scheme}, {len(new.nodes)} nodes)"

    # -- observing -----------------------------------------------------------------------------
    async def observe(self) -> None:
        now = self.clock.now()
        targets = list(self.probes)
        # Every probe of every target at once: a cycle lasts one probe timeout at most.
        results = await asyncio.gather(
            *(asyncio.gather(*(p.check() for p in self.probes[s])) for s in targets)
        )
        for target, res in zip(targets, results, strict=True):
            for r in res:
                self.control.metrics.observe_probe(target, r.ok, r.latency_s)
            if self.vantage.feed(target, all(r.ok for r in res), now):
                log.info(
                    "%s sees %s %s", self.node.name, target, self.vantage.detectors[target].state
                )
        self.publish()

    def publish(self) -> None:
        doc = self.vantage.view(self.clock.now())
        if self.engine is not None:
            doc["routes_to"] = self.routes_to
        if self.db_doc is not None:
            doc["replication"] = self.db_doc
        self.store.publish(self.node.name, doc, 3 * self.cfg.timings.probe_interval_s + 1)

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
            if active is None and self.held is None:
                back = self._take_back(mine)
                if back:
                    return back
            held_by_me = active is not None and active.holder == self.node.name
            if self.held is not None and active is not None and not held_by_me:
                return self.fence(
                    f"the active record moved to {active.holder} (epoch {active.epoch})"
                )
            if held_by_me and self._quorum_says_my_site_is_down(active):  # type: ignore[arg-type]
                said = self.fence("a quorum of vantage points sees this site down")
                self.store.release_active(active)  # type: ignore[arg-type]
                return said + "; released the active lease"
            if held_by_me and self.store.renew_active(active, t.lease_ttl_s):  # type: ignore[arg-type]
                new = self.held is None or self.held.epoch != active.epoch  # type: ignore[union-attr]
                self.held, self.last_renewal = active, now
                if new:
                    self.fenced = False  # handed to us: the runbook opens our database
                    said = f"holds the active record for {mine} (epoch {active.epoch})"  # type: ignore[union-attr]
                    return said + self._reopen_if_restarted(mine)
        except CoordinationError as exc:
            log.warning("%s: coordination store unreachable: %s", self.node.name, exc)
        return ""

    def _reopen_if_restarted(self, mine: str) -> str:
        """This agent (re)started holding the live record, but its database came back
        read-only (a restarted server starts read-only): the lease says this site takes the
        writes, so open them. A replica is left alone: a switchover's promote step opens it
        after draining."""
        rep = self.reps.get(mine)
        if rep is None:
            return ""
        try:
            if rep.status().role != "read-only":
                return ""
            rep.promote(detach=False)
        except DraasError as exc:
            return f"; its database is read-only and could not be reopened: {exc}"
        return "; its database had restarted read-only: reopened for writes"

    def _take_back(self, mine: str) -> str:
        """The record this agent last held expired or was released (the agent restarted or
        stopped, its site blinked, the store was out of reach) and nobody took it since (the
        epoch did not move, so no one was promoted). If this site's database is not a replica
        and the quorum does not see the site down, take the record again and reopen writes:
        the site still holds every write. Otherwise a failover decides."""
        last = self.store.last_active()
        if (
            last is None
            or last.holder != self.node.name
            or last.site != mine
            or self.store.last_epoch() != last.epoch
            or mine not in self.reps
        ):
            return ""
        try:
            role = self.reps[mine].status().role
        except DraasError:
            return ""
        if role == "replica" or decide(self.view()).action in ("failover", "await-release"):
            return ""
        try:
            rec = self.store.take_active(
                mine, self.node.name, last.epoch, self.cfg.timings.lease_ttl_s
            )
        except StaleEpoch:
            return ""
        self.held, self.last_renewal = rec, self.clock.now()
        if role != "primary":
            try:
                self.reps[mine].promote(detach=False)
            except DraasError as exc:  # writes stay shut: give the lease up for a failover
                self.store.release_active(rec)
                self.held = None
                return f"could not reopen writes on {mine} ({exc}); released the lease again"
        self.fenced = False
        return (
            f"took the active record for {mine} back (epoch {rec.epoch}; it last held "
            f"epoch {last.epoch}, nobody took over since, and {mine}'s database "
            f"{'still took writes' if role == 'primary' else 'was reopened for writes'})"
        )

    def took_over(self, record: ActiveRecord) -> None:
        """A failover runbook running here just took ``record``: renew it from now on (the
        runbook's later steps may outlast the lease)."""
        if record.holder != self.node.name:
            return
        self.held = record
        self.last_renewal = self.clock.now()
        self.fenced = False

    def renew_duty(self) -> str:
        """Renew on the watchdog's timer too: a long runbook step in the cycle (a rejoin, a
        catch-up) must not starve the lease of the site it is running on."""
        held, last = self.held, self.last_renewal
        if held is None or self.fenced or last is None:
            return ""
        now = self.clock.now()
        if now - last < self.cfg.timings.lease_renew_s:
            return ""
        with contextlib.suppress(CoordinationError):
            if self.store.renew_active(held, self.cfg.timings.lease_ttl_s):
                self.last_renewal = now
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

    def view(self, active: ActiveRecord | None = None) -> View:
        """The snapshot to decide on (``active`` when the caller has just read it)."""
        return snapshot(self.cfg, self.store, self.clock.now(), active)

    def view_without_store(self) -> View:
        return View(
            now=self.clock.now(),
            voters=self.voters,
            observations={},
            active=None,
            last_epoch=0,
            primary=self.primary,
            dr=self.dr,
            store_ok=False,
            confirm_window_s=self.cfg.timings.confirm_window_s,
        )

    def _quorum_says_my_site_is_down(self, active: ActiveRecord) -> bool:
        """The holder steps down when the quorum would fail it over (it fences first)."""
        return (
            self.node.site == self.primary and decide(self.view(active)).action == "await-release"
        )

    def fence(self, why: str) -> str:
        with self.db_lock:
            return self._fence(why)

    def _fence(self, why: str) -> str:
        site = self.node.site or ""
        rep = self.reps.get(site)
        log.warning("fencing %s: %s", site, why)
        try:
            if rep is not None:
                rep.demote()
            self.fenced = True
        except DraasError as exc:
            return f"FAILED to fence {site}: {exc}"
        self.held = None
        return f"fenced {site} (database read-only): {why}"

    # -- a site's replication, watched -----------------------------------------------------------
    def replication_duty(self) -> str:
        """Read this site's database every few seconds (published with the observations, for
        the status and metrics). A standby reports its replication link breaking or healing,
        as an event; this alone never fails anything over."""
        now = self.clock.now()
        site = self.node.site
        if (
            site is None
            or site not in self.reps
            or now - self.replication_read < REPLICATION_CHECK_S / 2
        ):
            return ""
        self.replication_read = now
        try:
            st = self.reps[site].status()
        except DraasError as exc:
            self.db_doc = {"role": "unknown", "healthy": False, "last_error": str(exc)}
            state, detail = "unknown", str(exc)
        else:
            healthy = st.role != "replica" or (st.healthy_replica and st.io_running == "Yes")
            self.db_doc = {
                "role": st.role,
                "read_only": st.read_only,
                "lag_s": st.lag_s,
                "lag_trx": st.lag_trx,
                "io_running": st.io_running,
                "sql_running": st.sql_running,
                "semi_sync": st.semi_sync,
                "healthy": healthy,
                "last_error": st.last_error,
                "unfit": st.unfit,
                "gtid_binlog_pos": st.gtid_binlog_pos,
            }
            if st.role == "read-only":
                return self._reopen_if_closed(site)
            if st.role != "replica":
                return ""
            resumed = self._resume_if_restarted(site, st)
            if resumed:
                return resumed
            state = "healthy" if healthy else "broken"
            detail = f"IO {st.io_running}, SQL {st.sql_running}: {st.last_error or 'no error'}"
        if self.held is not None or state == self.replication:
            return ""
        before, self.replication = self.replication, state
        if before is None and state == "healthy":
            return ""
        self.store.append_event(
            {
                "ts": now,
                "node": self.node.name,
                "runbook": "monitor",
                "run": f"replication-{site}",
                "step": "replication",
                "outcome": state,
                "detail": detail,
            }
        )
        return f"replication of {site} {state}: {detail}"

    def _reopen_if_closed(self, site: str) -> str:
        """This agent holds the lease for its site, has not fenced it, and no switchover is
        draining it, yet its database is read-only (closed behind draas's back, or by a
        restart): the lease says this site takes the writes, so open them again."""
        with self.db_lock:
            return self._reopen_locked(site)

    def _reopen_locked(self, site: str) -> str:
        held = self.held
        if held is None or self.fenced or held.site != site:
            return ""
        try:
            current = self.store.active()
            if current is None or (current.holder, current.epoch) != (self.node.name, held.epoch):
                return ""  # the lease is no longer ours: the fencing rules act, not this
            if planned_move_under_way(self.store.events(), self.clock.now()) is not None:
                return ""
        except CoordinationError:
            return ""
        now = self.clock.now()
        try:
            self.reps[site].promote(detach=False)
        except DraasError as exc:
            said = f"{site}'s database is read-only and could not be reopened: {exc}"
            outcome = "failed"
        else:
            said = (
                f"{site}'s database was read-only while {site} holds the lease (epoch "
                f"{held.epoch}): reopened for writes"
            )
            outcome = "reopened"
        self.store.append_event(
            {
                "ts": now,
                "node": self.node.name,
                "runbook": "monitor",
                "run": f"database-{site}",
                "step": "writes",
                "outcome": outcome,
                "epoch": held.epoch,
                "detail": said,
            }
        )
        return said

    def _resume_if_restarted(self, site: str, st: ReplicationStatus) -> str:
        """A replica of the active site whose threads are both stopped without an error,
        and that this agent has not seen replicating since the server started, has
        restarted (servers start with replication stopped): start it again. A replica seen
        running in this same server run was stopped by hand: left alone, like anything else
        (an error, another source, this site active) is left to the runbooks."""
        running = st.io_running == "Yes" and st.sql_running == "Yes"
        if running and st.started_at is not None:
            self.replica_ran_since = st.started_at
        if st.io_running != "No" or st.sql_running != "No" or st.last_error:
            return ""
        seen = self.replica_ran_since
        if seen is not None and st.started_at is not None and abs(seen - st.started_at) < 10:
            return ""  # stopped by hand during this server run
        try:
            active = self.store.active()
        except CoordinationError:
            return ""
        if (
            active is None
            or active.site == site
            or active.site not in self.reps
            or st.source != self.reps[active.site].endpoint.host
        ):
            return ""
        try:
            self.reps[site].resume()
        except DraasError as exc:
            return f"could not restart replication of {site} from {active.site}: {exc}"
        said = (
            f"{site}'s database had restarted with replication stopped: resumed from {active.site}"
        )
        self.store.append_event(
            {
                "ts": self.clock.now(),
                "node": self.node.name,
                "runbook": "monitor",
                "run": f"replication-{site}",
                "step": "replication",
                "outcome": "resumed",
                "detail": said,
            }
        )
        return said

    # -- a frontend follows the lease ----------------------------------------------------------
    def follow_lease(self) -> str:
        if self.engine is None:
            return ""
        try:
            active = self.store.active()
        except CoordinationError:
            return ""  # keep routing where we route: traffic moves only with the lease
        self.follow_rounds += 1
        if self.follow_rounds % 5 == 0:  # a restarted data plane may route elsewhere: read it
            try:
                self.routes_to = self.engine.current()
            except DraasError:
                self.routes_to = None
        if active is None or active.site == self.routes_to:
            return ""
        try:
            self.engine.point_to(active.site)
        except DraasError as exc:
            return f"FAILED to route {self.node.name} to {active.site}: {exc}"
        before, self.routes_to = self.routes_to, active.site
        self.publish()
        return f"{self.node.name} routes to {active.site} (was {before}, epoch {active.epoch})"

    # -- the loop ------------------------------------------------------------------------------
    def cycle_sync(self) -> str:
        duties = [self.lease_duty, self.control.lag_duty]
        if self.controller is not None:
            duties.append(self.controller.duty)
        said = [s for s in (d() for d in duties) if s]
        return "; ".join(said)

    async def run(self, cycles: int | None = None) -> None:
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
            self.voters,
        )
        if isinstance(self.engine, ProxyEngine):
            await self.engine.start()
        if self.engine is not None:
            self.routes_to = await asyncio.to_thread(self.engine.current)
        if self.api is not None:
            await self.api.start(self.node.address, self.node.api_port)
        watchdog = asyncio.create_task(self._watchdog(stop))
        fence_watch = asyncio.create_task(self._fence_watch(stop))
        # The site's database is read on a task of its own: a server that hangs (a full disk
        # blocks SHOW SLAVE STATUS) must never hold up the probes and the lease.
        db_watch = asyncio.create_task(self._db_watch(stop))
        n = 0
        while not stop.is_set() and (cycles is None or n < cycles):
            n += 1
            started = loop.time()
            try:
                await self.observe()
                line = await asyncio.to_thread(self.cycle_sync)
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
        await self._shut_down(watchdog, db_watch)
        fence_watch.cancel()

    def _on_sighup(self) -> None:
        said = self.reload()
        log.log(logging.ERROR if "REFUSED" in said else logging.INFO, "%s", said)

    async def _shut_down(self, watchdog: asyncio.Task[None], db_watch: asyncio.Task[None]) -> None:
        """SIGTERM: the current step finishes (a runbook stops before its next step and can
        be resumed), then this agent releases the lease it holds and stops serving."""
        log.info("agent %s stopping: finishing the current step", self.node.name)
        self.stopping = True
        watchdog.cancel()
        db_watch.cancel()
        if not await asyncio.to_thread(self.control.wait_idle, 60.0):
            log.warning(
                "a command is still running after 60 s; stopping anyway (it resumes "
                "when an agent runs it again)"
            )
        if self.held is not None and not self.fenced:
            try:
                self.store.release_active(self.held)
                log.warning(
                    "released the active lease of %s (epoch %s); its database still "
                    "takes writes, but nothing fences it until the agent runs again",
                    self.node.site,
                    self.held.epoch,
                )
            except CoordinationError as exc:
                log.warning(
                    "could not release the active lease (%s); it expires in %g s",
                    exc,
                    self.cfg.timings.lease_ttl_s,
                )
            self.held = None
        if self.api is not None:
            await self.api.stop()
        if isinstance(self.engine, ProxyEngine):
            await self.engine.stop()
        log.info("agent %s stopped", self.node.name)

    async def _db_watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                said = await asyncio.to_thread(self.replication_duty)
            except DraasError as exc:
                said = f"replication check failed: {exc}"
            except Exception:  # a bug must not stop the watch: say it, go on
                log.exception("replication check failed unexpectedly")
                said = ""
            if said and said != self.last_db_said:
                log.info("%s", said)
            self.last_db_said = said
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPLICATION_CHECK_S)

    async def _fence_watch(self, stop: asyncio.Event) -> None:
        """The self-fencing rule on a thread of its own: no store call (each may take a
        timeout per etcd member when this site is cut off) ever delays it past the lease."""
        loop = asyncio.get_running_loop()
        own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fence")  # never queued
        while not stop.is_set():
            try:
                said = await loop.run_in_executor(own, self.fence_check)
            except DraasError as exc:
                said = f"fence check failed: {exc}"
            if said:
                log.warning("%s", said)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLLOW_S / 2)
        own.shutdown(wait=False)

    async def _watchdog(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for duty in (self.renew_duty, self.follow_lease):
                try:
                    said = await asyncio.to_thread(duty)
                except DraasError as exc:
                    said = f"{duty.__name__} failed: {exc}"
                if said:  # fencing is a warning; a frontend following the lease is news
                    log.log(
                        logging.INFO if duty == self.follow_lease else logging.WARNING, "%s", said
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLLOW_S)
