"""Frontend engines: route the service's web and API ports to one site.

``haproxy`` drives HAProxy through its runtime API; ``proxy`` is an embedded asyncio reverse
proxy; ``redirect`` answers HTTP 302 to the active site (what the original frontend did).
Targets are site names; the engine knows each site's address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from draas.errors import TrafficError
from draas.traffic import TrafficSwitch


class FrontendEngine(TrafficSwitch):
    kind = "frontend"

    def __init__(self, name: str, sites: Mapping[str, str], **kw: Any) -> None:
        super().__init__(name, **kw)
        if not sites:
            raise TrafficError(f"frontend {name}: no sites to route to")
        self.sites = dict(sites)

    def validate_target(self, target: str) -> str:
        if target not in self.sites:
            raise TrafficError(
                f"frontend {self.name}: unknown site {target!r}; sites: "
                f"{sorted(self.sites)}; nothing was changed"
            )
        return target


def make_engine(kind: str, name: str, sites: Mapping[str, str], **kw: Any) -> FrontendEngine:
    """The engine named by the config's ``frontend.engine`` (``proxy``, ``redirect``,
    ``haproxy``); ``kw`` carries what that engine needs (ports, admin socket...)."""
    from draas.traffic.frontend.haproxy import HaproxyEngine
    from draas.traffic.frontend.proxy import ProxyEngine

    if kind == "haproxy":
        return HaproxyEngine(name, sites=sites, **kw)
    if kind in ("proxy", "redirect"):
        return ProxyEngine(name, sites, redirect=kind == "redirect", **kw)
    raise TrafficError(f"frontend engine {kind!r} is not available; have: haproxy, proxy, redirect")
