"""Key directories (``sites.<site>.key_directories``: Keystone's fernet and credential keys, or
any directory the config names) travel from the active site to the standby over the agents'
control API: the standby site's agent asks the active site's agent every ``KEYS_S`` for the
directories' checksums (``GET /v1/keys``, with the API's bearer token, over TLS when the API
has it) and fetches a directory only when its checksum differs from its own copy
(``GET /v1/keys/<n>``), then applies it with ``replication.files.apply``: atomic per file,
modes kept, stale keys removed. Keys never pass through a log, an event or the store; what is
published (in the agent's observation) is only whether the copies match and since when.

Directories pair up by position: the n-th directory of one site is the n-th of the other. After
a failover the new active site is the source; the old one, once it is the standby, receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from draas.coordination.records import KeysReport
from draas.errors import DraasError
from draas.replication.files import Manifest, apply, snapshot

log = logging.getLogger("draas.agent")

KEYS_S = 2.0  # how often the standby compares its key directories with the active site's


def listing(dirs: Sequence[Path]) -> dict[str, Any]:
    """``GET /v1/keys``: each directory's checksum (no key material)."""
    out = []
    for i, d in enumerate(dirs):
        try:
            out.append({"index": i, "path": str(d), "checksum": snapshot(d).checksum})
        except DraasError as exc:
            out.append({"index": i, "path": str(d), "checksum": None, "error": str(exc)})
    return {"directories": out}


def manifest(dirs: Sequence[Path], index: int) -> str:
    """``GET /v1/keys/<index>``: the directory's manifest as JSON (the keys themselves)."""
    if not 0 <= index < len(dirs):
        raise IndexError(f"no key directory {index}: this site has {len(dirs)} (0-{len(dirs) - 1})")
    return snapshot(dirs[index]).to_json()


class KeyPuller:
    """The standby side. ``fetch_listing(site)`` and ``fetch_manifest(site, index)`` ask the
    active site's agent (the API client, with the token); ``now`` is the wall clock for the
    report."""

    def __init__(
        self,
        *,
        dirs: Sequence[Path],
        fetch_listing: Callable[[str], dict[str, Any]],
        fetch_manifest: Callable[[str, int], str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.dirs = list(dirs)
        self.fetch_listing = fetch_listing
        self.fetch_manifest = fetch_manifest
        self.now = now
        self.report: KeysReport | None = None

    def tick(self, source: str) -> str:
        """Compare with ``source`` (the active site) and copy what differs; returns what
        changed ('' for nothing)."""
        if not self.dirs:
            return ""
        prev = self.report if self.report is not None and self.report.source == source else None
        try:
            said, differing = self._pull(source)
        except (DraasError, OSError, ValueError, KeyError) as exc:
            self.report = KeysReport(
                source,
                False,
                None if prev is None else prev.compared_at,
                None,
                () if prev is None else prev.differing,
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, DraasError) else str(exc),
            )
            return ""
        now = self.now()
        match = not differing
        since = None
        if match:
            since = prev.in_sync_since if prev is not None and prev.match else now
        self.report = KeysReport(source, match, now, since, tuple(differing))
        return said

    def _pull(self, source: str) -> tuple[str, list[int]]:
        theirs = {int(d["index"]): d for d in self.fetch_listing(source)["directories"]}
        said, differing = [], []
        for i, target in enumerate(self.dirs):
            remote = theirs.get(i)
            if remote is None or remote.get("checksum") is None:
                differing.append(i)
                continue
            mine = snapshot(target).checksum if target.exists() else None
            if mine == remote["checksum"]:
                continue
            changed = apply(target, Manifest.from_json(self.fetch_manifest(source, i)))
            if snapshot(target).checksum != remote["checksum"]:
                differing.append(i)  # it changed again meanwhile: next round
            said.append(
                f"key directory {target}: {len(changed['written'])} written, "
                f"{len(changed['removed'])} removed (from {source})"
            )
        if len(theirs) != len(self.dirs):
            differing += [i for i in theirs if i >= len(self.dirs)]
        return "; ".join(said), differing
