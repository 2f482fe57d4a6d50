"""Low-level access to Linux network namespaces: run commands in them, open sockets in them."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from draas.errors import CommandError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 30.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell string); raise ``CommandError`` on failure."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"program not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc


def in_ns(ns: str, argv: Sequence[str]) -> list[str]:
    """The argument list that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def pids_in(ns: str) -> list[int]:
    """PIDs of every process whose network namespace is ``ns``."""
    if not exists(ns):
        return []
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    """A socket created inside namespace ``ns``; it stays there, usable from any thread.

    A network namespace is a per-thread attribute, so a short-lived thread enters the
    namespace, creates the socket, and ends; the caller's threads never change namespace.
    """
    result: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(socket.socket(family, kind))
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=make, name=f"netns-{ns}")
    t.start()
    t.join()
    got = result[0]
    if isinstance(got, BaseException):
        raise got
    return got


def tcp_connect(ns: str, address: str, port: int, timeout: float = 1.0) -> socket.socket:
    """A TCP connection opened from inside ``ns``."""
    sock = socket_in(ns)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def dns_udp(ns: str, message: Any, server: str, timeout: float = 1.0) -> Any:
    """Send a DNS message over UDP from inside ``ns`` and return dnspython's answer.

    dnspython only honours its timeout on a non-blocking socket, so the socket is made one.
    """
    import dns.query

    sock = socket_in(ns, kind=socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        return dns.query.udp(message, server, timeout=timeout, sock=sock)
    finally:
        sock.close()
