"""The dyndns2 protocol (NO-IP, Dyn and compatibles), as the original system used it:
``GET /nic/update?hostname=NAME&myip=ADDRESS`` with HTTP basic auth and a real User-Agent.

Every documented answer has a defined outcome. Answers that mean "stop" (bad credentials, bad
agent, account problems, abuse) block this provider for good: no further request is sent until
an operator fixes the cause and restarts, because providers ban clients that keep sending bad
updates. ``911`` (provider trouble) is retried with backoff.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from draas import __version__
from draas.errors import ProviderBlocked, TrafficError
from draas.traffic import CheckResult
from draas.traffic.dns import DnsProvider

USER_AGENT = f"draas/{__version__} (disaster-recovery failover)"

# answer -> (outcome, explanation); outcome: ok | stop | retry | fail
ANSWERS: dict[str, tuple[str, str]] = {
    "good": ("ok", "updated"),
    "nochg": ("ok", "already pointing there"),
    "nohost": ("stop", "the host name does not exist in this account"),
    "badauth": ("stop", "the user name or password is wrong"),
    "badagent": ("stop", "the provider blocked this client's User-Agent"),
    "!donator": ("stop", "the account lacks the feature this update needs"),
    "abuse": ("stop", "the provider blocked this host name for abuse"),
    "notfqdn": ("stop", "the host name is not a fully qualified domain name"),
    "numhost": ("stop", "too many host names in one update"),
    "dnserr": ("retry", "the provider's DNS had an error"),
    "911": ("retry", "the provider has a problem; retry later"),
}


class Dyndns2Provider(DnsProvider):
    def __init__(
        self,
        name: str,
        *,
        url: str,
        record: str,
        ttl_s: int,
        username: str,
        password: str,
        timeout_s: float = 5.0,
        **kw: Any,
    ) -> None:
        super().__init__(name, record, ttl_s, **kw)
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.blocked: str | None = None
        self.last: str | None = None

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> Dyndns2Provider:
        password = Path(cfg.password_file).read_text().strip()
        return cls(
            "dyndns2",
            url=cfg.url,
            record=cfg.record,
            ttl_s=cfg.ttl_s,
            username=cfg.username,
            password=password,
            **kw,
        )

    def _request(self, target: str) -> str:
        host = self.record.rstrip(".")
        query = urllib.parse.urlencode({"hostname": host, "myip": target})
        req = urllib.request.Request(f"{self.url}/nic/update?{query}")
        cred = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {cred}")
        req.add_header("User-Agent", USER_AGENT)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return str(resp.read().decode(errors="replace").strip())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()
            if exc.code == 401:
                return body or "badauth"
            raise TrafficError(
                f"{self.url} answered HTTP {exc.code}: {body[:200]}", retryable=exc.code >= 500
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TrafficError(f"cannot reach {self.url}: {exc}", retryable=True) from exc

    def _point_to(self, target: str) -> bool:
        if self.blocked:
            raise ProviderBlocked(
                f"dyndns2 at {self.url} is blocked since it answered "
                f"{self.blocked}; fix the cause and restart"
            )
        answer = self._request(target)
        code = answer.split()[0] if answer else ""
        outcome, why = ANSWERS.get(code, ("fail", "an answer the protocol does not define"))
        if outcome == "ok":
            self.last = target
            return code == "good"
        msg = f"dyndns2 update of {self.record} -> {target} at {self.url}: {answer!r} ({why})"
        if outcome == "stop":
            self.blocked = answer
            raise ProviderBlocked(msg + "; no further updates will be sent")
        raise TrafficError(msg, retryable=outcome == "retry")

    def current(self) -> str | None:
        """The protocol has no read call: the last address the provider accepted."""
        return self.last

    def check(self) -> CheckResult:
        if self.blocked:
            return CheckResult(False, f"blocked since the provider answered {self.blocked}")
        return CheckResult(True, f"{self.url} configured for {self.record} as {self.username}")
