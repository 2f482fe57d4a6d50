"""OpenStack Designate (DNS as a service) through openstacksdk, authenticated from clouds.yaml
as OpenStack users expect: find the zone and the recordset, update (or create) it, then wait
until Designate reports the recordset ACTIVE (pushed to its name servers)."""

from __future__ import annotations

import time
from typing import Any

from draas.errors import TrafficError
from draas.traffic import CheckResult
from draas.traffic.dns import DnsProvider


class DesignateProvider(DnsProvider):
    def __init__(
        self,
        name: str,
        *,
        zone: str,
        record: str,
        ttl_s: int,
        cloud: str | None = None,
        connection: Any = None,
        wait_s: float = 60.0,
        **kw: Any,
    ) -> None:
        super().__init__(name, record, ttl_s, **kw)
        self.zone_name = zone if zone.endswith(".") else zone + "."
        self.wait_s = wait_s
        self.cloud = cloud
        self._conn = connection

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> DesignateProvider:
        return cls(
            "designate", zone=cfg.zone, record=cfg.record, ttl_s=cfg.ttl_s, cloud=cfg.cloud, **kw
        )

    @property
    def conn(self) -> Any:
        if self._conn is None:
            import openstack

            self._conn = openstack.connect(cloud=self.cloud)
        return self._conn

    def _call(self, what: str, fn: Any) -> Any:
        """Run ``fn()`` (which may first authenticate and discover the endpoint), mapping the
        SDK's errors to ours."""
        from keystoneauth1 import exceptions as ks_exc
        from openstack import exceptions as os_exc

        try:
            return fn()
        except ks_exc.Unauthorized as exc:
            raise TrafficError(
                f"Designate ({self.cloud}): authentication refused for {what}: "
                f"check clouds.yaml credentials"
            ) from exc
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout) as exc:
            raise TrafficError(
                f"Designate ({self.cloud}) unreachable for {what}: {exc}", retryable=True
            ) from exc
        except os_exc.NotFoundException as exc:
            raise TrafficError(f"Designate ({self.cloud}): {what}: not found") from exc
        except os_exc.HttpException as exc:
            code = getattr(exc, "status_code", None) or 0
            raise TrafficError(
                f"Designate ({self.cloud}): {what}: HTTP {code}: {exc}",
                retryable=code >= 500 or code == 429,
            ) from exc
        except ks_exc.ClientException as exc:
            raise TrafficError(f"Designate ({self.cloud}): {what}: {exc}", retryable=True) from exc

    def _zone(self) -> Any:
        return self._call(
            f"zone {self.zone_name}",
            lambda: self.conn.dns.find_zone(self.zone_name, ignore_missing=False),
        )

    def _recordset(self, zone: Any) -> Any | None:
        found = self._call(
            f"recordsets of {self.record}",
            lambda: list(self.conn.dns.recordsets(zone, name=self.record)),
        )
        found = [r for r in found if r.type in ("A", "AAAA")]
        return found[0] if found else None

    def current(self) -> str | None:
        rs = self._recordset(self._zone())
        return sorted(rs.records)[0] if rs is not None and rs.records else None

    def _point_to(self, target: str) -> bool:
        zone = self._zone()
        rs = self._recordset(zone)
        if rs is not None and list(rs.records) == [target] and rs.status == "ACTIVE":
            return False
        if rs is None:
            rs = self._call(
                "create recordset",
                lambda: self.conn.dns.create_recordset(
                    zone,
                    name=self.record,
                    type=self.rdtype_for(target),
                    records=[target],
                    ttl=self.ttl_s,
                ),
            )
        else:
            old = rs
            rs = self._call(
                "update recordset",
                lambda: self.conn.dns.update_recordset(old, records=[target], ttl=self.ttl_s),
            )
        deadline = time.monotonic() + self.wait_s
        while True:
            got = self._call("recordset status", lambda: self.conn.dns.get_recordset(rs, zone))
            if got.status == "ACTIVE" and list(got.records) == [target]:
                return True
            if got.status == "ERROR":
                raise TrafficError(f"Designate put recordset {self.record} in ERROR")
            if time.monotonic() > deadline:
                raise TrafficError(
                    f"Designate recordset {self.record} still {got.status} after {self.wait_s:g} s",
                    retryable=True,
                )
            time.sleep(0.5)

    def check(self) -> CheckResult:
        try:
            zone = self._zone()
        except TrafficError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"Designate zone {zone.name} ({zone.id}) readable")
