"""Key directories (Keystone's fernet and credential key repositories, or any listed directory)
copied from the active site to the standby (``draas.agent.keysync`` carries them).

A ``Manifest`` is the directory's content (file names, modes, bytes, SHA-256). ``apply()``
makes a directory match a manifest with per-file atomic replacement (write a temporary file in
the same directory, fsync, rename over), new and changed files first, stale ones removed last,
so a reader (Keystone loading its keys) never sees a half-written key or an empty repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from draas.errors import ReplicationError


@dataclass(frozen=True)
class FileEntry:
    mode: int
    sha256: str
    data: bytes


@dataclass(frozen=True)
class Manifest:
    files: dict[str, FileEntry]
    dir_mode: int

    @property
    def checksum(self) -> str:
        """One digest of the whole directory: names, modes and contents."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            e = self.files[name]
            h.update(f"{name}\0{e.mode:o}\0{e.sha256}\n".encode())
        return h.hexdigest()

    def to_json(self) -> str:
        """For the wire between agents (the keys travel only over the authenticated API)."""
        return json.dumps(
            {
                "dir_mode": self.dir_mode,
                "files": {
                    n: {
                        "mode": e.mode,
                        "sha256": e.sha256,
                        "data": base64.b64encode(e.data).decode(),
                    }
                    for n, e in self.files.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        doc: dict[str, Any] = json.loads(text)
        files = {}
        for name, e in doc["files"].items():
            data = base64.b64decode(e["data"])
            if hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise ReplicationError(f"key file {name!r}: checksum mismatch in transit")
            _check_name(name)
            files[name] = FileEntry(int(e["mode"]), e["sha256"], data)
        return cls(files, int(doc["dir_mode"]))


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or name.startswith(".draas-"):
        raise ReplicationError(f"refusing key file name {name!r}")


def snapshot(directory: Path) -> Manifest:
    """Read a key directory (regular files only; subdirectories are not key repositories)."""
    try:
        dir_mode = stat.S_IMODE(directory.stat().st_mode)
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ReplicationError(f"cannot read key directory {directory}: {exc}") from exc
    files = {}
    for p in entries:
        if p.name.startswith(".draas-") or not p.is_file():
            continue
        data = p.read_bytes()
        files[p.name] = FileEntry(
            stat.S_IMODE(p.stat().st_mode), hashlib.sha256(data).hexdigest(), data
        )
    return Manifest(files, dir_mode)


def apply(directory: Path, manifest: Manifest) -> dict[str, list[str]]:
    """Make ``directory`` hold exactly the manifest's files; return what changed."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, manifest.dir_mode)
    # A copied key belongs to the directory's owner like the keys already there (Keystone's
    # user reads its 0600 keys): when we may give it (root), each file gets the directory's.
    owner = directory.stat()
    give = os.geteuid() == 0
    current = snapshot(directory)
    changed: dict[str, list[str]] = {"written": [], "removed": []}
    for name, entry in sorted(manifest.files.items()):
        _check_name(name)
        have = current.files.get(name)
        if have is not None and have.sha256 == entry.sha256 and have.mode == entry.mode:
            continue
        tmp = directory / f".draas-{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, entry.mode)
        try:
            os.write(fd, entry.data)
            if give:
                os.fchown(fd, owner.st_uid, owner.st_gid)
            os.fchmod(fd, entry.mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, directory / name)
        changed["written"].append(name)
    for name in sorted(set(current.files) - set(manifest.files)):
        (directory / name).unlink(missing_ok=True)
        changed["removed"].append(name)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return changed
