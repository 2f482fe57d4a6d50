"""Hybrid scheme: which frontend the service's DNS name points at.

The DNS name stays on the preferred frontend while it is healthy. It moves to another
frontend only when a quorum of the other vantage points (never the frontend itself) has seen
the current one down for the confirmation window, and the new one up for as long; it goes
back to the preferred frontend once the same quorum has seen it up again for the window.
Pure: a view in, a decision out.
"""

from __future__ import annotations

from collections.abc import Sequence

from draas.coordination import State
from draas.failover.policy import Decision, View, needed_votes, votes


def voters_for(frontend: str, nodes: Sequence[str]) -> list[str]:
    """Every node but the frontend itself votes on it."""
    return [n for n in nodes if n != frontend]


def pick_frontend(
    view: View, nodes: Sequence[str], frontends: Sequence[str], preferred: str, current: str | None
) -> Decision:
    """``move-dns`` to a frontend (``target``), or ``none`` with the reason."""

    def confirmed(fe: str, state: State) -> list[str] | None:
        voters = voters_for(fe, nodes)
        got = votes(view, fe, state, voters)
        return got if len(got) >= needed_votes(voters) else None

    order = [preferred, *(f for f in frontends if f != preferred)]
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
