"""False failovers: how often a healthy active site would be confirmed down by a quorum of
observers whose probes fail by chance (loss, jitter). Each observer is a rise/fall chain
(``chains``) for each of its two detectors: reachability (TCP connects, ``reach_*``, rise 1)
and the service checks (every check of a round must pass; ``fall``, ``rise``). A "down"
counts for the quorum once it has lasted its window; a false failover is the quorum's last
observer counting down while the others still do (observers independent: each probes over its
own path)."""

from __future__ import annotations

import dataclasses
import math

from draas.config import Config
from draas.failover.policy import needed_votes
from draas.failover.views import voters as site_voters
from draas.model.chains import RiseFall
from draas.model.network import Path, connect_fails, http_fails, per_year, rounds_fail


@dataclasses.dataclass(frozen=True)
class Alarm:
    """One detector's false "down" at one observer, and what the quorum makes of it."""

    detector: str  # "reach" or "service"
    p_round: float  # a probe round fails by chance
    downs_per_s: float  # an observer counts a healthy site down (window lasted), per second
    down_share: float  # the share of time an observer counts it down
    quorum_per_s: float  # a quorum counts it down at once: a false failover, per second


def voters(cfg: Config, site: str) -> tuple[int, int]:
    """(observers away from ``site``, how many of them confirm a disaster): the policy's own
    rules."""
    who = site_voters(cfg, site)
    return len(who), needed_votes(who)


def alarm(
    detector: str, chain: RiseFall, interval_s: float, window_s: float, n: int, q: int
) -> Alarm:
    rounds = math.ceil(window_s / interval_s - 1e-9)
    downs = chain.downs_per_round() * chain.lasts(rounds) / interval_s
    share = min(1.0, downs * chain.remaining(rounds) * interval_s) if downs else 0.0
    together = n * math.comb(n - 1, q - 1) * downs * share ** (q - 1) if n >= q else 0.0
    return Alarm(detector, chain.p, downs, share, together)


def alarms(cfg: Config, path: Path, site: str | None = None) -> list[Alarm]:
    """Both detectors' false alarms against ``site`` (default: the home site)."""
    t = cfg.timings
    site = site or cfg.site_with_role("primary")
    n, q = voters(cfg, site)
    reach = RiseFall(connect_fails(path, t.reach_timeout_s), t.reach_fall, 1)
    checks = max(1, len(cfg.service.checks))
    service = RiseFall(rounds_fail(http_fails(path, t.probe_timeout_s), checks), t.fall, t.rise)
    return [
        alarm("reach", reach, t.reach_interval_s, t.reach_window_s, n, q),
        alarm("service", service, t.probe_interval_s, t.confirm_window_s, n, q),
    ]


def false_failovers_per_year(cfg: Config, path: Path) -> float:
    return per_year(sum(a.quorum_per_s for a in alarms(cfg, path)))
