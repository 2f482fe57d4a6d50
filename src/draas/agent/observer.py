"""What every agent does each probe interval: probe every target at once from its own vantage
point, feed the rise/fall detectors, record each change of what it sees as a detection event,
and publish its observation (with the extras its role adds) under an expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from draas.clock import Clock
from draas.coordination import CoordinationStore, DatabaseReport, Event, KeysReport, Observation
from draas.health.detector import VantagePoint
from draas.health.probes import Probe, ProbeResult

log = logging.getLogger(__name__)

Emit = Callable[[Event], object]
OnProbe = Callable[[str, ProbeResult], None]


class Observer:
    def __init__(
        self,
        *,
        node: str,
        probes: Mapping[str, Sequence[Probe]],
        rise: int,
        fall: int,
        ttl_s: float,
        store: CoordinationStore,
        clock: Clock,
        emit: Emit,
        on_probe: OnProbe | None = None,
        reach: Mapping[str, Probe] | None = None,
        reach_fall: int = 3,
    ) -> None:
        self.node = node
        self.probes = {t: list(p) for t, p in probes.items()}
        self.reach = dict(reach or {})
        self.vantage = VantagePoint(
            node, list(self.probes), rise, fall, reach=list(self.reach), reach_fall=reach_fall
        )
        self._publishing = threading.Lock()
        self.ttl_s = ttl_s
        self.store = store
        self.clock = clock
        self.emit = emit
        self.on_probe = on_probe
        # What the node's role adds to its observation (set by the agent's other tasks).
        self.routes_to: Callable[[], str | None] | None = None
        self.database: Callable[[], DatabaseReport | None] | None = None
        self.keys: Callable[[], KeysReport | None] | None = None

    async def observe(self) -> list[str]:
        """One probe round (every probe of every target at once: it lasts one probe timeout
        at most). Returns the detections it made, as sentences; ``publish`` then says what
        this vantage point sees."""
        now = self.clock.now()
        targets = list(self.probes)
        rounds = await asyncio.gather(
            *(asyncio.gather(*(p.check() for p in self.probes[t])) for t in targets)
        )
        said = []
        for target, results in zip(targets, rounds, strict=True):
            for r in results:
                if self.on_probe is not None:
                    self.on_probe(target, r)
            ok = all(r.ok for r in results)
            if self.vantage.feed(target, ok, now):
                state = self.vantage.detectors[target].state
                detail = "; ".join(r.detail for r in results)
                said.append(f"{self.node} sees {target} {state}")
                self.emit(self._detection(target, state, detail))
        return said

    async def reach_round(self) -> list[str]:
        """One round of TCP connects to every site (the hard-failure check): returns the
        changes it found, as sentences (each also an event)."""
        now = self.clock.now()
        targets = list(self.reach)
        results = await asyncio.gather(*(self.reach[t].check() for t in targets))
        said = []
        for target, r in zip(targets, results, strict=True):
            if self.vantage.feed_reach(target, r.ok, now):
                state = "reachable" if r.ok else "unreachable"
                said.append(f"{self.node} finds {target} {state}")
                self.emit(self._detection(target, state, r.detail, step="reach"))
        return said

    def unreachable(self) -> list[str]:
        """The targets this vantage point finds unreachable now."""
        return [t for t in self.reach if self.vantage.unreachable_since(t) is not None]

    def _detection(self, target: str, state: str, detail: str, step: str = "detect") -> Event:
        return Event(
            ts=self.clock.now(),
            node=self.node,
            runbook="monitor",
            run=f"sees-{target}",
            step=step,
            outcome=state,
            target=target,
            detail=detail,
        )

    def observation(self) -> Observation:
        return dataclasses.replace(
            self.vantage.observation(self.clock.now()),
            routes_to=None if self.routes_to is None else self.routes_to(),
            database=None if self.database is None else self.database(),
            keys=None if self.keys is None else self.keys(),
        )

    def publish(self) -> None:
        """Publish what this vantage point sees now (the probe cycle and the reach rounds
        both publish: one at a time)."""
        with self._publishing:
            self.store.publish(self.observation(), self.ttl_s)
