"""Readiness checks for supervised processes, run from inside a lab host's namespace."""

from __future__ import annotations

import http.client
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from draas.lab import netns
from draas.traffic.frontend.haproxy import runtime_command


class Ready(Protocol):
    def check(self, ns: str) -> str | None:
        """None when ready, else a short reason why not."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TcpReady:
    """Ready when a TCP connection to address:port succeeds."""

    address: str
    port: int

    def check(self, ns: str) -> str | None:
        try:
            netns.tcp_connect(ns, self.address, self.port, timeout=0.5).close()
        except OSError as exc:
            return f"tcp {self.address}:{self.port}: {exc.strerror or exc}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tcp", **asdict(self)}


@dataclass(frozen=True)
class HttpReady:
    """Ready when GET url answers with the expected status."""

    url: str
    status: int = 200

    def check(self, ns: str) -> str | None:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = parts.port or 80
        conn = http.client.HTTPConnection(host, port, timeout=1.0)
        try:
            conn.sock = netns.tcp_connect(ns, host, port, timeout=1.0)
            conn.request("GET", parts.path or "/")
            got = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return f"GET {self.url}: {exc}"
        finally:
            conn.close()
        return None if got == self.status else f"GET {self.url}: status {got}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "http", **asdict(self)}


@dataclass(frozen=True)
class CommandReady:
    """Ready when a command run inside the host exits 0."""

    argv: tuple[str, ...] = field(default_factory=tuple)

    def check(self, ns: str) -> str | None:
        try:
            proc = subprocess.run(
                netns.in_ns(ns, self.argv), capture_output=True, text=True, timeout=5, check=False
            )
        except subprocess.TimeoutExpired:
            return f"{self.argv[0]}: timed out"
        if proc.returncode == 0:
            return None
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return f"{' '.join(self.argv)}: exit {proc.returncode} {tail[0]}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "command", "argv": list(self.argv)}


def ready_from_dict(doc: dict[str, Any] | None) -> Ready | None:
    if not doc:
        return None
    kind = doc["kind"]
    if kind == "tcp":
        return TcpReady(doc["address"], int(doc["port"]))
    if kind == "http":
        return HttpReady(doc["url"], int(doc.get("status", 200)))
    if kind == "command":
        return CommandReady(tuple(doc["argv"]))
    if kind == "dns":
        return DnsReady(doc["server"], doc["name"], doc.get("rdtype", "A"))
    if kind == "unix":
        return UnixReady(doc["path"], doc["command"], doc.get("expect", ""))
    raise ValueError(f"unknown readiness kind {kind!r}")


@dataclass(frozen=True)
class DnsReady:
    """Ready when the DNS server at ``server`` answers ``name``/``rdtype`` with NOERROR."""

    server: str
    name: str
    rdtype: str = "A"

    def check(self, ns: str) -> str | None:
        import dns.exception
        import dns.message
        import dns.rcode

        query = dns.message.make_query(self.name, self.rdtype)
        try:
            answer = netns.dns_udp(ns, query, self.server, timeout=0.5)
        except (OSError, dns.exception.DNSException) as exc:
            return f"dns {self.name}/{self.rdtype} @{self.server}: {exc}"
        if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
            return (
                f"dns {self.name}/{self.rdtype} @{self.server}: {dns.rcode.to_text(answer.rcode())}"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "dns", **asdict(self)}


@dataclass(frozen=True)
class UnixReady:
    """Ready when a line-protocol Unix socket (e.g. HAProxy's runtime API) answers a command."""

    path: str
    command: str
    expect: str = ""

    def check(self, ns: str) -> str | None:
        try:
            out = runtime_command(self.path, self.command, timeout=0.5)
        except OSError as exc:
            return f"unix {self.path}: {exc}"
        return None if self.expect in out else f"unix {self.path}: {self.expect!r} not in answer"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "unix", **asdict(self)}
