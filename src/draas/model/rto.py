"""The client-visible RTO of each disaster kind, broken down as the lab's experiment breaks it
down: detect (the first observer sees it), decide (a quorum has seen it for the window and the
controller acts), switch (traffic moved: the DNS update answered, or the first frontend
routing to the standby), client catch-up (until the client is served).

From the product's rules: each observer's detector fails a round per probe (its phase against
the disaster uniform over an interval), counts the target down at its ``fall``-th failure and
for the quorum once the window has passed; the quorum is the ``q``-th observer of ``n``. What
the rules do not fix is this implementation's own work (publishing, the runbook's steps, an
answer): ``Costs``, measured in the lab. A client re-resolves the name when its cached answer
expires (``honour``: the record's TTL; ``clamp:S``: its own S seconds, whatever the TTL); the
cached answer's age at the switch is uniform over its lifetime.

Sampled (numpy, a fixed seed: the same configuration gives the same figures).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from draas.config import Config
from draas.failover.frontends import voters_for
from draas.failover.policy import needed_votes
from draas.model.falsealarms import voters
from draas.model.kinds import DISASTERS

SAMPLES = 20_000
SEED = 20  # issue 20


@dataclasses.dataclass(frozen=True)
class Costs:
    """What this implementation adds to the rules' times (s), medians measured in the lab at
    the fast preset (``results/experiment-subsecond-5rep``: decide - detect - quorum, switch -
    decide, the frontend scheme's catch-up)."""

    publish_s: float = 0.15  # an observer's "down" published, read by the controller
    dns_switch_s: float = 0.15  # the failover's steps until the DNS server accepted the update
    frontend_switch_s: float = 0.12  # until the first frontend routes to the standby
    answer_s: float = 0.05  # a client's request answered once it reaches a live site


@dataclasses.dataclass(frozen=True)
class Client:
    """How clients come back: a request every ``interval_s``; a cached DNS answer kept for
    the record's TTL (``clamp_s`` None) or for ``clamp_s`` whatever the TTL.

    A caching resolver (Unbound, BIND) counts a TTL in whole seconds of its clock and still
    answers from its cache in the second the TTL reaches 0: an answer it fetched at ``t``
    lives until the end of second ``floor(t) + TTL``. A client asking every ``interval_s``
    makes it fetch again just after such a second began, so each answer lives about
    ``TTL + resolver_second_s`` (the lab measured cycles of 5.9 to 6.0 s for a TTL of 5 s).
    A client's own clamp is kept as it says."""

    interval_s: float = 0.1
    clamp_s: float | None = None
    resolver_second_s: float = 1.0


@dataclasses.dataclass(frozen=True)
class Phases:
    """Seconds from the disaster, one entry per sample (None: the scheme does not recover
    from this disaster by itself)."""

    detect: np.ndarray
    decide: np.ndarray
    switch: np.ndarray
    served: np.ndarray

    def summary(self) -> dict[str, float]:
        def med(a: np.ndarray) -> float:
            return round(float(np.median(a)), 3)

        return {
            "rto_median_s": med(self.served),
            "rto_p95_s": round(float(np.percentile(self.served, 95)), 3),
            "rto_mean_s": round(float(self.served.mean()), 3),
            "detect_s": med(self.detect),
            "decide_s": med(self.decide),
            "switch_s": med(self.switch),
            "client_catch_up_s": med(self.served - self.switch),
        }


def _observers(
    rng: np.random.Generator, n: int, interval: float, fall: int, fails_after: float, window: float
) -> np.ndarray:
    """(samples, n): when each observer counts the target down, from the disaster."""
    phase = rng.uniform(0, interval, size=(SAMPLES, n))
    return phase + (fall - 1) * interval + fails_after + window


def _catch_up(
    rng: np.random.Generator, cfg: Config, client: Client, through_dns: bool, costs: Costs
) -> np.ndarray:
    """From the switch until a client is served."""
    next_request = rng.uniform(0, client.interval_s, SAMPLES) + costs.answer_s
    if not through_dns:
        return next_request
    if client.clamp_s is not None:
        keep = np.full(SAMPLES, client.clamp_s)
    else:
        ttl = float(cfg.dns.ttl_s) if cfg.dns is not None else 0.0
        # Fetched again at most one request after the resolver's second began.
        keep = ttl + client.resolver_second_s - rng.uniform(0, client.interval_s, SAMPLES)
    out: np.ndarray = rng.uniform(0, 1, SAMPLES) * keep + next_request
    return out


def phases(
    cfg: Config, disaster: str, client: Client | None = None, costs: Costs | None = None
) -> Phases | None:
    """The disaster's phases under ``cfg``, or None when the scheme does not recover from it
    by itself (a frontend crash with one frontend; the DNS scheme has none)."""
    if disaster not in DISASTERS:
        raise ValueError(f"disaster {disaster!r}: allowed {', '.join(DISASTERS)}")
    client, costs = client or Client(), costs or Costs()
    rng = np.random.default_rng(SEED)
    t = cfg.timings
    frontends = cfg.nodes_with_role("frontend")
    if disaster == "frontend-crash":
        if cfg.scheme != "hybrid" or len(frontends) < 2:
            return None
        who = voters_for(frontends[0].name, [node.name for node in cfg.nodes])
        n, q = len(who), needed_votes(who)
        seen = _observers(rng, n, t.probe_interval_s, t.fall, 0.0, 0.0)  # refused at once
        window = 0.0
    else:
        n, q = voters(cfg, cfg.site_with_role("primary"))
        if disaster in ("power-off", "network-failure"):  # no answer: the connect times out
            interval, fall, fails_after = t.reach_interval_s, t.reach_fall, t.reach_timeout_s
            window = t.reach_window_s
        elif disaster == "service-crash":  # refused at once, seen by the service's checks
            interval, fall, fails_after = t.probe_interval_s, t.fall, 0.0
            window = t.confirm_window_s
        else:  # service-hang: each check waits its timeout
            interval, fall, fails_after = t.probe_interval_s, t.fall, t.probe_timeout_s
            window = t.confirm_window_s
        seen = _observers(rng, n, interval, fall, fails_after, window)
    ordered = np.sort(seen, axis=1)
    detect = ordered[:, 0] - window
    decide = ordered[:, q - 1] + costs.publish_s
    through_dns = cfg.scheme == "dns" or disaster == "frontend-crash"
    switch = decide + (costs.dns_switch_s if through_dns else costs.frontend_switch_s)
    served = switch + _catch_up(rng, cfg, client, through_dns, costs)
    return Phases(detect, decide, switch, served)
