"""Hybrid scheme: which frontend the service's DNS name points at.

The DNS name stays on the preferred frontend while it is healthy. It moves to another
frontend only when a quorum of the other vantage points (never the frontend itself) has seen
the current one down for the confirmation window, and the new one up for as long; it goes
back to the preferred frontend once the same quorum has seen it up again for the window.
When the same quorum sees every frontend down, the name points straight at the active site
(``direct_to``, ``frontend.direct_when_all_down``; it follows that site if it changes) until a
frontend is confirmed up again. Pure: a view in, a decision out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from draas.coordination import State
from draas.failover.policy import Decision, View, needed_votes, votes


def voters_for(frontend: str, nodes: Sequence[str]) -> list[str]:
    """Every node but the frontend itself votes on it."""
    return [n for n in nodes if n != frontend]


def pick_frontend(
    view: View,
    nodes: Sequence[str],
    frontends: Sequence[str],
    preferred: str,
    current: str | None,
    direct_to: str | None = None,
    sites: Sequence[str] = (),
) -> Decision:
    """``move-dns`` to a frontend or, with ``direct_to`` (the active site) while every
    frontend is confirmed down, to that site (``target``); or ``none`` with the reason.
    ``current``: the frontend or site (one of ``sites``) the name points at now."""

    def confirmed(fe: str, state: State) -> list[str] | None:
        voters = voters_for(fe, nodes)
        got = votes(view, fe, state, voters)
        return got if len(got) >= needed_votes(voters) else None

    order = [preferred, *(f for f in frontends if f != preferred)]
    if current is not None and current in sites:
        return _from_direct(view, order, current, direct_to, confirmed)
    if current is not None and current not in frontends:
        current = None  # the name points somewhere we do not manage: claim it
    if current is None:
        target = next((f for f in order if confirmed(f, "down") is None), None)
        if target is None:
            return Decision("none", "every frontend is confirmed down: DNS left as it is")
        return Decision(
            "move-dns",
            f"the DNS name points at no frontend; {target} is not confirmed down",
            target=target,
        )
    down = confirmed(current, "down")
    if down is not None:
        for fe in order:
            if fe == current:
                continue
            up = confirmed(fe, "up")
            if up is not None:
                return Decision(
                    "move-dns",
                    f"{current} down for {view.confirm_window_s:g} s by "
                    f"{', '.join(down)}; {fe} up by {', '.join(up)}",
                    target=fe,
                )
        every = [fe for fe in order if fe == current or confirmed(fe, "down") is not None]
        if direct_to is not None and len(every) == len(order):
            return Decision(
                "move-dns",
                f"every frontend is down ({', '.join(order)}, confirmed by a quorum): the name "
                f"points straight at the active site {direct_to} until one is up again",
                target=direct_to,
            )
        return Decision(
            "none", f"{current} is down ({', '.join(down)}) but no other frontend is confirmed up"
        )
    if current != preferred:
        up = confirmed(preferred, "up")
        if up is not None:
            return Decision(
                "move-dns",
                f"preferred frontend {preferred} up again for "
                f"{view.confirm_window_s:g} s by {', '.join(up)}",
                target=preferred,
            )
    return Decision("none", f"DNS stays on {current}")


def _from_direct(
    view: View,
    order: Sequence[str],
    current: str,
    direct_to: str | None,
    confirmed: Callable[[str, State], list[str] | None],
) -> Decision:
    """The name points at a site (no frontend was up): back to the first frontend confirmed up
    again, else after the active site when it moved."""
    for fe in order:
        up = confirmed(fe, "up")
        if up is not None:
            return Decision(
                "move-dns",
                f"frontend {fe} up again for {view.confirm_window_s:g} s by {', '.join(up)}: the "
                "name goes back to it",
                target=fe,
            )
    if direct_to is not None and direct_to != current:
        return Decision(
            "move-dns",
            f"no frontend is up and the active site is now {direct_to}: the name follows it",
            target=direct_to,
        )
    return Decision("none", f"no frontend is up: the name points straight at {current}")
