"""OpenStack Keystone (from PyPI) on ``primary`` and ``dr``, served by uWSGI, on each site's
own MariaDB through PyMySQL; plus the small web page on port 80 that says which site served it.

Only the primary runs ``db_sync`` and ``bootstrap`` (the DR database gets them by
replication); the primary's fernet and credential keys are copied to the DR site, so a token
issued at one site validates at the other.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from draas.errors import LabError
from draas.lab.components.bind9 import SERVICE_NAME
from draas.lab.engine import LabEngine
from draas.lab.readiness import HttpReady
from draas.lab.secrets import secret
from draas.lab.supervisor import ProcessSpec

SITES = ("primary", "dr")
API_PORT = 5000
WEB_PORT = 80
REGION = "RegionOne"
AUTH_URL = f"http://{SERVICE_NAME.rstrip('.')}:{API_PORT}/v3"
VENV_BIN = Path(sys.executable).parent


def base(lab: LabEngine, host: str) -> Path:
    return lab.run.path / f"keystone-{host}"


def conf_path(lab: LabEngine, host: str) -> Path:
    return base(lab, host) / "keystone.conf"


def key_dirs(lab: LabEngine, host: str) -> dict[str, Path]:
    b = base(lab, host)
    return {"fernet": b / "fernet-keys", "credential": b / "credential-keys"}


def write_conf(lab: LabEngine, host: str) -> Path:
    b = base(lab, host)
    b.mkdir(parents=True, exist_ok=True)
    keys = key_dirs(lab, host)
    db_pw = secret(lab.run, "mariadb-keystone")
    addr = lab.topo.host(host).address
    text = f"""[DEFAULT]
use_stderr = true
[database]
connection = mysql+pymysql://keystone:{db_pw}@{addr}/keystone
max_retries = -1
retry_interval = 1
[token]
provider = fernet
[fernet_tokens]
key_repository = {keys["fernet"]}
[fernet_receipts]
key_repository = {keys["fernet"]}
[credential]
key_repository = {keys["credential"]}
[identity]
# LabEngine only: bcrypt's minimum cost, so that password logins do not starve two cores.
password_hash_rounds = 4
[cache]
# In-process cache: without it every token validation costs about a second of CPU here
# (role assignments rebuilt through the ORM), which would starve two cores.
enabled = true
backend = dogpile.cache.memory
expiration_time = 60
[catalog]
# Each uWSGI worker has its own in-memory cache: a cached catalog would hide a new endpoint
# from the other workers (seen: a service registered in a test missing from tokens).
caching = false
"""
    path = conf_path(lab, host)
    path.write_text(text)
    path.chmod(0o600)
    return path


def manage(
    lab: LabEngine, host: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> str:
    """Run ``keystone-manage`` inside a site host; raise with its output if it fails."""
    argv = [str(VENV_BIN / "keystone-manage"), "--config-file", str(conf_path(lab, host)), *args]
    proc = lab.exec(host, argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise LabError(
            f"keystone-manage {args[0]} on {host} failed (exit {proc.returncode}):\n{tail}"
        )
    return str(proc.stdout)


def setup_keys(lab: LabEngine) -> None:
    """Create the fernet and credential keys on the primary, copy them to the DR site once
    (before any agent runs); from then on the agents keep the standby's copy equal."""
    for d in key_dirs(lab, "primary").values():
        d.mkdir(parents=True, exist_ok=True)
    manage(lab, "primary", "fernet_setup", "--keystone-user", "root", "--keystone-group", "root")
    manage(
        lab, "primary", "credential_setup", "--keystone-user", "root", "--keystone-group", "root"
    )
    for kind, src in key_dirs(lab, "primary").items():
        dst = key_dirs(lab, "dr")[kind]
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        dst.chmod(0o700)


def db_sync_and_bootstrap(lab: LabEngine) -> None:
    manage(lab, "primary", "db_sync")
    manage(
        lab,
        "primary",
        "bootstrap",
        "--bootstrap-admin-url",
        AUTH_URL,
        "--bootstrap-internal-url",
        AUTH_URL,
        "--bootstrap-public-url",
        AUTH_URL,
        "--bootstrap-region-id",
        REGION,
        env={"OS_BOOTSTRAP_PASSWORD": secret(lab.run, "keystone-admin")},  # not on a command line
    )


def spec(lab: LabEngine, host: str) -> ProcessSpec:
    addr = lab.topo.host(host).address
    argv = [
        str(VENV_BIN / "uwsgi"),
        "--http-socket",
        f"{addr}:{API_PORT}",
        "--home",
        sys.prefix,
        "--module",
        "keystone.wsgi.api:application",
        # 16 requests at once: a few writes waiting on the DR site's acknowledgement (semi-sync)
        # must not leave the probes and readers without a worker, as in production.
        "--master",
        "--processes",
        "2",
        "--threads",
        "8",
        "--need-app",
        "--die-on-term",
        "--buffer-size",
        "65535",
        "--disable-logging",
        "--log-4xx",
        "--log-5xx",
        # uWSGI's plain http-socket closes every connection after the response; saying so
        # keeps clients from reusing a closed connection (seen: "connection reset by peer").
        "--add-header",
        "Connection: close",
    ]
    return lab.spec(
        f"keystone-{host}",
        host,
        argv,
        env={"OS_KEYSTONE_CONFIG_FILES": str(conf_path(lab, host))},
        ready=HttpReady(f"http://{addr}:{API_PORT}/v3"),
        ready_timeout_s=90,
    )


def web_spec(lab: LabEngine, host: str) -> ProcessSpec:
    """The site's web page: static, and it names the site that served it."""
    d = lab.run.path / f"web-{host}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "index.html").write_text(
        "<!doctype html><title>draas lab</title>"
        f"<h1>Keystone at site {host}</h1><p id=site>site={host}</p>\n"
    )
    addr = lab.topo.host(host).address
    return lab.spec(
        f"web-{host}",
        host,
        [sys.executable, "-m", "http.server", "--bind", addr, "--directory", str(d), str(WEB_PORT)],
        ready=HttpReady(f"http://{addr}:{WEB_PORT}/"),
        ready_timeout_s=20,
    )


def writer_spec(
    lab: LabEngine,
    name: str,
    url: str,
    prefix: str,
    duration_s: float,
    interval_s: float = 0.05,
    host: str = "client",
    workers: int = 1,
) -> tuple[ProcessSpec, Path]:
    """A Keystone write load (``draas.lab.writer``) run inside a lab host, and its log file."""
    from draas.lab.secrets import secret_file

    out = lab.run.path / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "draas.lab.writer",
        "--url",
        url,
        "--password-file",
        str(secret_file(lab.run, "keystone-admin")),
        "--prefix",
        prefix,
        "--duration",
        str(duration_s),
        "--interval",
        str(interval_s),
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]
    return lab.spec(name, host, argv), out


def project_names(lab: LabEngine, site: str, prefix: str) -> set[str]:
    """Names of the projects with this prefix that the site's own database holds."""
    from draas.lab.components import mariadb

    rows = mariadb.sql(
        lab, site, "SELECT name FROM keystone.project WHERE name LIKE %s", args=(prefix + "-%",)
    )
    return {r["name"] for r in rows}
