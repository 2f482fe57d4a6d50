"""The DR drill: proves, without moving any traffic, that a failover would work now. Each
check says pass, fail or skipped (not configured), and why; the report is JSON and Markdown.

It drills the site a failover would go to now: the standby (the DR site while the home site is
active; the home site after a switchover to the DR site). The checks keep their names.
Checks: the quorum is complete; the standby's replica is in sync and its lag within the RPO;
its service answers its checks; it issues a token from its own database; the DNS provider
accepts the configured credentials; each frontend reaches it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from draas.config import Config
from draas.coordination import CoordinationStore, Observation
from draas.errors import DraasError
from draas.failover.views import standby_doc
from draas.health.probes import Probe, ProbeResult
from draas.replication import ReplicationStatus, Replicator
from draas.traffic import TrafficSwitch


@dataclass(frozen=True)
class DrillCheck:
    name: str
    ok: bool | None  # None: skipped (not configured here)
    detail: str

    @property
    def verdict(self) -> str:
        return "skipped" if self.ok is None else "pass" if self.ok else "FAIL"


# -- the pure parts: a check from what was read --------------------------------------------------
def quorum_check(cfg: Config, observations: Mapping[str, Observation] | None) -> DrillCheck:
    if observations is None:
        return DrillCheck("quorum", False, "the coordination store is unreachable")
    nodes = [n.name for n in cfg.nodes]
    missing = [n for n in nodes if n not in observations]
    if missing:
        alive = f"{len(nodes) - len(missing)} of {len(nodes)} agents alive"
        return DrillCheck(
            "quorum", False, f"no fresh observations from {', '.join(missing)} ({alive})"
        )
    return DrillCheck("quorum", True, f"all {len(nodes)} agents publish: {', '.join(nodes)}")


def replica_check(dr: str, st: ReplicationStatus | None, error: str, rpo_s: float) -> DrillCheck:
    name = "dr-replica-in-sync"
    if st is None:
        return DrillCheck(name, False, f"cannot read {dr}'s database: {error}")
    if st.role != "replica":
        return DrillCheck(name, False, f"{dr}'s database is {st.role}, not a replica")
    if st.io_running != "Yes" or st.sql_running != "Yes" or st.last_error:
        return DrillCheck(
            name,
            False,
            f"replication on {dr} is broken: IO {st.io_running}, "
            f"SQL {st.sql_running}: {st.last_error or 'no error'}",
        )
    if st.lag_s is None or st.lag_s > rpo_s:
        return DrillCheck(
            name, False, f"{dr} lags {st.lag_s} s behind its source; the RPO allows {rpo_s:g} s"
        )
    return DrillCheck(
        name,
        True,
        f"{dr} replicating from {st.source}, lag {st.lag_s} s "
        f"(RPO {rpo_s:g} s), {st.lag_trx or 0} transaction(s) behind",
    )


def frontends_check(
    cfg: Config, observations: Mapping[str, Observation] | None, dr: str
) -> DrillCheck:
    name = "frontends-reach-dr"
    fes = [n.name for n in cfg.nodes_with_role("frontend")]
    if not fes:
        return DrillCheck(name, None, f"scheme {cfg.scheme} has no frontends")
    bad = []
    for fe in fes:
        obs = (observations or {}).get(fe)
        seen = None if obs is None else obs.state_of(dr)
        state = None if seen is None else seen.state
        if state != "up":
            bad.append(f"{fe} ({'agent not running' if obs is None else f'sees {dr} {state}'})")
    if bad:
        return DrillCheck(name, False, f"cannot reach {dr}: {', '.join(bad)}")
    return DrillCheck(name, True, f"{', '.join(fes)} see {dr} up")


def eligible_check(standby: Mapping[str, Any] | None) -> DrillCheck:
    """The DR site may be promoted automatically (named synchronous standby, or within the
    async lag bound): else a failover now would wait, or lose acknowledged writes if forced."""
    if standby is None:
        return DrillCheck("dr-eligible", False, "the coordination store is unreachable")
    if standby["eligible"]:
        return DrillCheck("dr-eligible", True, f"{standby['site']} may be promoted automatically")
    return DrillCheck("dr-eligible", False, str(standby["why_not"]))


def verdict(checks: list[DrillCheck]) -> bool:
    return all(c.ok is not False for c in checks)


# -- the effects ----------------------------------------------------------------------------------
def run_drill(
    cfg: Config,
    store: CoordinationStore | None,
    reps: Mapping[str, Replicator],
    dns: TrafficSwitch | None,
    dr_probes: Sequence[Probe],
    drill_password: str | None,
    dr: str,
) -> dict[str, Any]:
    """Every check, then the report (a dict: ``passed``, ``checks``, ...). ``dr``: the site
    drilled (the standby); ``dr_probes``: the service's checks aimed at it;
    ``drill_password``: the ``[drill]`` account's."""
    t0 = time.time()
    observations, standby = None, None
    if store is not None:
        try:
            observations = store.observations()
            standby = standby_doc(
                cfg, dr, observations, store.last_epoch(), store.sync(), store.position()
            )
        except DraasError:
            observations = None
    checks = [quorum_check(cfg, observations), eligible_check(standby)]
    st, err = None, ""
    if dr in reps:
        try:
            st = reps[dr].status()
        except DraasError as exc:
            err = str(exc)
    else:
        err = f"no database configured for {dr}"
    checks.append(replica_check(dr, st, err, cfg.replication.rpo_s))

    async def probe_all(probes: Sequence[Probe]) -> list[ProbeResult]:
        return await asyncio.gather(*(p.check() for p in probes))

    answers = asyncio.run(probe_all(dr_probes))
    bad = [r.detail for r in answers if not r.ok]
    checks.append(
        DrillCheck(
            "dr-service-answers",
            not bad,
            "; ".join(bad) if bad else "; ".join(r.detail for r in answers),
        )
    )
    if cfg.drill is None or drill_password is None:
        checks.append(DrillCheck("dr-issues-token", None, "no [drill] account configured"))
    else:
        checks.append(token_check(cfg, dr, drill_password))
    if dns is None:
        checks.append(DrillCheck("dns-credentials", None, "no [dns] section configured"))
    else:
        res_dns = dns.check()
        checks.append(DrillCheck("dns-credentials", res_dns.ok, res_dns.detail))
    checks.append(frontends_check(cfg, observations, dr))
    rows = [{**asdict(c), "verdict": c.verdict} for c in checks]
    return {
        "passed": verdict(checks),
        "started_at": round(t0, 3),
        "took_s": round(time.time() - t0, 3),
        "service": cfg.service.dns_name,
        "dr_site": dr,
        "checks": rows,
    }


def token_check(cfg: Config, dr: str, password: str) -> DrillCheck:
    """A token from the DR site's own database. Keystone records each user's first login of
    the day (a write), which a read-only replica refuses: the drill logs in at the active
    site first, then, once that has replicated, at the DR site."""
    from draas.health.probes import KeystoneProbe

    d = cfg.drill
    assert d is not None
    primary = next(n for n in cfg.sites if n != dr)

    def probe(site: str) -> KeystoneProbe:
        return KeystoneProbe(
            f"http://{cfg.sites[site].address}:{d.port}",
            d.username,
            password,
            d.project,
            d.domain,
            timeout_s=5.0,
        )

    first = asyncio.run(probe(primary).check())
    res, kp = first, probe(dr)
    for _ in range(10):  # the day's login record replicates within a second
        kp = probe(dr)
        res = asyncio.run(kp.check())
        if res.ok:
            break
        time.sleep(0.5)
    why = "" if first.ok else f" (the login at {primary} failed too: {first.detail})"
    return DrillCheck(
        "dr-issues-token",
        res.ok and kp.logins == 1,
        f"{res.detail} as {d.username}/{d.project}{why}",
    )


def markdown(report: Mapping[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(report["started_at"]))
    result = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"# DR drill for {report['service']}: {result}",
        "",
        f"At {when}, towards the DR site `{report['dr_site']}`, in {report['took_s']} s. "
        "No traffic was moved.",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for c in report["checks"]:
        detail = str(c["detail"]).replace("|", "\\|")
        lines.append(f"| {c['name']} | {c['verdict']} | {detail} |")
    return "\n".join(lines) + "\n"
