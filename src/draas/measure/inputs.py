"""The RTO meter's inputs checked before it starts: every bad value is one clear error that
names the option, the value and what is allowed (never a traceback, never a silent 'RTO 0')."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from draas.errors import InvalidInput


def check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"URL {url!r}: {exc}; allowed: http(s)://HOST[:PORT]/PATH") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"URL {url!r}: not an http(s) URL with a host (http://HOST[:PORT]/PATH)")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput(f"URL {url!r}: port {port} is not between 1 and 65535")
    return url


def check_site_pattern(pattern: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"--site-pattern {pattern!r}: not a regular expression: {exc}") from None
    if compiled.groups < 1:
        raise InvalidInput(
            f"--site-pattern {pattern!r}: needs a group (its group 1 names the site)"
        )
    return pattern


def check_out(out: Path) -> Path:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInput(f"--out {out}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidInput(f"--out {out}: the directory {parent} is not writable")
    return out


def check_disaster_at(at: float | None, duration_s: float, now: float | None = None) -> None:
    """The disaster happened before the measurement ends, and not before 2000."""
    if at is None:
        return
    now = time.time() if now is None else now
    if not 946684800 <= at <= now + duration_s:
        raise InvalidInput(
            f"--disaster-at {at:g}: must be a Unix time between 2000 and the end of this "
            f"measurement ({now + duration_s:.0f}); now is {now:.0f}"
        )
