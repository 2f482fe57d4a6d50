"""Who runs the runbooks: one agent at a time holds the controller lease (DESIGN.md's "no single
decider"). Pure: ``controller_action`` takes what the store says and returns what this agent
does with the lease.

Any candidate agent (the config's ``controller.candidates``, default every agent) may hold it.
A free lease is taken by the first candidate that asks, except that an agent on the active
site leaves it to a live candidate elsewhere: a disaster at the active site must not also take
the controller with it (its lease would have to expire first). For the same reason a holder
that finds itself on the active site (a failover made its site active) hands the lease on, but
only between runs. Two holders can never both act: every runbook step is fenced by the active
record's epoch, and a step done is never done again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

LeaseMove = Literal["none", "claim", "renew", "release"]


@dataclass(frozen=True)
class ControllerAction:
    kind: LeaseMove
    reason: str


def controller_action(
    *,
    node: str,
    site: str | None,
    holder: str | None,
    active_site: str | None,
    alive_elsewhere: Sequence[str],
    busy: bool,
    clock_off_s: float | None = None,
) -> ControllerAction:
    """``holder``: who holds the lease now (None: free); ``active_site``: the site that holds
    the active record, or held it last; ``alive_elsewhere``: the live candidates that are not
    at that site; ``busy``: this agent is running a runbook (it never hands over mid-run);
    ``clock_off_s``: how far this agent's clock is off the others' when it is the odd one
    out (None: it is not). A controller signs DNS updates and records events by its clock: a
    skewed agent leaves the lease to the others (it still votes, judged on receipt)."""
    on_active = site is not None and site == active_site
    others = [n for n in alive_elsewhere if n != node]
    if clock_off_s is not None:
        if holder == node and not busy:
            return ControllerAction(
                "release",
                f"{node}'s clock is {clock_off_s:+.0f} s off the others': the controller lease "
                "goes to an agent with the right time",
            )
        if holder != node:
            return ControllerAction(
                "none", f"{node}'s clock is {clock_off_s:+.0f} s off the others': not claiming"
            )
    if holder == node:
        if on_active and others and not busy:
            return ControllerAction(
                "release",
                f"{node} is at the active site {active_site}: the controller lease goes to an "
                f"agent elsewhere ({', '.join(others)})",
            )
        return ControllerAction("renew", f"{node} holds the controller lease")
    if holder is not None:
        return ControllerAction("none", f"{holder} holds the controller lease")
    if on_active and others:
        return ControllerAction(
            "none",
            f"the controller lease is free; left to an agent away from the active site "
            f"{active_site} ({', '.join(others)})",
        )
    return ControllerAction("claim", "the controller lease is free")
