"""Build the things an agent acts on from the validated config: each site's replicator, the
probes of each site and frontend, a frontend's data plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from draas.config import Check, Config, Node
from draas.coordination import CoordinationStore
from draas.errors import ConfigError
from draas.health.probes import HttpProbe, KeystoneProbe, Periodic, TcpProbe, TokenBox
from draas.replication import DbEndpoint
from draas.replication.mariadb import MariaDBReplicator
from draas.traffic import TrafficSwitch
from draas.traffic.frontend import FrontendEngine, make_engine


def read_secret(path: Path, what: str) -> str:
    try:
        mode = path.stat().st_mode & 0o077
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(str(path), [f"{what}: cannot read {path}: {exc.strerror}"]) from exc
    if mode & 0o007:
        raise ConfigError(str(path), [f"{what}: {path} is readable by everyone; chmod 600 it"])
    return text


def replicators(cfg: Config) -> dict[str, MariaDBReplicator]:
    out = {}
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
            semi_sync_timeout_ms=cfg.semi_sync_timeout_ms(),
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
    **kw: Any,
) -> Any:
    """One check aimed at ``address`` (a site's or a frontend's); ``periodic=False``: every
    call runs it (a verification after a switch, not a probe round)."""
    timeout = max(min_timeout_s, check.timeout_s or cfg.timings.probe_timeout_s)
    probe: Any
    if check.kind == "keystone":
        assert check.username is not None and check.password_file is not None
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
            **kw,
        )
    else:
        probe = HttpProbe(
            f"http://{address}:{check.port}{check.path}",
            check.expect_status,
            check.expect_body,
            timeout_s=timeout,
            **kw,
        )
    return Periodic(probe, check.interval_s) if check.interval_s and periodic else probe


def site_probes(cfg: Config, **kw: Any) -> dict[str, list[Any]]:
    """The service's checks, aimed at each site's own address (the deep checks of all sites
    share one token)."""
    tokens = TokenBox()
    return {
        name: [probe_for(cfg, c, site.address, tokens, **kw) for c in cfg.service.checks]
        for name, site in cfg.sites.items()
    }


def frontend_probes(cfg: Config, **kw: Any) -> dict[str, list[TcpProbe]]:
    """Each frontend's listener (a TCP connect to the service's first port): whether the
    frontend itself is alive, whatever the sites behind it are doing."""
    port = cfg.service.checks[0].port
    return {
        n.name: [TcpProbe(n.address, port, timeout_s=cfg.timings.probe_timeout_s, **kw)]
        for n in cfg.nodes_with_role("frontend")
    }


def frontend_engine(cfg: Config, node: Node) -> FrontendEngine:
    """The data plane a frontend node drives, routing to the primary site at first."""
    sites = {name: site.address for name, site in cfg.sites.items()}
    kind = cfg.frontend.engine
    if kind == "haproxy":
        return make_engine(
            kind, node.name, sites, admin_socket=str(node.admin_socket), retries=2, deadline_s=5.0
        )
    ports = {c.port: c.port for c in cfg.service.checks}
    return make_engine(
        kind, node.name, sites, ports=ports, bind=node.address, target=cfg.site_with_role("primary")
    )


def through_frontends(cfg: Config, frontends: list[str], **kw: Any) -> list[Any]:
    """The service's checks sent to frontends, the way a client's requests go."""
    address = {n.name: n.address for n in cfg.nodes_with_role("frontend")}
    tokens = TokenBox()
    return [
        probe_for(cfg, c, address[fe], tokens, min_timeout_s=2.0, periodic=False, **kw)
        for fe in frontends
        for c in cfg.service.checks
    ]


def traffic_switches(
    cfg: Config, store: CoordinationStore, site: str, dns: TrafficSwitch | None
) -> list[tuple[TrafficSwitch, str]]:
    """What moves traffic to ``site``: in the DNS scheme the record; in the frontend and
    hybrid schemes the frontends, whose agents follow the lease (the switch waits until they
    all route to the site)."""
    from draas.traffic.frontend.follower import FollowingFrontends

    if cfg.scheme == "dns":
        return [(dns, cfg.sites[site].address)] if dns is not None else []
    return [(FollowingFrontends(store, [n.name for n in cfg.nodes_with_role("frontend")]), site)]


def client_path_probes(cfg: Config, site: str, via: list[str] | None = None) -> list[Any]:
    """The checks a switch is verified with: the site itself and, in the frontend schemes,
    the frontends a client goes through (``via``; default every frontend)."""
    tokens = TokenBox()
    probes = [
        probe_for(cfg, c, cfg.sites[site].address, tokens, periodic=False)
        for c in cfg.service.checks
    ]
    if cfg.scheme != "dns":
        probes += through_frontends(cfg, via or [n.name for n in cfg.nodes_with_role("frontend")])
    return probes
