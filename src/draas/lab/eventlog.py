"""The lab's event log, read the way an operator's tool reads it: the agents' events from the
coordination store (with ``etcdctl`` from the witness), typed, and the first time something
happened. The experiment, the report and the lab tests measure from these, never from the
agents' log text."""

from __future__ import annotations

import json
from collections.abc import Sequence

from draas.coordination import Event
from draas.lab.agents import etcd_get
from draas.lab.lab import Lab


def read_events(lab: Lab, since: float | None = None) -> list[Event]:
    """Every event (at or after ``since``), in the order they were stored."""
    out = [Event.from_dict(json.loads(e)) for e in etcd_get(lab, "events/", prefix=True)]
    return [e for e in out if since is None or e.ts >= since]


def first(
    events: Sequence[Event],
    *,
    run: str | None = None,
    step: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    nodes: Sequence[str] | None = None,
    since: float | None = None,
) -> float | None:
    """The earliest time of an event matching every given field (``run``: a prefix)."""
    times = [
        e.ts
        for e in events
        if (run is None or e.run.startswith(run))
        and (step is None or e.step == step)
        and (outcome is None or e.outcome == outcome)
        and (target is None or e.target == target)
        and (nodes is None or e.node in nodes)
        and (since is None or e.ts >= since)
    ]
    return min(times) if times else None


def detected(
    events: Sequence[Event],
    target: str,
    state: str = "down",
    since: float | None = None,
    nodes: Sequence[str] | None = None,
) -> float | None:
    """When a vantage point (of ``nodes``, default any) first saw ``target`` in ``state``: by
    the service's checks, or (``down``) by finding it unreachable, whichever came first."""
    seen = first(events, step="detect", outcome=state, target=target, nodes=nodes, since=since)
    if state != "down":
        return seen
    gone = first(
        events, step="reach", outcome="unreachable", target=target, nodes=nodes, since=since
    )
    times = [t for t in (seen, gone) if t is not None]
    return min(times) if times else None


def routed(
    events: Sequence[Event], site: str, since: float, nodes: Sequence[str] | None = None
) -> float | None:
    """When a frontend (of ``nodes``, default any) first routed to ``site``."""
    return first(events, step="route", target=site, nodes=nodes, since=since)
