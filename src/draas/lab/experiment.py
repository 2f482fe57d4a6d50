"""``draas lab experiment``: schemes x disasters x repetitions on real labs, measured from the
client's side, each run's seconds broken down from the agents' events on the same clock.

A run: bring the lab to a clean state (the primary active, failback done, replicas in sync,
the client served by the primary), start the RTO meter and the write checker in the client's
namespace, warm up, inject the disaster at a recorded time, wait (bounded) until a client is
served again, hold, revert, wait for failback, stop the meters, then account: RTO and
downtime, lost acknowledged writes, failovers that should not have happened, the breakdown
into detection, decision, switch and client catch-up, and the data checksums.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from draas.agent.status import failovers as failover_runs
from draas.errors import LabError
from draas.lab import cachephase
from draas.lab.agents import eligible, etcd_get, start_agents
from draas.lab.components import bind9, haproxy, mariadb, powerdns
from draas.lab.disasters import (
    Disaster,
    NetworkFailure,
    PowerOff,
    ReplicationCutThenPowerOff,
    ServiceCrash,
    ServiceHang,
    restore_all,
)
from draas.lab.eventlog import detected, first, read_events, routed
from draas.lab.lab import Lab, LabSettings
from draas.lab.meters import WEB, Meters
from draas.lab.services import frontends_for, resolve
from draas.measure.writes import longest_stall

CUT = "replication-cut-then-power-off"
DISASTERS = (
    "power-off",
    "network-failure",
    "service-crash",
    "service-hang",
    "frontend-crash",
    CUT,
)
SITE_DISASTERS = {"power-off", "network-failure", "service-crash", "service-hang", CUT}
# A standby cut off before the disaster may lack acknowledged writes: never failed over to
# automatically (it is not the named synchronous standby, or too far behind in async mode).
NO_FAILOVER = {CUT}
SCHEMES = (
    "dns",
    "frontend",
    "hybrid",
    "autonomous",
    "powerdns",
    "seed-dns",
    "seed-frontend",
    "seed-hybrid",
)
# Baselines. autonomous: HAProxy on fe-a routing by its own health checks (backup server), no
# agents, no lease, no promotion: what a frontend without a controller does. powerdns: the
# service name a PowerDNS LUA ifurlup record (health-checked DNS inside the DNS server), no
# agents either. seed-*: draas
# with the original system's detection settings (DNS: five missed 10 s sync rounds plus 3 s;
# hybrid: a check every 4 s, two tries; frontend: a 0.7 s probe, one try).
LAB_SCHEME = {
    "autonomous": "frontend",
    "powerdns": "dns",
    "seed-dns": "dns",
    "seed-frontend": "frontend",
    "seed-hybrid": "hybrid",
}
BASELINES = ("autonomous", "powerdns")  # no draas at all
SEED_TIMINGS: dict[str, dict[str, float]] = {
    "seed-dns": {
        "probe_interval_s": 10,
        "probe_timeout_s": 3,
        "fall": 5,
        "rise": 2,
        "confirm_window_s": 53,
    },
    "seed-hybrid": {
        "probe_interval_s": 4,
        "probe_timeout_s": 3,
        "fall": 2,
        "rise": 2,
        "confirm_window_s": 8,
    },
    "seed-frontend": {
        "probe_interval_s": 0.7,
        "probe_timeout_s": 0.7,
        "fall": 1,
        "rise": 1,
        "confirm_window_s": 0.7,
    },
}
WARMUP_S = 3.0
HOLD_S = 2.0
RECOVERY_TIMEOUT_S = 45.0
FAILBACK_TIMEOUT_S = 90.0

Progress = Callable[[str], None]


def make_disaster(lab: Lab, name: str, cut_s: float = 10.0) -> Disaster:
    if name == CUT:
        return ReplicationCutThenPowerOff(lab, host="primary", cut_s=cut_s)
    if name == "power-off":
        return PowerOff(lab, host="primary")
    if name == "network-failure":
        return NetworkFailure(lab, host="primary")
    if name == "service-crash":
        return ServiceCrash(lab, process="keystone-primary")
    if name == "service-hang":
        return ServiceHang(lab, process="keystone-primary")
    if name == "frontend-crash":
        return ServiceCrash(lab, process="haproxy-fe-a")
    raise LabError(f"unknown disaster {name!r}; allowed: {', '.join(DISASTERS)}")


def applicable(scheme: str, disaster: str) -> bool:
    return disaster != "frontend-crash" or bool(frontends_for(LAB_SCHEME.get(scheme, scheme)))


# -- reading the lab ---------------------------------------------------------------------------
def served_by(lab: Lab) -> str | None:
    proc = lab.exec("client", ["curl", "-s", "-m", "1", WEB], capture_output=True, text=True)
    return next((s for s in ("primary", "dr") if f"site={s}<" in proc.stdout), None)


def active(lab: Lab) -> dict[str, Any] | None:
    got = etcd_get(lab, "active")
    return json.loads(got[0]) if got else None


def wait(what: str, check: Callable[[], object], timeout: float, every: float = 0.1) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise LabError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
    return time.monotonic() - t0


def clean_state(lab: Lab, baseline: bool = False) -> None:
    """The primary active and serving, no disaster left, the DR replica in sync."""
    if lab.run.load().get("disasters"):
        restore_all(lab)
    if baseline:  # nobody manages the database: a restarted primary comes up read-only
        lab.sup.wait_ready("mariadb-primary")
        mariadb.sql(lab, "primary", "SET GLOBAL read_only = OFF")
    else:
        wait(
            "the primary active",
            lambda: (active(lab) or {}).get("site") == "primary",
            FAILBACK_TIMEOUT_S,
            0.5,
        )
    wait("the client served by the primary", lambda: served_by(lab) == "primary", 30, 0.3)
    if lab.settings.scheme == "hybrid":  # a frontend crash moved the name: wait until it is back
        fe_a = lab.topo.host("fe-a").address
        on_fe_a = lambda: resolve(lab, bind9.SERVICE_NAME) == [fe_a]  # noqa: E731
        wait("the client resolving the name to fe-a", on_fe_a, FAILBACK_TIMEOUT_S, 0.5)
    mariadb.wait_in_sync(lab, "dr", "primary")
    if not baseline:  # semi-sync: the DR site named the synchronous standby again
        wait("the DR site eligible", lambda: eligible(lab, "dr"), FAILBACK_TIMEOUT_S, 0.3)
    time.sleep(3)  # every vantage point has seen everything up for a while


# -- one run -----------------------------------------------------------------------------------
def sites_agree(lab: Lab, looks: int = 3) -> bool:
    """Both sites' tables have the same checksums once the DR site has caught up. The two
    sites are read one after the other, so one pair of readings can straddle a write still
    arriving (a meter's last request, a Keystone login): a divergence is one that survives
    ``looks`` readings, each after a catch-up."""
    primary, dr = mariadb.replicator(lab, "primary"), mariadb.replicator(lab, "dr")
    for _ in range(looks):
        mariadb.wait_in_sync(lab, "dr", "primary")
        if primary.checksums() == dr.checksums():
            return True
        time.sleep(1.0)
    return False


def moment(lab: Lab, not_before: float, run: int, of: int) -> tuple[float, float | None]:
    """(when to strike, the phase in the client's DNS cache cycle): in the ``run``-th
    ``of``-th of the cycle, read from the resolver's TTL (the meter keeps the cycle going);
    a random moment of a cycle when the resolver does not answer (phase None)."""
    cycle = lab.settings.dns_ttl_s + 1.0
    time.sleep(1.0)  # the meter's first questions: the resolver's cycle runs from them on
    seen = cachephase.answer_ttl(lab)
    if seen is None:
        return not_before + random.uniform(0, cycle), None
    refetch = cachephase.next_refetch(*seen)
    return cachephase.strike_at(refetch, cycle, not_before, run, of, random.Random())


def one_run(
    lab: Lab,
    scheme: str,
    disaster: str,
    repeat: int,
    seq: int,
    out: Path,
    progress: Progress,
    cut_s: float = 10.0,
    of: int = 1,
) -> dict[str, Any]:
    """Run ``repeat`` of ``of`` of one scheme and disaster (the runs share the client's DNS
    cache cycle between them: see ``moment``)."""
    run_id = f"{scheme}-{disaster}-{repeat}"
    rundir = out / "runs" / run_id
    rundir.mkdir(parents=True, exist_ok=True)
    baseline = scheme in BASELINES
    clean_state(lab, baseline)
    epoch = int((active(lab) or {}).get("epoch", 0))
    meters = Meters(lab, str(seq), rundir, split_brain=not baseline, duration_s=600)
    meters.start()
    since = time.time()
    # After the warm-up, at a chosen moment of the client's DNS cache cycle: run r of n in the
    # r-th n-th of it (see cachephase). The runs once began at a fixed time after the client
    # resolved the primary again, so its cached answer was always just refreshed at the
    # disaster (a DNS catch-up of a whole TTL in every run).
    strike, phase = moment(lab, since + WARMUP_S, repeat, of)
    offset = strike - since - WARMUP_S
    time.sleep(max(0.0, strike - time.time()))
    seed = SEED_TIMINGS.get(scheme, {})
    bound = (
        RECOVERY_TIMEOUT_S
        + seed.get("confirm_window_s", 0)
        + seed.get("probe_interval_s", 0) * seed.get("fall", 0)
    )
    d = make_disaster(lab, disaster, cut_s)
    t_begin = time.time()
    d.inject()
    t0 = d.struck_at or t_begin  # the power-off of a cut-then-power-off
    progress(f"  {run_id}: {d.describe()} injected")
    recovered = None
    try:
        if disaster in SITE_DISASTERS:
            ok = lambda: served_by(lab) == "dr"  # noqa: E731
        else:
            ok = lambda: served_by(lab) is not None  # noqa: E731
        try:
            recovered = wait("recovery", ok, bound)
        except LabError:
            progress(f"  {run_id}: not recovered within {bound:g} s")
        time.sleep(HOLD_S)
    finally:
        t_revert = time.time()
        d.revert()
    failback_s = None
    evs = read_events(lab, since)
    failed_over = first(evs, run=f"failover-dr-from-e{epoch}", step="take-lease", outcome="done")
    if baseline and disaster in SITE_DISASTERS:  # back when its own checks pass again
        try:
            wait(
                "back on the primary", lambda: served_by(lab) == "primary", FAILBACK_TIMEOUT_S, 0.2
            )
            failback_s = time.time() - t_revert
        except LabError:
            progress(f"  {run_id}: not back on the primary within {FAILBACK_TIMEOUT_S:g} s")
    if failed_over is not None:
        run = f"failback-primary-from-e{epoch + 1}"
        try:
            wait(
                "failback",
                lambda: first(read_events(lab, since), run=run, step="verify", outcome="done"),
                FAILBACK_TIMEOUT_S,
                0.5,
            )
            done = first(read_events(lab, since), run=run, step="verify", outcome="done")
            failback_s = None if done is None else done - t_revert
        except LabError:
            progress(f"  {run_id}: failback not done within {FAILBACK_TIMEOUT_S:g} s")
    time.sleep(1.0)
    meters.stop()
    split = meters.split_brain()
    evs = read_events(lab, since)
    (rundir / "events.json").write_text(json.dumps([e.to_dict() for e in evs], indent=1) + "\n")
    summary = meters.rto(t0)
    site = (active(lab) or {}).get("site", "primary")
    with_writer = meters.write_log()
    if site == "primary":
        mariadb.wait_in_sync(lab, "dr", "primary")
    wr = meters.writes_report(site)
    failovers = len(failover_runs(evs))
    expected = 1 if disaster in SITE_DISASTERS - NO_FAILOVER else 0
    alarm = detected(evs, "primary" if disaster in SITE_DISASTERS else "fe-a", since=t0)
    decided = (
        first(evs, run="failover-", step="take-lease", outcome="started") if failovers else None
    )
    if disaster == "frontend-crash":
        decided = first(evs, run="frontend-dns-", step="move-dns", outcome="started")
    switched = (
        first(evs, run="failover-", step="switch-traffic", outcome="done") if failovers else None
    )
    lab_scheme = LAB_SCHEME.get(scheme, scheme)
    if failovers and lab_scheme != "dns":  # traffic moved when the first frontend followed
        switched = routed(evs, "dr", t0, list(frontends_for(lab_scheme)))
    if disaster == "frontend-crash":
        switched = first(evs, run="frontend-dns-", step="move-dns", outcome="done")
    same = sites_agree(lab) if site == "primary" else None

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    result = {
        "scheme": scheme,
        "disaster": disaster,
        "repeat": repeat,
        "run": run_id,
        "start_offset_s": round(offset, 3),
        "cache_phase_s": None if phase is None else round(phase, 3),
        "disaster_at": round(t0, 3),
        "reverted_at": round(t_revert, 3),
        "rto_s": summary.rto_s,
        "downtime_s": round(summary.downtime_s, 3),
        "availability": summary.availability,
        "recovered_site": summary.recovered_site,
        "latency_p50_ms": summary.latency_p50_ms,
        "latency_p99_ms": summary.latency_p99_ms,
        "probe_recovered_s": None if recovered is None else round(recovered, 3),
        "detection_s": rel(alarm),
        "decision_s": rel(decided),
        "switch_s": rel(switched),
        "client_catch_up_s": None
        if summary.rto_s is None or switched is None
        else round(summary.rto_s - (switched - t0), 3),
        "failovers": failovers,
        "failed_over": failovers > 0,
        "cut_write_stall_s": longest_stall(with_writer, t_begin, t0) if disaster == CUT else None,
        "false_failovers": max(0, failovers - expected),
        "lost_acked_writes": wr.lost,
        "lost_writes_span_s": round(wr.lost_span_s, 3),
        "acked_writes": wr.acked,
        "unknown_writes": wr.unknown,
        **meters.write_figures(t0),
        "acked_writes_after_disaster": sum(
            1 for w in with_writer if w["outcome"] == "acked" and float(w["t_start"]) > t0
        ),
        "unknown_writes_stored": wr.unknown_stored,
        "split_brain_instants": None if split is None else len(split),
        "split_brain": [] if split is None else split[:5],  # the first few, with what was wrong
        "failback_s": None if failback_s is None else round(failback_s, 3),
        "checksums_match": same,
        "windows": summary.to_dict()["windows"],
    }
    (rundir / "run.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


# -- the matrix --------------------------------------------------------------------------------
def run_matrix(
    schemes: list[str],
    disasters: list[str],
    repeat: int,
    out: Path,
    progress: Progress,
    preset: str = "fast",
    replication: str = "semi-sync",
    cut_s: float = 10.0,
) -> dict[str, Any]:
    if not 0 <= cut_s <= 600:
        raise LabError(f"--cut-s {cut_s}: must be from 0 to 600 s")
    for s in schemes:
        if s not in SCHEMES:
            raise LabError(f"--schemes: unknown scheme {s!r}; allowed: {', '.join(SCHEMES)}")
    for d in disasters:
        if d not in DISASTERS:
            raise LabError(f"--disasters: unknown disaster {d!r}; allowed: {', '.join(DISASTERS)}")
    if not 1 <= repeat <= 50:
        raise LabError(f"--repeat {repeat}: must be 1..50")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs: list[dict[str, Any]] = []
    total = sum(repeat for s in schemes for d in disasters if applicable(s, d))
    seq = 0
    predicted: dict[str, Any] = {}  # scheme -> draas model's report for its configuration

    def document(final: bool) -> dict[str, Any]:
        return {
            "started_at": round(started, 3),
            "wall_time_s": round(time.time() - started, 1),
            "complete": final,
            "settings": {
                "preset": preset,
                "replication": replication,
                "dns_ttl_s": 5,
                "meter_interval_s": 0.1,
                "meter_timeout_s": 1.0,
                "consecutive": 3,
                "warmup_s": WARMUP_S,
                "hold_s": HOLD_S,
                "cut_s": cut_s,
            },
            "versions": versions(),
            "runs": runs,
            "table": table(runs),
            "model": predicted,
        }

    for i, scheme in enumerate(schemes):
        lab = Lab(f"x{int(started) % 100000}{i}")
        try:
            progress(f"{scheme}: building the lab")
            model = bring_up(lab, scheme, preset, replication)
            if model is not None:
                predicted[scheme] = model
            for disaster in disasters:
                if not applicable(scheme, disaster):
                    continue
                for r in range(1, repeat + 1):
                    seq += 1
                    progress(f"[{seq}/{total}] {scheme} / {disaster} / run {r}")
                    try:
                        res = one_run(
                            lab, scheme, disaster, r, seq, out, progress, cut_s, of=repeat
                        )
                    except Exception as e:  # one broken run must not end the matrix
                        res = failed_run(scheme, disaster, r, f"{type(e).__name__}: {e}")
                        progress(f"  run failed: {res['error']}; rebuilding the lab")
                        lab.down()
                        bring_up(lab, scheme, preset, replication)
                    runs.append(res)
                    (out / "results.json").write_text(json.dumps(document(False), indent=1) + "\n")
                    progress(
                        f"  RTO {res['rto_s']} s, downtime {res['downtime_s']} s, lost "
                        f"{res['lost_acked_writes']} acked write(s), failback "
                        f"{res['failback_s']} s"
                    )
        finally:
            lab.down()
    doc = document(True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    from draas.lab.report import write_report

    write_report(doc, out)
    return doc


def bring_up(lab: Lab, scheme: str, preset: str, replication: str) -> dict[str, Any] | None:
    """The lab for ``scheme``, with its agents (or its baseline's own health checks) running;
    what ``draas model`` predicts for the agents' configuration (None for a baseline)."""
    lab.up(LabSettings(scheme=LAB_SCHEME.get(scheme, scheme)))
    if scheme == "autonomous":
        haproxy.reload(lab, "fe-a", autonomous=True)
        time.sleep(2)  # the new workers' first health checks
        return None
    if scheme == "powerdns":
        powerdns.replace_bind(lab)
        time.sleep(2)  # its first health checks
        return None
    seed = SEED_TIMINGS.get(scheme)
    config = start_agents(
        lab, preset=preset, replication=replication, timings=seed, deep_check=seed is None
    )
    wait("the active record", lambda: active(lab) is not None, 30, 0.2)
    from draas.config import load_config
    from draas.model.report import Question, report

    return report(load_config(config), Question())


RESULT_FIELDS = (
    "disaster_at",
    "reverted_at",
    "rto_s",
    "downtime_s",
    "availability",
    "recovered_site",
    "latency_p50_ms",
    "latency_p99_ms",
    "probe_recovered_s",
    "detection_s",
    "decision_s",
    "switch_s",
    "client_catch_up_s",
    "failovers",
    "failed_over",
    "cut_write_stall_s",
    "false_failovers",
    "lost_acked_writes",
    "lost_writes_span_s",
    "acked_writes",
    "unknown_writes",
    "acked_writes_after_disaster",
    "unknown_writes_stored",
    "split_brain_instants",
    "failback_s",
    "checksums_match",
)


def failed_run(scheme: str, disaster: str, repeat: int, error: str) -> dict[str, Any]:
    """A run that could not be measured: every figure unknown, and why."""
    return {
        "scheme": scheme,
        "disaster": disaster,
        "repeat": repeat,
        "run": f"{scheme}-{disaster}-{repeat}",
        **dict.fromkeys(RESULT_FIELDS),
        "windows": [],
        "error": error,
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("draas", "keystone", "PyMySQL", "etcd3gw", "dnspython"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scheme and disaster."""
    rows = []
    keys = sorted(
        {(r["scheme"], r["disaster"]) for r in runs},
        key=lambda k: (SCHEMES.index(k[0]), DISASTERS.index(k[1])),
    )
    for scheme, disaster in keys:
        every = [r for r in runs if (r["scheme"], r["disaster"]) == (scheme, disaster)]
        mine = [r for r in every if not r.get("error")]
        rto = [r["rto_s"] for r in mine if r["rto_s"] is not None]
        fb = [r["failback_s"] for r in mine if r["failback_s"] is not None]
        rows.append(
            {
                "scheme": scheme,
                "disaster": disaster,
                "runs": len(mine),
                "failed_runs": len(every) - len(mine),
                "rto_s": _stats(rto),
                "not_recovered": len(mine) - len(rto),
                "downtime_median_s": _stats([r["downtime_s"] for r in mine])["median"],
                "lost_acked_writes": sum(r["lost_acked_writes"] for r in mine),
                "unknown_writes": sum(r["unknown_writes"] for r in mine),
                "false_failovers": sum(r["false_failovers"] for r in mine),
                "split_brain_instants": None
                if any(r.get("split_brain_instants") is None for r in mine)
                else sum(r["split_brain_instants"] for r in mine),
                "failback_median_s": _stats(fb)["median"],
                "failed_over": sum(1 for r in mine if r.get("failed_over")),
                "cut_write_stall_max_s": max(
                    (
                        r["cut_write_stall_s"]
                        for r in mine
                        if r.get("cut_write_stall_s") is not None
                    ),
                    default=None,
                ),
                **{
                    f"{key[:-2]}_median_s": _stats(
                        [r[key] for r in mine if r.get(key) is not None]
                    )["median"]
                    for key in (
                        "detection_s",
                        "decision_s",
                        "switch_s",
                        "client_catch_up_s",
                        "write_rto_s",
                    )
                },
                # Writes the service acknowledged after the disaster, per run (0 for the
                # baselines: they promote no database).
                "writes_after_disaster_median": _stats(
                    [
                        r["acked_writes_after_disaster"]
                        for r in mine
                        if r.get("acked_writes_after_disaster") is not None
                    ]
                )["median"],
            }
        )
    return rows
