"""Typed configuration of a draas deployment (``draas.toml``) and its validation.

``load_config(path)`` returns a ``Config`` or raises ``ConfigError`` listing every problem found,
each as ``field.path: what is wrong (got VALUE); allowed: ...``.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from draas.config_errors import format_validation_error
from draas.errors import ConfigError, InvalidInput

_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.match(value) or value.replace(".", "").isdigit():
        raise ValueError("must be an IP address or a DNS host name")
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must start with a lowercase letter and hold only a-z, 0-9 and '-'")
    return value


def _check_fqdn(value: str) -> str:
    if not value.endswith("."):
        value += "."
    _check_host(value)
    if value.count(".") < 2:
        raise ValueError("must be a fully qualified DNS name such as 'keystone.example.org.'")
    return value.lower()


Host = Annotated[str, AfterValidator(_check_host)]
Name = Annotated[str, AfterValidator(_check_name)]
Fqdn = Annotated[str, AfterValidator(_check_fqdn)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _network_text(value: Any) -> Any:
    if not isinstance(value, str):  # a number or a boolean is not a network
        raise ValueError("expected a network as text, like '198.18.0.0/15'")
    return value


Network = Annotated[IPvAnyNetwork, BeforeValidator(_network_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(_Model):
    """A check of the service at each site, by every vantage point. ``http``: one GET of
    ``path`` (status, and a string the body must contain). ``keystone``: the deep check, an
    authenticated read through the service's database (``GET /v3/projects`` with a token of
    ``username``, reused until refused): it fails when the API answers but cannot use its
    database. ``interval_s``: run it at most this often, in the background (the probe rounds
    use its last result); ``timeout_s``: its own timeout (default: timings.probe_timeout_s)."""

    name: Name
    port: Port
    kind: Literal["http", "keystone"] = "http"
    path: str = "/"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    expect_body: str | None = None
    username: str | None = None
    password_file: Path | None = None
    project: str = "admin"
    domain: str = "Default"
    interval_s: Annotated[float, Field(gt=0, le=300)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] | None = None


class Service(_Model):
    name: Name = "keystone"
    dns_name: Fqdn
    checks: list[Check] = Field(
        default_factory=lambda: [
            Check(name="api", port=5000, path="/v3", expect_body="stable"),
            Check(name="web", port=80, path="/"),
        ],
        min_length=1,
    )


class Database(_Model):
    host: Host
    port: Port = 3306
    user: str = "draas"
    password_file: Path


class Site(_Model):
    role: Literal["primary", "dr"]
    address: Host
    database: Database | None = None
    key_directories: list[Path] = Field(default_factory=list)


class Node(_Model):
    name: Name
    role: Literal["site", "frontend", "witness"]
    address: Host
    site: Name | None = None
    api_port: Port = 8780
    # A frontend node driving HAProxy: the path of HAProxy's runtime API socket (admin level).
    admin_socket: Path | None = None


class Rfc2136Dns(_Model):
    provider: Literal["rfc2136"]
    zone: Fqdn
    record: Fqdn
    ttl_s: PositiveInt = 5
    server: Host
    port: Port = 53
    tsig_key_file: Path


class Dyndns2Dns(_Model):
    provider: Literal["dyndns2"]
    record: Fqdn
    ttl_s: PositiveInt = 60
    url: Annotated[str, Field(pattern=r"^https?://")]
    username: str
    password_file: Path


class DesignateDns(_Model):
    provider: Literal["designate"]
    zone: Fqdn
    record: Fqdn
    ttl_s: PositiveInt = 5
    cloud: str


class Route53Dns(_Model):
    provider: Literal["route53"]
    zone: Fqdn
    record: Fqdn
    ttl_s: PositiveInt = 5
    hosted_zone_id: str


Dns = Annotated[
    Rfc2136Dns | Dyndns2Dns | DesignateDns | Route53Dns, Field(discriminator="provider")
]


class Frontend(_Model):
    engine: Literal["proxy", "redirect", "haproxy"] = "proxy"
    preferred: Name | None = None  # hybrid: the frontend the DNS name points at when healthy
    # hybrid: while a quorum sees every frontend down, the DNS name points straight at the
    # active site (and back at a frontend as soon as one is confirmed up again).
    direct_when_all_down: bool = True
    # engine "haproxy": the backends draas switches in each frontend's HAProxy, each with one
    # server per site named after the site (``[sites.NAME]``); the others are left alone.
    backends: list[Name] = Field(default_factory=lambda: ["api", "web"], min_length=1)


class Coordination(_Model):
    backend: Literal["etcd", "memory"] = "etcd"
    endpoints: list[Annotated[str, Field(pattern=r"^https?://")]] = Field(default_factory=list)
    prefix: str = "/draas/"
    # etcd over TLS (https:// endpoints): the CA that signed the members' certificates (None:
    # the system's CAs), and this machine's client certificate and key when the members
    # require one (etcd --client-cert-auth). The key is a secret file: others may not read it.
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # etcd user authentication (etcd auth enable): the user and its password's file (a
    # secret file). With or without client certificates; over https:// so the password and
    # the token are not sent in the clear (config check warns otherwise).
    user: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _tls(self) -> Coordination:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "cert_file and key_file: give both (a client certificate and its key) or neither"
            )
        if (self.user is None) != (self.password_file is None):
            raise ValueError(
                "user and password_file: give both (an etcd user and its password's file) "
                "or neither"
            )
        tls = self.ca_file is not None or self.cert_file is not None
        plain = [e for e in self.endpoints if e.startswith("http://")]
        if tls and plain:
            raise ValueError(
                f"endpoints {plain}: ca_file/cert_file are for TLS; use https:// endpoints"
            )
        return self


class Replication(_Model):
    mode: Literal["async", "semi-sync"] = "async"
    # No longer used: semi-sync never falls back on its own timeout; the active site's agent
    # removes the standby from the sync record first (after timings.sync_degrade_s). Refused
    # with that explanation when set.
    semi_sync_timeout_ms: PositiveInt | None = None
    # Asynchronous mode: an automatic failover only to a standby that had applied all but at
    # most this many of the transactions the active site last published (0: all of them).
    max_failover_lag_trx: Annotated[int, Field(ge=0, le=1_000_000)] = 10
    databases: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]] = Field(
        default_factory=lambda: ["keystone"], min_length=1
    )
    # Failback after a failover: "auto" once the old primary is back and seen up by the
    # quorum (it rejoins, catches up, then a planned switchover), "manual" on command only.
    failback: Literal["auto", "manual"] = "auto"
    # Where a rejoining old primary's errant transactions are saved (never silently lost).
    recovery_dir: Path = Path("/var/lib/draas/recovery")
    # A replica that hears nothing from its source for this long reconnects and says so.
    link_timeout_s: Annotated[int, Field(ge=2, le=3600)] = 5
    # The most a drill accepts the DR replica to be behind, in seconds (the RPO it proves).
    rpo_s: Annotated[float, Field(gt=0, le=86400)] = 5.0


class Controller(_Model):
    """Who may run the runbooks: one agent at a time holds the controller lease (``ttl_s``,
    renewed every third of it); if it dies, another candidate takes over after at most the
    TTL and resumes an unfinished run. ``candidates``: node names (empty: every agent)."""

    candidates: list[Name] = Field(default_factory=list)
    ttl_s: Annotated[float, Field(ge=2, le=60)] = 3.0


class Drill(_Model):
    """A Keystone account the DR drill logs in with at the DR site (a token issued from the
    DR site's own database); without this section that check is skipped."""

    username: str
    password_file: Path
    project: str = "admin"
    domain: str = "Default"
    port: Port = 5000


class Api(_Model):
    """The agents' control API. Commands need the bearer token in ``token_file`` (none: the
    commands are disabled); ``read_networks`` limits the read-only endpoints to clients in
    these networks (empty: anyone); TLS when a certificate and key are given; ``tls_ca_file``
    is what the CLI verifies the agents' certificates with (default: the system's CAs)."""

    token_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    read_networks: list[Network] = Field(default_factory=list)
    # The key directories travel between the agents over this API: only over TLS, unless this
    # says otherwise (a lab on one machine; never across a real network).
    insecure_key_transfer: bool = False


PRESETS: dict[str, dict[str, float]] = {
    # interval x fall <= window; renew + 2 x retry <= lease ttl (checked below).
    "fast": dict(
        probe_interval_s=0.5,
        probe_timeout_s=0.4,
        fall=3,
        rise=2,
        confirm_window_s=2.0,
        lease_ttl_s=5.0,
        lease_renew_s=1.0,
        retry_timeout_s=1.0,
        failback_hold_s=10.0,
        sync_degrade_s=1.0,
        reach_interval_s=0.1,
        reach_timeout_s=0.1,
        reach_fall=3,
        reach_window_s=0.0,
    ),
    "normal": dict(
        probe_interval_s=1.0,
        probe_timeout_s=1.0,
        fall=3,
        rise=2,
        confirm_window_s=5.0,
        lease_ttl_s=10.0,
        lease_renew_s=2.0,
        retry_timeout_s=2.0,
        failback_hold_s=60.0,
        sync_degrade_s=2.0,
        reach_interval_s=0.25,
        reach_timeout_s=0.25,
        reach_fall=3,
        reach_window_s=0.5,
    ),
    "safe": dict(
        probe_interval_s=2.0,
        probe_timeout_s=2.0,
        fall=5,
        rise=3,
        confirm_window_s=15.0,
        lease_ttl_s=30.0,
        lease_renew_s=5.0,
        retry_timeout_s=5.0,
        failback_hold_s=300.0,
        sync_degrade_s=5.0,
        reach_interval_s=0.5,
        reach_timeout_s=0.5,
        reach_fall=4,
        reach_window_s=2.0,
    ),
}


class Timings(_Model):
    """Detection and lease timings; a preset fills what is not set explicitly."""

    preset: Literal["fast", "normal", "safe"] = "normal"
    probe_interval_s: PositiveFloat
    probe_timeout_s: PositiveFloat
    fall: PositiveInt
    rise: PositiveInt
    confirm_window_s: PositiveFloat
    lease_ttl_s: PositiveFloat
    lease_renew_s: PositiveFloat
    retry_timeout_s: PositiveFloat
    # Automatic failback waits until the old primary has been up this long without a break:
    # a flapping site is not given the service back (no ping-pong). For as long after the
    # record moved, only an unreachable site is failed over (gray symptoms are held back).
    failback_hold_s: PositiveFloat
    # Semi-sync: how long a commit may wait for the named standby's acknowledgement before
    # the active site removes it from the sync record and commits without it (the write stall
    # of a cut link between the sites; the standby is then not eligible for failover).
    sync_degrade_s: PositiveFloat
    # Hard failures: every agent also tries a TCP connection to the service's first port at
    # each site this often (each try given reach_timeout_s); a site that accepts none for
    # reach_fall rounds in a row is unreachable, and counts as down for the quorum after
    # reach_window_s more (instead of fall rounds and confirm_window_s, which stay for gray
    # failures: errors, slow answers, a crashed service).
    reach_interval_s: Annotated[float, Field(ge=0.05, le=60)]
    reach_timeout_s: Annotated[float, Field(ge=0.01, le=60)]
    reach_fall: Annotated[int, Field(ge=2, le=100)]
    reach_window_s: Annotated[float, Field(ge=0, le=3600)]

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "normal")
        base = PRESETS.get(preset, PRESETS["normal"]) if isinstance(preset, str) else {}
        return {**base, **data}


class Config(_Model):
    scheme: Literal["dns", "frontend", "hybrid"]
    service: Service
    sites: dict[Name, Site]
    nodes: list[Node] = Field(min_length=1)
    dns: Dns | None = None
    frontend: Frontend = Field(default_factory=Frontend)
    coordination: Coordination = Field(default_factory=Coordination)
    replication: Replication = Field(default_factory=Replication)
    timings: Timings = Field(default_factory=lambda: Timings.model_validate({}))
    api: Api = Field(default_factory=Api)
    controller: Controller = Field(default_factory=Controller)
    drill: Drill | None = None

    def site_with_role(self, role: str) -> str:
        return next(name for name, site in self.sites.items() if site.role == role)

    def nodes_with_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    def controller_candidates(self) -> list[str]:
        """The agents that may hold the controller lease, in the config's order."""
        return self.controller.candidates or [n.name for n in self.nodes]


def semantic_problems(cfg: Config) -> list[str]:
    """Cross-field rules that no single field can check, one message per broken rule."""
    problems: list[str] = []
    roles = sorted(site.role for site in cfg.sites.values())
    if roles != ["dr", "primary"]:
        problems.append(
            f"sites: need exactly one site with role 'primary' and one with role 'dr' "
            f"(got roles {roles})"
        )
    for i, check in enumerate(cfg.service.checks):
        where = f"service.checks[{i}]"
        if check.kind == "keystone" and (check.username is None or check.password_file is None):
            problems.append(f"{where}: a 'keystone' check logs in: give username and password_file")
        if check.kind == "http" and check.username is not None:
            problems.append(
                f"{where}.username: only a 'keystone' check logs in; set "
                "kind = 'keystone' or leave it out"
            )
    seen: set[str] = set()
    for i, node in enumerate(cfg.nodes):
        where = f"nodes[{i}]"
        if node.name in seen:
            problems.append(
                f"{where}.name: duplicate node name {node.name!r}; names must be unique"
            )
        seen.add(node.name)
        if node.role == "site" and node.site is None:
            problems.append(f"{where}.site: a node with role 'site' must name its site")
        if node.site is not None and node.site not in cfg.sites:
            problems.append(
                f"{where}.site: unknown site {node.site!r}; allowed: {sorted(cfg.sites)}"
            )
        if node.role == "frontend" and cfg.frontend.engine == "haproxy" and not node.admin_socket:
            problems.append(
                f"{where}.admin_socket: frontend {node.name!r} drives HAProxy (frontend.engine "
                "= 'haproxy'), so it needs the path of HAProxy's runtime API socket"
            )
    for name in cfg.controller.candidates:
        if name not in seen:
            problems.append(
                f"controller.candidates: {name!r} is not a node; allowed: {sorted(seen)}"
            )
    frontends = [n.name for n in cfg.nodes_with_role("frontend")]
    if cfg.scheme in ("dns", "hybrid") and cfg.dns is None:
        problems.append(
            f"dns: scheme {cfg.scheme!r} moves a DNS record, so a [dns] section is needed"
        )
    if cfg.scheme == "frontend" and not frontends:
        problems.append("nodes: scheme 'frontend' needs at least one node with role 'frontend'")
    if cfg.scheme == "hybrid" and len(frontends) < 2:
        problems.append(
            "nodes: scheme 'hybrid' needs at least two nodes with role 'frontend' "
            f"(got {frontends})"
        )
    pref = cfg.frontend.preferred
    if pref is not None and pref not in frontends:
        problems.append(
            f"frontend.preferred: {pref!r} is not a frontend node; allowed: {frontends}"
        )
    if cfg.coordination.backend == "etcd" and not cfg.coordination.endpoints:
        problems.append(
            "coordination.endpoints: the 'etcd' backend needs at least one endpoint URL"
        )
    counts = {name: len(site.key_directories) for name, site in cfg.sites.items()}
    if len(set(counts.values())) > 1:
        problems.append(
            "sites.*.key_directories: the sites list "
            + ", ".join(f"{n} {c}" for n, c in sorted(counts.items()))
            + " directories; they pair up by position (the n-th of one site is copied to the "
            "n-th of the other), so list the same number at every site"
        )
    if any(counts.values()) and cfg.api.tls_cert_file is None and not cfg.api.insecure_key_transfer:
        problems.append(
            "api.tls_cert_file: the key directories travel between the agents over the control "
            "API, only over TLS: set api.tls_cert_file and api.tls_key_file "
            "(api.insecure_key_transfer = true is for a lab on one machine)"
        )
    if (cfg.api.tls_cert_file is None) != (cfg.api.tls_key_file is None):
        problems.append(
            "api.tls_cert_file, api.tls_key_file: give both (TLS) or neither (plain HTTP)"
        )
    t = cfg.timings
    for i, check in enumerate(cfg.service.checks):
        if check.interval_s is not None and check.interval_s >= t.probe_interval_s * t.fall:
            problems.append(
                f"service.checks[{i}].interval_s: {check.interval_s} is not shorter than "
                f"probe_interval_s x fall = {t.probe_interval_s * t.fall:g}; a check's result "
                "counts in every probe round until its next run, so one failed run would "
                "count as 'fall' failed rounds"
            )
    if t.probe_timeout_s > t.probe_interval_s:
        problems.append(
            f"timings.probe_timeout_s: {t.probe_timeout_s} exceeds probe_interval_s "
            f"{t.probe_interval_s}; a probe must finish before the next one starts"
        )
    if t.probe_interval_s * t.fall > t.confirm_window_s:
        problems.append(
            f"timings.confirm_window_s: {t.confirm_window_s} is shorter than "
            f"probe_interval_s x fall = {t.probe_interval_s * t.fall:g}; "
            "the window must hold 'fall' failed probes"
        )
    if t.reach_interval_s > t.probe_interval_s:
        problems.append(
            f"timings.reach_interval_s: {t.reach_interval_s} exceeds probe_interval_s "
            f"{t.probe_interval_s}; the reachability check is the faster one"
        )
    if t.failback_hold_s < t.confirm_window_s:
        problems.append(
            f"timings.failback_hold_s: {t.failback_hold_s} is shorter than confirm_window_s "
            f"{t.confirm_window_s}; a returning site must be up at least that long"
        )
    if t.lease_renew_s + 2 * t.retry_timeout_s > t.lease_ttl_s:
        problems.append(
            f"timings.lease_ttl_s: {t.lease_ttl_s} is less than lease_renew_s + 2 x retry_timeout_s"
            f" = {t.lease_renew_s + 2 * t.retry_timeout_s:g}; the holder could lose the lease "
            "between two renewals"
        )
    wait = cfg.replication.semi_sync_timeout_ms
    if wait is not None:
        problems.append(
            f"replication.semi_sync_timeout_ms: {wait} is no longer used: semi-sync never falls "
            "back to asynchronous replication on its own (that would acknowledge writes the "
            "named standby never received); the active site removes the standby from the sync "
            "record first, after timings.sync_degrade_s. Remove the setting"
        )
    if t.sync_degrade_s >= t.lease_ttl_s:
        problems.append(
            f"timings.sync_degrade_s: {t.sync_degrade_s} is not shorter than lease_ttl_s "
            f"{t.lease_ttl_s}; writes would stall longer on a cut link than on a lost site"
        )
    return problems


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate already-parsed TOML data; raise ``ConfigError`` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a table, got {type(data).__name__}"])
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc, Config)
        rest, left_out = without_invalid(data)
        if rest is not None:  # the cross-field rules too, on what is valid
            problems += beyond(problems, semantic_problems(rest), left_out)
        raise ConfigError(source, problems) from None
    problems = semantic_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def without_invalid(data: dict[str, Any], rounds: int = 5) -> tuple[Config | None, list[str]]:
    """The configuration with every invalid field left out (its default applies), so that a
    type error does not hide the checks that span fields; None when it cannot be made valid
    so (a required field is invalid). Also the fields left out, as dotted paths."""
    data = copy.deepcopy(data)
    left_out: list[str] = []
    for _ in range(rounds):
        try:
            return Config.model_validate(data), left_out
        except ValidationError as exc:
            if left_out and any(e["type"] == "missing" for e in exc.errors()):
                return None, left_out  # a required field was invalid: nothing to stand in
            removed = False
            for err in exc.errors():
                loc = [x for x in err["loc"] if isinstance(x, str | int)]
                key = _drop(data, loc)
                if key:
                    left_out.append(key)
                    removed = True
            if not removed:
                return None, left_out
    return None, left_out


def beyond(problems: list[str], more: list[str], left_out: list[str]) -> list[str]:
    """The problems found on the configuration without its invalid fields that are news: not
    already said, and not about a section a field was left out of (its default there would
    speak, not the operator's file)."""
    sections = {lo.split(".")[0].split("[")[0] for lo in left_out}
    note = f" (found with {', '.join(left_out)} left out)"
    return [
        m + note
        for m in more
        if m not in problems and not any(m.startswith(sec) for sec in sections)
    ]


def without_invalid_file(path: str | Path) -> tuple[Config | None, list[str]]:
    """``without_invalid`` for a file (None when it is not even TOML)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None, []
    return without_invalid(data)


def _drop(data: Any, loc: list[str | int]) -> str:
    """Remove the deepest table key on ``loc`` that exists (inside list elements too); the
    dotted path removed, '' when there is nothing to remove."""
    walked: list[tuple[Any, str | int]] = []  # (container, the part taken in it)
    node = data
    for part in loc:
        in_table = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if isinstance(node, dict) and isinstance(part, str) and not in_table:
            continue  # a tagged union's tag ('designate'), not a key: the field is below
        if not (in_table or in_list):
            break
        walked.append((node, part))
        node = node[part]
    for i in range(len(walked) - 1, -1, -1):
        container, part = walked[i]
        if isinstance(container, dict):
            del container[part]
            path = "".join(f"[{q}]" if isinstance(q, int) else f".{q}" for _, q in walked[: i + 1])
            return path.lstrip(".")
    return ""


# Where every command looks when neither --config nor $DRAAS_CONFIG names a file.
DEFAULT_CONFIG = Path("/etc/draas/draas.toml")


def config_path(given: str | None) -> str:
    """The configuration file a command uses: ``given`` (--config), else $DRAAS_CONFIG, else
    ``DEFAULT_CONFIG`` when it exists."""
    path = given or os.environ.get("DRAAS_CONFIG")
    if path:
        return path
    if DEFAULT_CONFIG.is_file():
        return str(DEFAULT_CONFIG)
    raise InvalidInput(
        f"no configuration: give --config FILE, set DRAAS_CONFIG, or write {DEFAULT_CONFIG}"
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a ``draas.toml``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), [f"cannot read the file: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, str(p))
