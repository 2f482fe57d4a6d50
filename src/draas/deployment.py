"""The deployment as the config describes it, made real: each site's replicator, the probes of
each site and frontend, a frontend's data plane, what moves traffic, and the runbook a run id
names. Built once per process (an agent, or an operator's ``--direct`` command) and shared by
the controller and the operator's commands, so both run exactly the same runbooks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from draas.config import Check, Config, Node
from draas.coordination import CoordinationStore
from draas.errors import ConfigError
from draas.failover.runbook import Runbook
from draas.failover.runbooks import (
    OnTaken,
    Switches,
    failover_runbook,
    rejoin_runbook,
    switchover_runbook,
)
from draas.failover.runs import RunId
from draas.health.probes import (
    HttpProbe,
    KeystoneProbe,
    Periodic,
    Probe,
    ReachProbe,
    TcpProbe,
    TokenBox,
)
from draas.replication import DbEndpoint, Replicator
from draas.traffic import TrafficSwitch
from draas.traffic.frontend import FrontendEngine, make_engine


def read_secret(path: Path, what: str) -> str:
    """A secret from a file; a file that others can read is refused."""
    try:
        mode = path.stat().st_mode & 0o077
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(str(path), [f"{what}: cannot read {path}: {exc.strerror}"]) from exc
    if mode & 0o007:
        raise ConfigError(str(path), [f"{what}: {path} is readable by everyone; chmod 600 it"])
    return text


def replicators(cfg: Config) -> dict[str, Replicator]:
    """Each site's database (sites without a ``database`` section have none)."""
    from draas.replication.mariadb import MariaDBReplicator

    out: dict[str, Replicator] = {}
    for name, site in cfg.sites.items():
        if site.database is None:
            continue
        db = site.database
        password = read_secret(db.password_file, f"sites.{name}.database")
        ep = DbEndpoint(site=name, host=db.host, port=db.port, user=db.user, password=password)
        r = cfg.replication
        out[name] = MariaDBReplicator(
            ep,
            r.databases,
            semi_sync=r.mode == "semi-sync",
            link_timeout_s=r.link_timeout_s,
        )
    return out


def probe_for(
    cfg: Config,
    check: Check,
    address: str,
    tokens: TokenBox | None = None,
    min_timeout_s: float = 0.0,
    periodic: bool = True,
) -> Probe:
    """One check aimed at ``address`` (a site's or a frontend's); ``periodic=False``: every
    call runs it (a verification after a switch, not a probe round)."""
    timeout = max(min_timeout_s, check.timeout_s or cfg.timings.probe_timeout_s)
    probe: Probe
    if check.kind == "keystone":
        if check.username is None or check.password_file is None:
            raise ConfigError("service.checks", [f"{check.name}: needs username, password_file"])
        password = read_secret(check.password_file, f"service.checks {check.name}")
        probe = KeystoneProbe(
            f"http://{address}:{check.port}",
            check.username,
            password,
            check.project,
            check.domain,
            timeout_s=timeout,
            tokens=tokens,
            login_timeout_s=max(2.0, timeout),
        )
    else:
        url = f"http://{address}:{check.port}{check.path}"
        probe = HttpProbe(url, check.expect_status, check.expect_body, timeout_s=timeout)
    return Periodic(probe, check.interval_s) if check.interval_s and periodic else probe


def site_probes(cfg: Config) -> dict[str, list[Probe]]:
    """The service's checks, aimed at each site's own address (the deep checks of all sites
    share one token)."""
    tokens = TokenBox()
    return {
        name: [probe_for(cfg, c, site.address, tokens) for c in cfg.service.checks]
        for name, site in cfg.sites.items()
    }


def reach_probes(cfg: Config) -> dict[str, Probe]:
    """Each site's first service port, a TCP connection (the hard-failure check: a host that
    is off or cut off accepts none; a service that crashed is a gray failure, seen by the
    service's checks). One port keeps its cost low at ten rounds a second."""
    port = cfg.service.checks[0].port
    t = cfg.timings
    return {
        name: ReachProbe(site.address, [port], timeout_s=t.reach_timeout_s)
        for name, site in cfg.sites.items()
    }


def frontend_probes(cfg: Config) -> dict[str, list[Probe]]:
    """Each frontend's listener (a TCP connect to the service's first port): whether the
    frontend itself is alive, whatever the sites behind it are doing."""
    port = cfg.service.checks[0].port
    timeout = cfg.timings.probe_timeout_s
    return {
        n.name: [TcpProbe(n.address, port, timeout_s=timeout)]
        for n in cfg.nodes_with_role("frontend")
    }


def probes(cfg: Config) -> dict[str, list[Probe]]:
    """What every agent probes: the sites, and in the hybrid scheme the frontends too."""
    out = site_probes(cfg)
    if cfg.scheme == "hybrid":
        out.update(frontend_probes(cfg))
    return out


def frontend_engine(cfg: Config, node: Node) -> FrontendEngine:
    """The data plane a frontend node drives, routing to the primary site at first."""
    sites = {name: site.address for name, site in cfg.sites.items()}
    kind = cfg.frontend.engine
    if kind == "haproxy":
        return make_engine(
            kind,
            node.name,
            sites,
            admin_socket=str(node.admin_socket),
            backends=tuple(cfg.frontend.backends),
            retries=2,
            deadline_s=5.0,
        )
    ports = {c.port: c.port for c in cfg.service.checks}
    return make_engine(
        kind, node.name, sites, ports=ports, bind=node.address, target=cfg.site_with_role("primary")
    )


def dns_provider(cfg: Config) -> TrafficSwitch | None:
    if cfg.dns is None:
        return None
    from draas.traffic.dns import make_provider

    return make_provider(cfg.dns)


class Deployment:
    """The deployment's moving parts for one process, built lazily from ``cfg``: what the
    controller, the operator's commands and the drill act on."""

    def __init__(self, cfg: Config, store: CoordinationStore) -> None:
        self.cfg = cfg
        self.store = store
        self._reps: dict[str, Replicator] | None = None
        self._dns: TrafficSwitch | None = None

    @property
    def reps(self) -> dict[str, Replicator]:
        if self._reps is None:
            self._reps = replicators(self.cfg)
        return self._reps

    def dns(self) -> TrafficSwitch | None:
        if self._dns is None:
            self._dns = dns_provider(self.cfg)
        return self._dns

    def frontends(self) -> list[str]:
        return [n.name for n in self.cfg.nodes_with_role("frontend")]

    def holder(self, site: str) -> str:
        """The agent that holds the record when ``site`` is active (its site agent)."""
        return next(n.name for n in self.cfg.nodes if n.site == site and n.role == "site")

    def other(self, site: str) -> str:
        return next(s for s in self.cfg.sites if s != site)

    def switches(self, site: str) -> Switches:
        """What moves traffic to ``site``: in the DNS scheme the record; in the frontend and
        hybrid schemes the frontends, whose agents follow the lease (the switch waits until
        they all route to the site)."""
        from draas.traffic.frontend.follower import FollowingFrontends

        if self.cfg.scheme == "dns":
            dns = self.dns()
            return [(dns, self.cfg.sites[site].address)] if dns is not None else []
        return [(FollowingFrontends(self.store, self.frontends()), site)]

    def verify_probes(self, site: str, via: Sequence[str] | None = None) -> list[Probe]:
        """The checks a switch is verified with: the site itself and, in the frontend schemes,
        the service's checks through the frontends a client goes through (``via``; default
        every frontend)."""
        cfg = self.cfg
        tokens = TokenBox()
        out = [
            probe_for(cfg, c, cfg.sites[site].address, tokens, periodic=False)
            for c in cfg.service.checks
        ]
        if cfg.scheme != "dns":
            address = {n.name: n.address for n in cfg.nodes_with_role("frontend")}
            out += [
                probe_for(cfg, c, address[fe], tokens, min_timeout_s=2.0, periodic=False)
                for fe in (self.frontends() if via is None else via)
                for c in cfg.service.checks
            ]
        return out

    def runbook(
        self,
        run: RunId,
        *,
        on_taken: OnTaken = None,
        via: Sequence[str] | None = None,
        forced: bool = False,
    ) -> Runbook:
        """The runbook that ``run`` names (``via``: the frontends its verify step goes through;
        ``on_taken``: told the record the failover takes; ``forced``: an operator's failover
        that accepts a loss, so the target need not be the named synchronous standby)."""
        ttl = self.cfg.timings.lease_ttl_s
        target, source = run.target, self.other(run.target)
        if run.kind == "rejoin":
            return rejoin_runbook(
                source=source,
                target=target,
                reps=self.reps,
                rejoin_dir=self.cfg.replication.recovery_dir,
            )
        switches, verify = self.switches(target), self.verify_probes(target, via)
        if run.kind == "failover":
            return failover_runbook(
                self.store,
                target=target,
                old_site=source,
                expected_epoch=run.epoch,
                holder=self.holder(target),
                reps=self.reps,
                switches=switches,
                verify=verify,
                ttl_s=ttl,
                on_taken=on_taken,
                named_only=self.cfg.replication.mode == "semi-sync" and not forced,
            )
        return switchover_runbook(
            self.store,
            source=source,
            target=target,
            holder=self.holder(target),
            reps=self.reps,
            switches=switches,
            verify=verify,
            ttl_s=ttl,
            rejoin_dir=self.cfg.replication.recovery_dir if run.kind == "failback" else None,
        )
