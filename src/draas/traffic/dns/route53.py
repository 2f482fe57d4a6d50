"""Amazon Route 53 through boto3: UPSERT the record, then wait until the change is INSYNC."""

from __future__ import annotations

import time
from typing import Any

from draas.errors import TrafficError
from draas.traffic import CheckResult
from draas.traffic.dns import DnsProvider

# Error codes where a retry can help (throttling, AWS-side trouble).
RETRYABLE = {
    "Throttling",
    "ThrottlingException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
}


class Route53Provider(DnsProvider):
    def __init__(
        self,
        name: str,
        *,
        hosted_zone_id: str,
        record: str,
        ttl_s: int,
        client: Any = None,
        wait_s: float = 60.0,
        **kw: Any,
    ) -> None:
        super().__init__(name, record, ttl_s, **kw)
        self.zone_id = hosted_zone_id
        self.wait_s = wait_s
        if client is None:
            import boto3

            client = boto3.client("route53")
        self.client = client

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> Route53Provider:
        return cls(
            "route53", hosted_zone_id=cfg.hosted_zone_id, record=cfg.record, ttl_s=cfg.ttl_s, **kw
        )

    def _call(self, what: str, fn: Any, **args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            msg = exc.response.get("Error", {}).get("Message", "")
            if code == "RequestExpired" or "signature expired" in msg.lower():
                raise TrafficError(
                    f"Route 53 {what} for {self.record}: AWS rejects our request's signature "
                    f"time: this machine's clock is {clock_offset(exc.response)} (AWS allows "
                    f"5 minutes): fix NTP here ({code}: {msg})"
                ) from exc
            raise TrafficError(
                f"Route 53 {what} for {self.record} in zone {self.zone_id}: {code}: {msg}",
                retryable=code in RETRYABLE,
            ) from exc
        except BotoCoreError as exc:
            raise TrafficError(f"Route 53 {what}: {exc}", retryable=True) from exc

    def _records(self) -> list[str]:
        resp = self._call(
            "read",
            self.client.list_resource_record_sets,
            HostedZoneId=self.zone_id,
            StartRecordName=self.record,
            MaxItems="2",
        )
        for rrset in resp.get("ResourceRecordSets", []):
            if rrset["Name"] == self.record and rrset["Type"] in ("A", "AAAA"):
                return sorted(r["Value"] for r in rrset.get("ResourceRecords", []))
        return []

    def current(self) -> str | None:
        got = self._records()
        return got[0] if got else None

    def _point_to(self, target: str) -> bool:
        if self._records() == [target]:
            return False
        batch = {
            "Comment": "draas traffic switch",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": self.record,
                        "Type": self.rdtype_for(target),
                        "TTL": self.ttl_s,
                        "ResourceRecords": [{"Value": target}],
                    },
                }
            ],
        }
        resp = self._call(
            "update",
            self.client.change_resource_record_sets,
            HostedZoneId=self.zone_id,
            ChangeBatch=batch,
        )
        change_id = resp["ChangeInfo"]["Id"]
        deadline = time.monotonic() + self.wait_s
        while True:
            info = self._call("change status", self.client.get_change, Id=change_id)
            if info["ChangeInfo"]["Status"] == "INSYNC":
                return True
            if time.monotonic() > deadline:
                raise TrafficError(
                    f"Route 53 change {change_id} not INSYNC after {self.wait_s:g} s",
                    retryable=True,
                )
            time.sleep(1.0)

    def check(self) -> CheckResult:
        try:
            zone = self._call("zone", self.client.get_hosted_zone, Id=self.zone_id)
        except TrafficError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"hosted zone {zone['HostedZone']['Name']} readable")


def clock_offset(response: Any) -> str:
    """How far this machine's clock is off AWS's, from the error's ``Date`` header."""
    from email.utils import parsedate_to_datetime

    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return "off"
    return f"{time.time() - theirs:+.0f} s off"
