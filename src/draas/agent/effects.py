"""Build the things an agent acts on from the validated config: each site's replicator, the
DNS provider, the probes of each site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from draas.config import Config
from draas.errors import ConfigError
from draas.health.probes import HttpProbe
from draas.replication import DbEndpoint
from draas.replication.mariadb import MariaDBReplicator


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
            semi_sync_timeout_ms=r.semi_sync_timeout_ms,
        )
    return out


def site_probes(cfg: Config, **kw: Any) -> dict[str, list[HttpProbe]]:
    """The service's checks, aimed at each site's own address."""
    return {
        name: [HttpProbe(f"http://{site.address}:{c.port}{c.path}", c.expect_status,
                         c.expect_body, timeout_s=cfg.timings.probe_timeout_s, **kw)
               for c in cfg.service.checks]
        for name, site in cfg.sites.items()
    }  # fmt: skip
