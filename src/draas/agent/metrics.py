"""The agent's Prometheus metrics (``GET /metrics``): gauges read from the status document at
scrape time, and this agent's probe latencies as histograms. Names and labels follow the
Prometheus conventions (base units, ``_total`` counters, ``_seconds``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from draas import __version__

PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _StatusCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]], node: str, role: str) -> None:
        self.status = status
        self.node = node
        self.role = role

    def collect(self) -> Iterator[Any]:
        st = self.status()
        info = InfoMetricFamily("draas_agent", "This agent", labels=["node", "role"])
        info.add_metric([self.node, self.role], {"version": __version__})
        yield info
        store = GaugeMetricFamily("draas_store_up", "1 if the coordination store answered")
        store.add_metric([], 1.0 if st["store_ok"] else 0.0)
        yield store
        up = GaugeMetricFamily(
            "draas_site_up", "1 if the observer sees the site up", labels=["site", "observer"]
        )
        fe_up = GaugeMetricFamily(
            "draas_frontend_up",
            "1 if the observer sees the frontend up",
            labels=["frontend", "observer"],
        )
        active = GaugeMetricFamily(
            "draas_site_active", "1 for the site holding the lease", labels=["site"]
        )
        lag = GaugeMetricFamily(
            "draas_replication_lag_seconds",
            "Seconds the site's replica is behind its source",
            labels=["site"],
        )
        healthy = GaugeMetricFamily(
            "draas_replication_healthy",
            "1 if the site's replication threads run without error",
            labels=["site"],
        )
        keys = GaugeMetricFamily(
            "draas_keys_in_sync",
            "1 if the standby site's key directories equal the active site's (no alert)",
            labels=["site"],
        )
        keys_at = GaugeMetricFamily(
            "draas_keys_compared_timestamp_seconds",
            "When the standby last compared its key directories with the active site's",
            labels=["site"],
        )
        role = GaugeMetricFamily(
            "draas_site_role",
            "1 for each site's role now (active or standby; symmetric) and whether it is home",
            labels=["site", "state", "home"],
        )
        for s in st["sites"]:
            active.add_metric([s["name"]], 1.0 if s["active"] else 0.0)
            home = "true" if s.get("home") else "false"
            role.add_metric([s["name"], s.get("state", "standby"), home], 1.0)
            if s.get("keys"):
                keys.add_metric([s["name"]], 0.0 if s["keys"]["alert"] else 1.0)
                if s["keys"]["compared_at"] is not None:
                    keys_at.add_metric([s["name"]], float(s["keys"]["compared_at"]))
            for observer, state in s["seen"].items():
                up.add_metric([s["name"], observer], 1.0 if state == "up" else 0.0)
            db = s["database"] or {}
            if db.get("lag_s") is not None:
                lag.add_metric([s["name"]], float(db["lag_s"]))
            if db.get("role") == "replica":
                healthy.add_metric([s["name"]], 1.0 if db.get("healthy") else 0.0)
        routes = GaugeMetricFamily(
            "draas_frontend_routes_to",
            "1 for the site each frontend routes to",
            labels=["frontend", "site"],
        )
        for fe in st["frontends"]:
            for observer, state in fe["seen"].items():
                fe_up.add_metric([fe["name"], observer], 1.0 if state == "up" else 0.0)
            if fe["routes_to"]:
                routes.add_metric([fe["name"], fe["routes_to"]], 1.0)
        eligible = GaugeMetricFamily(
            "draas_standby_eligible",
            "1 if the standby site may be promoted automatically (named synchronous standby, "
            "or within the lag bound in async mode)",
            labels=["site"],
        )
        standby = st.get("standby")
        if standby:
            eligible.add_metric([standby["site"]], 1.0 if standby["eligible"] else 0.0)
        controller = GaugeMetricFamily(
            "draas_controller", "1 for the agent that holds the controller lease", labels=["node"]
        )
        if st.get("controller"):
            controller.add_metric([st["controller"]], 1.0)
        alerts = GaugeMetricFamily(
            "draas_alert",
            "1 for each alert the controller raised and has not cleared (its cause: the event)",
            labels=["name"],
        )
        for name in sorted(st.get("alerts") or {}):
            alerts.add_metric([name], 1.0)
        offsets = GaugeMetricFamily(
            "draas_clock_offset_seconds",
            "Each observer's clock minus this agent's, measured when its publication arrived",
            labels=["node"],
        )
        for name, off in ((st.get("clock") or {}).get("offsets_s") or {}).items():
            offsets.add_metric([name], float(off))
        yield from (up, fe_up, active, role, lag, healthy, routes, eligible, keys, keys_at)
        yield from (controller, offsets, alerts)
        epoch = GaugeMetricFamily("draas_active_epoch", "Epoch of the active record (0: none)")
        epoch.add_metric([], float((st["active"] or {}).get("epoch", 0)))
        yield epoch
        total = CounterMetricFamily("draas_failovers", "Failovers that took the lease")
        total.add_metric([], float(st["failovers_total"]))
        yield total
        last = GaugeMetricFamily(
            "draas_last_failover_timestamp_seconds",
            "When the last failover took the lease (Unix time)",
        )
        if st["last_failover_at"] is not None:
            last.add_metric([], float(st["last_failover_at"]))
        yield last


class Metrics:
    """One registry per agent (several agents may share a process in tests)."""

    def __init__(self, status: Callable[[], dict[str, Any]], node: str, role: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatusCollector(status, node, role))
        self.probe_seconds = Histogram(
            "draas_probe_duration_seconds",
            "How long this agent's probes took",
            ["target", "result"],
            buckets=PROBE_BUCKETS,
            registry=self.registry,
        )

    def observe_probe(self, target: str, ok: bool, seconds: float) -> None:
        self.probe_seconds.labels(target, "ok" if ok else "failed").observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
