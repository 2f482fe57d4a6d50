"""What ``draas config check`` adds to a configuration that parses: the rules of a deployment
that can work (problems) and of one that will hurt (warnings), each naming the field, the
value and what is allowed. ``files``: also look at the secret files on this machine (exist,
readable by us, not by others); off when checking a configuration away from its machines."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from draas.config import Config

# A DNS TTL longer than this keeps clients on a dead site for longer than any failover takes.
TTL_WARN_S = 300


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def paths(cfg: Config) -> Iterator[tuple[str, Path, bool]]:
    """Every path of the configuration: (field, path, is a secret file)."""
    for name, site in cfg.sites.items():
        if site.database is not None:
            yield f"sites.{name}.database.password_file", site.database.password_file, True
        for i, d in enumerate(site.key_directories):
            yield f"sites.{name}.key_directories[{i}]", d, False
    for i, check in enumerate(cfg.service.checks):
        if check.password_file is not None:
            yield f"service.checks[{i}].password_file", check.password_file, True
    for i, node in enumerate(cfg.nodes):
        if node.admin_socket is not None:
            yield f"nodes[{i}].admin_socket", node.admin_socket, False
    dns = cfg.dns
    if dns is not None and dns.provider == "rfc2136":
        yield "dns.tsig_key_file", dns.tsig_key_file, True
    if dns is not None and dns.provider == "dyndns2":
        yield "dns.password_file", dns.password_file, True
    if cfg.api.token_file is not None:
        yield "api.token_file", cfg.api.token_file, True
    if cfg.api.tls_key_file is not None:
        yield "api.tls_key_file", cfg.api.tls_key_file, True
    for name in ("tls_cert_file", "tls_ca_file"):
        value = getattr(cfg.api, name)
        if value is not None:
            yield f"api.{name}", value, False
    co = cfg.coordination
    if co.key_file is not None:
        yield "coordination.key_file", co.key_file, True
    if co.password_file is not None:
        yield "coordination.password_file", co.password_file, True
    for name in ("ca_file", "cert_file"):
        value = getattr(co, name)
        if value is not None:
            yield f"coordination.{name}", value, False
    yield "replication.recovery_dir", cfg.replication.recovery_dir, False
    if cfg.drill is not None:
        yield "drill.password_file", cfg.drill.password_file, True


def check_deployment(cfg: Config, *, files: bool = True) -> Findings:
    out = Findings()
    p, w = out.problems, out.warnings
    if cfg.coordination.backend == "memory" and len(cfg.nodes) > 1:
        p.append(
            f"coordination.backend: 'memory' lives inside one process, so the {len(cfg.nodes)} "
            "nodes could not share it; allowed with several nodes: 'etcd'"
        )
    for site in cfg.sites:
        voters = [n.name for n in cfg.nodes if n.site != site]
        if len(voters) < 2:
            p.append(
                f"nodes: only {len(voters)} node(s) away from site {site!r} ({voters}); a "
                "failover needs two vantage points to confirm a site down, so no automatic "
                "failover could ever happen: add a witness"
            )
    no_db = [name for name, s in cfg.sites.items() if s.database is None]
    if no_db and len(no_db) < len(cfg.sites):
        p.append(
            f"sites.{no_db[0]}.database: missing while another site has one; every site's "
            "database is promoted, fenced and replicated by draas"
        )
    seen: dict[tuple[str, int], str] = {}
    for node in cfg.nodes:
        key = (node.address, node.api_port)
        if key in seen:
            p.append(
                f"nodes: {node.name!r} and {seen[key]!r} both listen on {node.address} port "
                f"{node.api_port}; give each its own address or api_port"
            )
        seen[key] = node.name
    dns = cfg.dns
    if dns is not None:
        record = dns.record.rstrip(".").lower()
        if record != cfg.service.dns_name.rstrip(".").lower():
            p.append(
                f"dns.record: {dns.record!r} is not service.dns_name {cfg.service.dns_name!r}; "
                "the record draas moves must be the name clients use"
            )
        zone = getattr(dns, "zone", None)
        if zone is not None:
            z = zone.rstrip(".").lower()
            if record != z and not record.endswith("." + z):
                p.append(f"dns.record: {dns.record!r} is not inside dns.zone {zone!r}")
        if dns.ttl_s > TTL_WARN_S:
            w.append(
                f"dns.ttl_s: {dns.ttl_s} s: clients keep the dead site's address that long "
                f"after a failover (a DNS failover's RTO is at least the TTL); {TTL_WARN_S} s "
                "or less is usual, 5-60 s for a fast failover"
            )
    _witness_warnings(cfg, w)
    co = cfg.coordination
    plain = [e for e in co.endpoints if e.startswith("http://")]
    if co.user is not None and plain:
        w.append(
            f"coordination.user: {co.user!r} logs in over plain http ({plain[0]}): the password "
            "and the token cross the network in the clear; use https:// endpoints (ca_file)"
        )
    for where, path, secret in paths(cfg):
        if not path.is_absolute():
            p.append(f"{where}: {str(path)!r} is relative; give an absolute path")
        elif files and secret:
            p.extend(_secret_problems(where, path))
    return out


def _witness_warnings(cfg: Config, w: list[str]) -> None:
    """A witness next to a site fails with it: its vote is not independent."""
    for node in cfg.nodes_with_role("witness"):
        for name, site in cfg.sites.items():
            if _same_24(node.address, site.address):
                w.append(
                    f"nodes: witness {node.name!r} ({node.address}) is in the same /24 as site "
                    f"{name!r} ({site.address}); a witness in its own failure zone makes a "
                    "site's loss confirmable"
                )


def _same_24(a: str, b: str) -> bool:
    try:
        net = ipaddress.ip_network(f"{a}/24", strict=False)
        return ipaddress.ip_address(b) in net
    except ValueError:
        return False


def _secret_problems(where: str, path: Path) -> list[str]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return [f"{where}: {path} does not exist"]
    except OSError as exc:
        return [f"{where}: {path} cannot be read: {exc.strerror}"]
    out = []
    if not stat.S_ISREG(st.st_mode):
        out.append(f"{where}: {path} is not a file")
    if st.st_mode & stat.S_IROTH:
        out.append(
            f"{where}: {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            "allowed: 0600 or 0640 (chmod o-rwx)"
        )
    if not os.access(path, os.R_OK):
        out.append(f"{where}: {path} is not readable by this user")
    return out
