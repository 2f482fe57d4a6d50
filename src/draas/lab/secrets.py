"""Credentials the lab generates at run time and keeps in its run directory (mode 0600).

Never written anywhere else: not in the repository, not in logs or events.
"""

from __future__ import annotations

import base64
import os
import secrets as _secrets
from pathlib import Path

from draas.lab.state import RunDir


def secrets_dir(run: RunDir) -> Path:
    d = run.path / "secrets"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def secret(run: RunDir, name: str, kind: str = "password") -> str:
    """The lab's secret ``name``, generated on first use (``password`` or ``tsig`` base64)."""
    path = secrets_dir(run) / name
    if path.exists():
        return path.read_text().strip()
    value = (
        base64.b64encode(_secrets.token_bytes(32)).decode()
        if kind == "tsig"
        # A leading letter: a value starting with '-' reads as an option to many tools.
        else "s" + _secrets.token_urlsafe(18)
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def secret_file(run: RunDir, name: str, kind: str = "password") -> Path:
    secret(run, name, kind)
    return secrets_dir(run) / name
