"""One lab: the engine (``engine.LabEngine``: namespaces, WAN, supervisor) with the
deployment of the scheme on it (``services``: BIND9, Unbound, MariaDB, etcd, Keystone,
HAProxy). What every lab command, experiment and test builds."""

from __future__ import annotations

from typing import Any

from draas.lab.engine import LabEngine, LabSettings, Progress, require_root

__all__ = ["Lab", "LabSettings", "Progress", "require_root"]


class Lab(LabEngine):
    def _deploy(self, progress: Progress) -> dict[str, float]:
        from draas.lab.services import start_services

        progress(f"starting the services of the {self.settings.scheme} scheme")
        return start_services(self, self.settings.scheme, self.settings.dns_ttl_s, progress)

    def _overview(self) -> dict[str, Any]:
        from draas.lab.services import services_overview

        return services_overview(self)
