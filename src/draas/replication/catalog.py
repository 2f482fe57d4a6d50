"""Service catalog endpoints after a site change, through Keystone's API.

Where endpoints name a site (``http://site-a.example.org:5000/v3``), promotion rewrites the
URLs that start with the old site's base to the new site's base; with DNS-named endpoints
(``http://keystone.example.org:5000/v3``, as in the lab) nothing matches and nothing changes.
Running it twice changes nothing the second time.

    draas catalog --auth-url URL --password-file F \\
        --from http://198.18.1.10 --to http://198.18.2.10 [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from draas.errors import DraasError, InvalidInput


@dataclass(frozen=True)
class EndpointChange:
    id: str
    interface: str
    old_url: str
    new_url: str


def plan(endpoints: list[dict[str, Any]], old_base: str, new_base: str) -> list[EndpointChange]:
    """The changes that move every endpoint under ``old_base`` to ``new_base`` (pure)."""
    old_base, new_base = old_base.rstrip("/"), new_base.rstrip("/")
    if not old_base or not new_base:
        raise InvalidInput("catalog rewrite: both the old and the new base URL are needed")
    out = []
    for ep in endpoints:
        url = str(ep.get("url", ""))
        if url == old_base or url.startswith(old_base + "/") or url.startswith(old_base + ":"):
            new = new_base + url[len(old_base) :]
            out.append(EndpointChange(str(ep["id"]), str(ep.get("interface", "")), url, new))
    return out


class KeystoneCatalog:
    """List and update endpoints with a keystoneauth1 session (admin credentials)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def _url(self, path: str) -> str:
        base = self.session.get_endpoint(service_type="identity", interface="public")
        return f"{base.rstrip('/').removesuffix('/v3')}/v3{path}"

    def endpoints(self) -> list[dict[str, Any]]:
        resp = self.session.get(self._url("/endpoints"))
        return list(resp.json()["endpoints"])

    def apply(self, changes: list[EndpointChange]) -> None:
        for c in changes:
            self.session.patch(
                self._url(f"/endpoints/{c.id}"), json={"endpoint": {"url": c.new_url}}
            )


def rewrite(
    catalog: KeystoneCatalog, old_base: str, new_base: str, dry_run: bool = False
) -> list[EndpointChange]:
    changes = plan(catalog.endpoints(), old_base, new_base)
    if changes and not dry_run:
        catalog.apply(changes)
    return changes


def add_catalog_parser(sub: Any) -> None:
    """``draas catalog``: the rewrite as a command of the CLI."""
    p = sub.add_parser(
        "catalog",
        help="rewrite Keystone catalog endpoints that name a site to the other site",
        description=__doc__.split("\n\n")[0]
        + ". Endpoints under --from are rewritten to --to; prints the changes as JSON; "
        "running it twice changes nothing the second time. Needs keystoneauth1 (the "
        "'openstack' extra).",
    )
    _arguments(p)
    p.set_defaults(func=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auth-url", required=True, metavar="URL", help="Keystone's v3 URL")
    p.add_argument("--username", default="admin")
    p.add_argument("--password-file", type=Path, required=True, metavar="FILE")
    p.add_argument("--project", default="admin")
    p.add_argument("--from", dest="old", required=True, metavar="URL", help="old site's base")
    p.add_argument("--to", dest="new", required=True, metavar="URL", help="new site's base")
    p.add_argument("--dry-run", action="store_true", help="print the changes, make none")


def run(a: argparse.Namespace) -> int:
    try:  # bad input first
        password = a.password_file.read_text().strip()
    except OSError as exc:
        raise InvalidInput(
            f"--password-file: cannot read {a.password_file}: {exc.strerror}"
        ) from None
    try:
        with warnings.catch_warnings():  # its dependencies' deprecations are not ours to show
            warnings.simplefilter("ignore", DeprecationWarning)
            from keystoneauth1 import session as ks_session
            from keystoneauth1.identity import v3
    except ImportError:
        raise DraasError(
            "draas catalog needs keystoneauth1: install draas with the 'openstack' extra"
        ) from None
    auth = v3.Password(
        auth_url=a.auth_url,
        username=a.username,
        password=password,
        project_name=a.project,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    changes = rewrite(KeystoneCatalog(ks_session.Session(auth=auth)), a.old, a.new, a.dry_run)
    print(json.dumps([asdict(c) for c in changes]))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m draas.replication.catalog``: the same as ``draas catalog``."""
    p = argparse.ArgumentParser(prog="draas catalog", description=__doc__.split("\n\n")[0])
    _arguments(p)
    try:
        return run(p.parse_args(argv))
    except DraasError as exc:
        from draas.exitcodes import for_error

        print(f"error: {exc}", file=sys.stderr)
        return for_error(exc)


if __name__ == "__main__":
    sys.exit(main())
