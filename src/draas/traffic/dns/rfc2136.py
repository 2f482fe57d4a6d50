"""RFC 2136 dynamic updates signed with TSIG (dnspython), to any standard authoritative server
(BIND, Knot, PowerDNS). Success is reported only after the record reads back from the server."""

from __future__ import annotations

import base64
import binascii
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from draas.errors import TrafficError
from draas.traffic import CheckResult
from draas.traffic.dns import DnsProvider

SocketFactory = Callable[[], socket.socket]
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}


def read_tsig_key(path: Path) -> tuple[str, str, str]:
    """(name, algorithm, secret) from a BIND key file (``tsig-keygen`` output) or
    ``name:algorithm:secret`` on one line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TrafficError(f"cannot read TSIG key file {path}: {exc.strerror}") from exc
    if text.strip().count(":") == 2 and "{" not in text:
        name, alg, secret = text.strip().split(":")
    else:
        try:
            name = text.split('key "', 1)[1].split('"', 1)[0]
            alg = text.split("algorithm", 1)[1].split(";", 1)[0].strip()
            secret = text.split('secret "', 1)[1].split('"', 1)[0]
        except IndexError:
            raise TrafficError(f"TSIG key file {path}: not a BIND key or name:alg:secret") from None
    try:
        base64.b64decode(secret, validate=True)
    except binascii.Error:
        raise TrafficError(f"TSIG key file {path}: the secret is not base64") from None
    return name, alg.lower(), secret


class Rfc2136Provider(DnsProvider):
    def __init__(
        self,
        name: str,
        *,
        zone: str,
        record: str,
        ttl_s: int,
        server: str,
        port: int = 53,
        key_name: str,
        key_algorithm: str,
        key_secret: str,
        timeout_s: float = 2.0,
        socket_factory: SocketFactory | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(name, record, ttl_s, **kw)
        if key_algorithm not in ALGORITHMS:
            raise TrafficError(
                f"TSIG algorithm {key_algorithm!r} not supported; use one of {sorted(ALGORITHMS)}"
            )
        self.zone = dns.name.from_text(zone)
        self.server = server
        self.port = port
        self.timeout_s = timeout_s
        self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
        self.key_name = key_name
        self.algorithm = ALGORITHMS[key_algorithm]
        self.socket_factory = socket_factory
        rel = dns.name.from_text(self.record)
        if not rel.is_subdomain(self.zone):
            raise TrafficError(f"record {self.record} is not inside zone {zone}")
        self.relative = rel.relativize(self.zone)

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> Rfc2136Provider:
        key_name, alg, secret = read_tsig_key(Path(cfg.tsig_key_file))
        return cls(
            "rfc2136",
            zone=cfg.zone,
            record=cfg.record,
            ttl_s=cfg.ttl_s,
            server=cfg.server,
            port=cfg.port,
            key_name=key_name,
            key_algorithm=alg,
            key_secret=secret,
            **kw,
        )

    def _where(self) -> str:
        return f"server {self.server}:{self.port}, zone {self.zone}"

    def _send(self, msg: dns.message.Message) -> dns.message.Message:
        sock = None
        if self.socket_factory is not None:
            sock = self.socket_factory()
            sock.setblocking(False)
        try:
            return dns.query.udp(
                msg, self.server, port=self.port, timeout=self.timeout_s, sock=sock
            )
        except dns.exception.Timeout:
            raise TrafficError(
                f"no answer from {self._where()} within {self.timeout_s:g} s", retryable=True
            ) from None
        except dns.tsig.PeerBadTime as exc:
            raise TrafficError(self._bad_time(msg)) from exc
        except dns.tsig.PeerError as exc:
            raise TrafficError(
                f"{self._where()} rejected the TSIG signature of key {self.key_name} "
                f"({type(exc).__name__}): check the key name, algorithm and secret"
            ) from exc
        except OSError as exc:
            raise TrafficError(
                f"cannot reach {self._where()}: {exc.strerror or exc}", retryable=True
            ) from exc
        finally:
            if sock is not None:
                sock.close()

    def _bad_time(self, msg: dns.message.Message) -> str:
        """The server refused our signature's time (TSIG BADTIME): a clock problem, not a key
        problem. The refusal echoes our signature's time and carries the server's (RFC 8945
        5.2.3); the same message is sent once more, read without validation, to say how far off
        this machine is."""
        offset = None
        sock = self.socket_factory() if self.socket_factory is not None else None
        try:
            if sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(self.timeout_s)
            sock.sendto(msg.to_wire(), (self.server, self.port))
            wire = sock.recv(65535)
            got = dns.message.from_wire(wire, keyring=False)  # read, not validated
            rdata = got.tsig[0] if got.tsig else None
            other = getattr(rdata, "other", b"")
            if len(other) == 6:  # our signature's time (echoed) minus the server's time
                offset = float(getattr(rdata, "time_signed", 0) - int.from_bytes(other, "big"))
        except (dns.exception.DNSException, OSError, ValueError):
            offset = None
        finally:
            if sock is not None:
                sock.close()
        off = "by an unknown amount" if offset is None else f"{offset:+.0f} s"
        return (
            f"{self._where()} rejects our signature's time (TSIG BADTIME): this machine's "
            f"clock is {off} off the DNS server's (the key allows 300 s); fix this machine's "
            "time (NTP); the key itself is not the problem"
        )

    def _lookup(self) -> list[str]:
        q = dns.message.make_query(self.record, "A")
        q.flags &= ~dns.flags.RD
        ans = self._send(q)
        if ans.rcode() == dns.rcode.NXDOMAIN:
            return []
        if ans.rcode() != dns.rcode.NOERROR:
            raise TrafficError(
                f"{self._where()}: reading {self.record} answered {dns.rcode.to_text(ans.rcode())}",
                retryable=True,
            )
        return sorted(
            rr.to_text()
            for rrset in ans.answer
            for rr in rrset
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        )

    def current(self) -> str | None:
        got = self._lookup()
        return got[0] if got else None

    def _point_to(self, target: str) -> bool:
        if self._lookup() == [target]:
            return False
        upd = dns.update.UpdateMessage(
            self.zone,
            keyring=self.keyring,
            keyname=dns.name.from_text(self.key_name),
            keyalgorithm=self.algorithm,
        )
        upd.delete(self.relative, "A")
        upd.delete(self.relative, "AAAA")
        upd.add(self.relative, self.ttl_s, self.rdtype_for(target), target)
        answer = self._send(upd)
        rcode = answer.rcode()
        if rcode != dns.rcode.NOERROR:
            text = dns.rcode.to_text(rcode)
            hint = {
                "REFUSED": "the server does not allow this key to update the zone",
                "NOTAUTH": "the server is not authoritative for the zone, or the key is unknown",
                "NOTZONE": "the record is outside the zone",
                "SERVFAIL": "the server failed; try again later",
            }.get(text, "")
            raise TrafficError(
                f"update of {self.record} -> {target} at {self._where()} "
                f"answered {text}" + (f": {hint}" if hint else ""),
                retryable=text == "SERVFAIL",
            )
        deadline = time.monotonic() + self.timeout_s * 2
        while (got := self._lookup()) != [target]:
            if time.monotonic() > deadline:
                raise TrafficError(
                    f"{self._where()} accepted the update but answers {got} "
                    f"for {self.record}, not {target}",
                    retryable=True,
                )
            time.sleep(0.05)
        return True

    def check(self) -> CheckResult:
        """Send a signed update that only asserts the record exists (a prerequisite, no change)."""
        upd = dns.update.UpdateMessage(
            self.zone,
            keyring=self.keyring,
            keyname=dns.name.from_text(self.key_name),
            keyalgorithm=self.algorithm,
        )
        upd.present(self.relative)
        try:
            rcode = self._send(upd).rcode()
        except TrafficError as exc:
            return CheckResult(False, str(exc))
        text = dns.rcode.to_text(rcode)
        ok = rcode == dns.rcode.NOERROR
        return CheckResult(ok, f"signed update prerequisite at {self._where()}: {text}")
