"""False failovers: how often a healthy active site would be confirmed down by a quorum of
observers whose probes fail by chance (loss, jitter). Each observer is a rise/fall chain
(``chains``) for each of its two detectors: reachability (TCP connects, ``reach_*``, rise 1)
and the service checks (every check of a round must pass, each with its own timeout; ``fall``,
``rise``). A "down" counts for the quorum once it has lasted its window, and a voter counts
down by either detector (``either``); a false failover is the quorum's last observer counting
down while the others still do (observers independent: each probes over its own path). Each
detector's own coincidences are reported beside."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from draas.config import Config
from draas.failover.policy import needed_votes
from draas.failover.views import voters as site_voters
from draas.model.chains import RiseFall
from draas.model.network import Path, any_fails, connect_fails, http_fails, per_year


@dataclasses.dataclass(frozen=True)
class Alarm:
    """One detector's false "down" at the observers, and what the quorum makes of it."""

    detector: str  # "reach" or "service"
    p_round: float  # a probe round fails by chance (the worst observer's path)
    downs_per_s: float  # an observer counts a healthy site down (window lasted), per second
    down_share: float  # the share of time an observer counts it down (both: the mean)
    quorum_per_s: float  # a quorum counts it down at once: a false failover, per second
    # Per observer, in the voters' order: (name, downs that lasted the window per second,
    # share of time counted down).
    each: tuple[tuple[str, float, float], ...] = ()


Paths = Path | Mapping[str, Path]


def voters(cfg: Config, site: str) -> tuple[int, int]:
    """(observers away from ``site``, how many of them confirm a disaster): the policy's own
    rules."""
    who = site_voters(cfg, site)
    return len(who), needed_votes(who)


def at_least(shares: Sequence[float], k: int) -> float:
    """P(at least ``k`` of independent events with these probabilities hold)."""
    exactly = np.zeros(len(shares) + 1)
    exactly[0] = 1.0
    for s in shares:
        exactly[1:] = exactly[1:] * (1 - s) + exactly[:-1] * s
        exactly[0] *= 1 - s
    return float(exactly[k:].sum())


def alarm(
    detector: str,
    chains: Sequence[RiseFall],
    interval_s: float,
    window_s: float,
    q: int,
    names: Sequence[str] = (),
) -> Alarm:
    """``chains``: one per observer (its path's chance of a failed round), named ``names``."""
    rounds = math.ceil(window_s / interval_s - 1e-9)
    downs = [c.downs_per_round() * c.lasts(rounds) / interval_s for c in chains]
    shares = [
        min(1.0, d * c.remaining(rounds) * interval_s) if d else 0.0
        for d, c in zip(downs, chains, strict=True)
    ]
    # The quorum's last observer counts down while at least q - 1 others still do.
    together = 0.0
    if len(chains) >= q:
        for i, d in enumerate(downs):
            if d:
                together += d * at_least(shares[:i] + shares[i + 1 :], q - 1)
    return Alarm(
        detector,
        max((c.p for c in chains), default=0.0),
        float(np.mean(downs)) if downs else 0.0,
        float(np.mean(shares)) if shares else 0.0,
        together,
        tuple(zip(names, downs, shares, strict=False)),
    )


def alarms(cfg: Config, paths: Paths, site: str | None = None) -> list[Alarm]:
    """Both detectors' false alarms against ``site`` (default: the home site); ``paths``:
    one for every observer, or each observer's own by node name (missing: no loss)."""
    t = cfg.timings
    site = site or cfg.site_with_role("primary")
    who = site_voters(cfg, site)
    q = needed_votes(who)
    own = [paths if isinstance(paths, Path) else paths.get(n, Path()) for n in who]
    timeouts = [c.timeout_s or t.probe_timeout_s for c in cfg.service.checks]
    reach = [RiseFall(connect_fails(p, t.reach_timeout_s), t.reach_fall, 1) for p in own]
    service = [
        RiseFall(any_fails([http_fails(p, timeout) for timeout in timeouts]), t.fall, t.rise)
        for p in own
    ]
    return [
        alarm("reach", reach, t.reach_interval_s, t.reach_window_s, q, who),
        alarm("service", service, t.probe_interval_s, t.confirm_window_s, q, who),
    ]


def either(found: Sequence[Alarm], q: int, look_s: float = 0.0) -> float:
    """False failovers per second when a voter counts the site down as soon as either of its
    detectors does (``policy.votes``: down for the confirmation window, or unreachable for
    the reach window), detectors independent: a voter's "down" begins when one detector's
    begins while the other's is off, and the quorum's last voter begins one while at least
    ``q - 1`` others are down by either.

    The controller reads the voters' published observations every ``look_s`` (its duty runs
    each probe interval): a "down" that lasts ``d`` shorter than that is seen with the chance
    ``d / look_s`` (the reach detector's, a round or two of 0.1 s at the fast preset, mostly
    are not; the service detector's, at least ``rise`` rounds, are). A voter that is the
    controller sees its own at once, so with ``look_s`` this is the rate when the controller
    is none of the quorum's voters, and without it (0) an upper bound."""
    names = [n for n, _, _ in found[0].each] if found else []

    def seen(downs: float, share: float) -> float:
        lasting = share / downs if downs else 0.0  # the mean time a counted down lasts
        return 1.0 if look_s <= 0 or lasting >= look_s else lasting / look_s

    share: dict[str, float] = {}
    onset: dict[str, float] = {}
    for i, n in enumerate(names):
        parts = [(a.each[i][1], a.each[i][2], seen(a.each[i][1], a.each[i][2])) for a in found]
        share[n] = 1 - math.prod(1 - s * v for _, s, v in parts)
        onset[n] = sum(
            d * v * math.prod(1 - s2 * v2 for j, (_, s2, v2) in enumerate(parts) if j != k)
            for k, (d, _, v) in enumerate(parts)
        )
    return sum(
        onset[n] * at_least([share[m] for m in names if m != n], q - 1) for n in names if onset[n]
    )


def false_failovers_per_s(cfg: Config, paths: Paths) -> float:
    """The quorum judged on either detector, seen by a controller that looks every probe
    interval (``either``)."""
    _, q = voters(cfg, cfg.site_with_role("primary"))
    return either(alarms(cfg, paths), q, cfg.timings.probe_interval_s)


def false_failovers_per_year(cfg: Config, paths: Paths) -> float:
    return per_year(false_failovers_per_s(cfg, paths))
