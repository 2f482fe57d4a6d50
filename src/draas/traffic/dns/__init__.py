"""DNS providers: point the service's name at an address.

One implementation per module (``rfc2136``, ``dyndns2``, ``designate``, ``route53``), chosen by
the config's ``dns.provider``; ``make_provider(cfg)`` builds the one configured.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from draas.errors import TrafficError
from draas.traffic import TrafficSwitch


class DnsProvider(TrafficSwitch):
    kind = "DNS provider"

    def __init__(self, name: str, record: str, ttl_s: int, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.record = record if record.endswith(".") else record + "."
        self.ttl_s = ttl_s

    @staticmethod
    def rdtype_for(address: str) -> str:
        return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"

    def validate_target(self, target: str) -> str:
        try:
            return str(ipaddress.ip_address(target))
        except ValueError:
            raise TrafficError(
                f"{self.kind} {self.name}: target {target!r} for {self.record} is not an IP "
                "address; nothing was sent"
            ) from None


def make_provider(cfg: Any, **kw: Any) -> DnsProvider:
    """The provider named by a validated ``dns`` config section."""
    from draas.traffic.dns import designate, dyndns2, rfc2136, route53

    kinds: dict[str, Any] = {
        "rfc2136": rfc2136.Rfc2136Provider.from_config,
        "dyndns2": dyndns2.Dyndns2Provider.from_config,
        "designate": designate.DesignateProvider.from_config,
        "route53": route53.Route53Provider.from_config,
    }
    if cfg.provider not in kinds:
        raise TrafficError(f"DNS provider {cfg.provider!r} is not available; have: {sorted(kinds)}")
    provider: DnsProvider = kinds[cfg.provider](cfg, **kw)
    return provider
