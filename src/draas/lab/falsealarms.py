"""False failovers in the lab, counted the way ``draas model`` predicts them: the lab runs with
automatic action paused (``draas pause``), so a quorum that confirms a healthy primary down
is recorded by the controller's decision ("would failover", or a failover blocked for
another cause) and nothing moves: every confirmation of the soak is seen, not only the first
one. Beside it, each observer's own false "down"s (its ``detect`` and ``reach`` events), which
the model predicts too.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from draas.coordination import Event
from draas.lab.agents import NODES
from draas.lab.lab import Lab
from draas.model.network import Path

# The decision's causes once a quorum confirmed the active site down (policy.decide): the
# failover itself, or a wait for a reason that comes after the confirmation.
CONFIRMED = {"confirmed", "held", "paused", "no-healthy-target", "unfit-replica", "not-eligible"}

# Each detector's events: (step, the outcome that starts a "down", the one that ends it).
DETECTORS = {"reach": ("reach", "unreachable", "reachable"), "service": ("detect", "down", "up")}


def confirmations(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Each time the decision went from "not confirmed" to "confirmed down" (one per
    episode, whatever causes the wait then): its time, cause and reason."""
    out: list[dict[str, Any]] = []
    confirmed = False
    for e in events:
        if e.step != "decide" or e.runbook != "decision":
            continue
        cause = str(e.extra.get("cause", ""))
        now = cause in CONFIRMED and (cause != "paused" or "would failover" in (e.detail or ""))
        if now and not confirmed:
            out.append({"ts": e.ts, "cause": cause, "reason": e.detail or ""})
        confirmed = now
    return out


def observer_downs(
    events: Sequence[Event],
    target: str,
    observers: Collection[str],
    windows: Mapping[str, float],
    until: float,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per detector and each of ``observers`` (the target's voters): how many false "down"s
    it had of ``target``, how long it counted down once the window had passed
    (``counted_s``), and how many
    of them lasted the detector's window (``windows``; a "down" still on at ``until`` lasts
    until then)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for detector, (step, down, up) in DETECTORS.items():
        began: dict[str, float] = {}
        counts: dict[str, dict[str, float]] = {}
        for e in events:
            if e.step != step or e.target != target or e.node not in observers:
                continue
            c = counts.setdefault(e.node, {"downs": 0, "lasted_window": 0, "counted_s": 0.0})
            if e.outcome == down and e.node not in began:
                began[e.node] = e.ts
                c["downs"] += 1
            elif e.outcome == up and e.node in began:
                lasted = e.ts - began.pop(e.node)
                c["lasted_window"] += int(lasted >= windows[detector])
                c["counted_s"] += max(0.0, lasted - windows[detector])
        for node, t in began.items():
            if until - t >= windows[detector]:
                counts[node]["lasted_window"] += 1
                counts[node]["counted_s"] += until - t - windows[detector]
        out[detector] = counts
    return out


def detector_of(confirmation: Mapping[str, Any]) -> str:
    """Which detector made a confirmation, from the decision's reason: "reach" (unreachable
    for the reach window), "service" (down for the confirmation window), or "unknown" (a
    wait's reason that does not say)."""
    reason = str(confirmation.get("reason", ""))
    if " unreachable for " in reason:
        return "reach"
    if " down for " in reason:
        return "service"
    return "unknown"


def lab_paths(lab: Lab, loss_pct: float, jitter_ms: float) -> dict[str, Path]:
    """Each observer's path to the primary while the soak's gray network is on both sites
    (``disasters.GrayNetwork``: loss on each site host's input and output; jitter as a delay of
    J +- J ms on each site host's traffic): the DR agent's packets cross both sites' filters,
    the witness's only the primary's; the WAN's own delay is the sites' zones'."""
    p, j = loss_pct / 100, jitter_ms / 1000
    wan = sum(w.delay_ms for w in lab.topo.wan) / 1000
    out = {}
    for node, (host, _) in NODES.items():
        if host == "primary":
            continue
        crossings = 2 if host == "dr" else 1
        out[node] = Path(
            rtt_s=2 * (j + (wan if host == "dr" else 0.0)),
            loss=1 - (1 - p) ** crossings,
            jitter_s=j,
        )
    return out


def paused(lab: Lab, minutes: float) -> None:
    """``draas pause`` for the soak (ends by itself after ``minutes`` in any case)."""
    got = lab.exec(
        "dr",
        ["draas", "pause", "--reason", "false-failover soak", "--for", f"{minutes:g}m"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if got.returncode != 0:
        raise RuntimeError(f"draas pause failed: {got.stdout}{got.stderr}")
    time.sleep(2)  # every agent's next view has it


def resumed(lab: Lab) -> None:
    lab.exec("dr", ["draas", "resume"], capture_output=True, text=True, timeout=60)
