"""The operator's commands on the command line: ``status``, ``events``, ``switchover``,
``failover``, ``failback``, ``drill``. They talk to the agents' control API (``--direct``: the
traffic-moving ones run their runbook from this machine instead, through ``commands``). The
config comes from ``--config`` or ``$DRAAS_CONFIG`` (the lab sets it inside its hosts)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from draas import exitcodes
from draas.agent.status import eligible_line
from draas.apiclient import ApiClient
from draas.config import Config, config_path, load_config
from draas.errors import ApiError, DraasError, InvalidInput
from draas.failover.runs import KINDS, Kind, last_step
from draas.output import add_output, dump, dump_line, wanted

WAIT_S = 300.0


def config_of(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(config_of(args), agent=args.agent, timeout_s=args.timeout)


def _ago(t: float | None, now: float) -> str:
    return "-" if t is None else f"{now - t:.0f} s ago"


def render_status(st: dict[str, Any]) -> str:
    """The status document as the operator's table."""
    now = float(st["time"])
    act = st["active"]
    lines = [
        f"{st['service']} ({st['scheme']} scheme), as seen by {st['node']}",
        f"  {st['summary']}",
        *(f"  ALERT {name}: {cause}" for name, cause in sorted((st.get("alerts") or {}).items())),
        "",
    ]
    lines.append(
        f"{'SITE':<10} {'STATE':<8} {'HOME':<5} {'ACTIVE':<7} {'DATABASE':<10} {'LAG':<8} "
        f"{'REPLICATION':<12} SEEN UP BY"
    )
    for s in st["sites"]:
        db = s["database"] or {}
        lag = "-" if db.get("lag_s") is None else f"{db['lag_s']} s"
        rep = "-" if db.get("role") != "replica" else ("ok" if db.get("healthy") else "BROKEN")
        ups = [o for o, v in s["seen"].items() if v == "up"]
        state = s.get("state", s["role"])
        lines.append(
            f"{s['name']:<10} {state:<8} {'yes' if s.get('home') else '':<5} "
            f"{'yes' if s['active'] else '':<7} "
            f"{db.get('role', '?'):<10} {lag:<8} {rep:<12} "
            f"{len(ups)}/{len(s['seen'])} {','.join(ups)}"
        )
    if st["frontends"]:
        lines += ["", f"{'FRONTEND':<10} {'ROUTES TO':<10} {'AGENT':<7} SEEN UP BY"]
        for f in st["frontends"]:
            ups = [o for o, v in f["seen"].items() if v == "up"]
            lines.append(
                f"{f['name']:<10} {f['routes_to'] or '?':<10} "
                f"{'alive' if f['agent_alive'] else 'DOWN':<7} "
                f"{len(ups)}/{len(f['seen'])} {','.join(ups)}"
            )
    if st["dns"]:
        d = st["dns"]
        lines += ["", f"DNS {d['name']} -> {d['points_at'] or '?'} ({d['target'] or 'unknown'})"]
    lines += ["", f"{'AGENT':<10} {'ROLE':<9} {'ALIVE':<6} SEES"]
    for v in st["vantage_points"]:
        sees = ", ".join(f"{t} {s}" for t, s in sorted(v["sees"].items()))
        lines.append(f"{v['name']:<10} {v['role']:<9} {'yes' if v['alive'] else 'NO':<6} {sees}")
    lines.append("")
    lines.append(
        "active: "
        + (
            "none"
            if act is None
            else f"{act['site']} epoch {act['epoch']} (holder {act['holder']})"
        )
        + f"; failovers {st['failovers_total']}, last "
        f"{_ago(st['last_failover_at'], now)}"
        + ("" if "controller" not in st else f"; controller {st['controller'] or 'NONE'}")
    )
    if st.get("last_step"):
        e = st["last_step"]
        lines.append(
            f"last step: {e.get('run')} {e.get('step')} {e.get('outcome')} "
            f"({_ago(e.get('ts'), now)}, {e.get('node')})"
        )
    for site in st["sites"]:
        keys = site.get("keys")
        if keys:
            lines.append(keys_line(site["name"], keys, now))
    standby = st.get("standby")
    if standby:
        lines.append(("" if standby["eligible"] else "ALERT: ") + eligible_line(standby))
    auto = st.get("automatic")
    if auto:
        alert = "ALERT: " if auto["action"] in ("wait", "manual-only") else ""
        lines.append(f"{alert}automatic failover: {auto['action']}: {auto['reason']}")
    if not st["store_ok"]:
        lines.append("WARNING: the coordination store is unreachable from this agent")
    return "\n".join(lines)


def keys_line(site: str, keys: dict[str, Any], now: float) -> str:
    if keys.get("alert"):
        return f"ALERT: {site}: {keys['alert']}"
    return (
        f"keys: {site}'s key directories equal {keys['source']}'s "
        f"(in sync since {_ago(keys.get('in_sync_since'), now)}, "
        f"compared {_ago(keys.get('compared_at'), now)})"
    )


def attention(st: dict[str, Any]) -> list[str]:
    """Why the status needs an operator (each is shown as an ALERT or WARNING line): raised
    alerts, a standby not eligible, keys out of sync, an automatic action blocked or
    manual-only, the store unreachable. Empty: healthy."""
    why = [f"alert {name}" for name in sorted(st.get("alerts") or {})]
    standby = st.get("standby")
    if standby and not standby["eligible"]:
        why.append(f"{standby['site']} is not an eligible standby")
    why += [f"{s['name']}'s keys" for s in st["sites"] if (s.get("keys") or {}).get("alert")]
    auto = st.get("automatic")
    if auto and auto["action"] in ("wait", "manual-only"):
        why.append(f"automatic failover {auto['action']}")
    if not st["store_ok"]:
        why.append("coordination store unreachable")
    if st.get("paused"):
        why.append("automatic action paused")
    return why


def cmd_status(args: argparse.Namespace) -> int:
    """The status; exit 6 (needs attention) when it shows an ALERT. --watch: again every S
    seconds (the screen cleared on a terminal) until Ctrl-C or --count screens."""
    api = client(args)
    shown = 0
    while True:
        st = api.get("/v1/status")
        if args.watch is not None and sys.stdout.isatty():
            print("\033[H\033[2J", end="")
        fmt = wanted(args)
        print(render_status(st) if fmt == "table" else dump(st, fmt), flush=True)
        shown += 1
        rc = exitcodes.ATTENTION if attention(st) else exitcodes.OK
        if args.watch is None or (args.count is not None and shown >= args.count):
            return rc
        if not sys.stdout.isatty():
            print(flush=True)
        time.sleep(args.watch)


def event_line(e: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(float(e.get("ts", 0))))
    extra = "".join(
        f" {k}={e[k]}" for k in ("error", "detail", "duration_s", "by") if e.get(k) is not None
    )
    return (
        f"{when} {e.get('node', '-'):<16} {e.get('run', '-')} {e.get('step', '-')} "
        f"{e.get('outcome', '-')}{extra}"
    )


def cmd_events(args: argparse.Namespace) -> int:
    """The newest --limit events; with --follow, then every new one as it comes."""
    if not 1 <= args.limit <= 1000:
        raise InvalidInput(f"--limit {args.limit}: must be from 1 to 1000")
    api = client(args)
    deadline = time.monotonic() + args.for_s if args.for_s else None
    match = {k: getattr(args, k) for k in ("run", "node", "step", "outcome", "runbook")}
    page = api.get("/v1/events", **match, last=args.limit)
    after: str | None = None
    while True:
        fmt = wanted(args)
        for e in page["events"]:
            print(event_line(e) if fmt == "table" else dump_line(e, fmt), flush=True)
            after = e["id"]
        if page.get("next"):  # more already stored: read on without waiting
            page = api.get("/v1/events", **match, limit=1000, after=after)
            continue
        if not args.follow or (deadline is not None and time.monotonic() > deadline):
            return 0
        time.sleep(0.5)
        page = api.get("/v1/events", **match, limit=1000, after=after)


def confirm(args: argparse.Namespace, what: str, kind: Kind | None = None) -> bool:
    """Commands that move traffic ask first, unless --yes; without a terminal they refuse.
    Before the question: the deployment as an agent sees it, the standby's lag and what the
    move is expected to lose."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"error: {what}: confirm with --yes (no terminal to ask on)", file=sys.stderr)
        return False
    if kind is not None:
        for line in situation(args, kind):
            print(line, file=sys.stderr)
    return input(f"{what}? [y/N] ").strip().lower() in ("y", "yes")


def situation(args: argparse.Namespace, kind: Kind) -> list[str]:
    """The lines shown before a move's question (from an agent's status)."""
    try:
        st = client(args).get("/v1/status")
    except DraasError as exc:
        return [f"current state unknown: {exc}", "expected loss: unknown"]
    lines = [f"now: {st['summary']}"]
    standby = st.get("standby")
    if standby:
        lines.append(f"standby: {eligible_line(standby)}")
    if kind != "failover":
        lines.append("expected loss: none (planned: writes pause until the target caught up)")
    elif standby and standby["eligible"]:
        lines.append(f"expected loss: none ({standby['site']} has every acknowledged write)")
    elif standby:
        from draas import commands

        loss = commands.known_loss(
            standby["site"], standby["why_not"], standby["behind_trx"], standby["since"]
        )
        lines.append(f"expected loss: {loss}")
    return lines


def follow_run(api: ApiClient, run: str, kind: Kind, timeout_s: float = WAIT_S) -> int:
    """Print the run's steps as they happen until it ends; 0 when it completed."""
    after: str | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for e in api.get("/v1/events", run=run, limit=1000, after=after)["events"]:
            after = e["id"]
            if e.get("run") != run:
                continue
            print(event_line(e), flush=True)
            if e.get("outcome") == "failed":
                print(
                    f"error: {run} failed at step {e.get('step')}: {e.get('error')}",
                    file=sys.stderr,
                )
                return 1
            if e.get("step") == last_step(kind) and e.get("outcome") == "done":
                print(f"{kind} done: {run}")
                return 0
        time.sleep(0.5)
    print(
        f"error: {run} did not finish within {timeout_s:g} s; see 'draas events --run {run}'",
        file=sys.stderr,
    )
    return exitcodes.UNKNOWN


def move_direct(args: argparse.Namespace, cfg: Config, kind: Kind) -> int:
    """``--direct``: run the runbook from this machine, without an agent."""
    from draas import commands
    from draas.coordination import make_store
    from draas.deployment import Deployment

    if kind == "failover":
        store = commands.store_or_none(cfg)
        deployment = None if store is None else Deployment(cfg, store)
        plan = commands.plan_failover(deployment, cfg, force=args.force)
    else:
        deployment = Deployment(cfg, make_store(cfg.coordination, timeout_s=2.0))
        to = args.to if kind == "switchover" else cfg.site_with_role("primary")
        plan = commands.plan_switchover(deployment, to, failback=kind == "failback")
    print(plan.execute())
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    from draas.commands import describe

    cfg = config_of(args)
    kind = next(k for k in KINDS if k == args.command)
    if kind == "switchover" and args.to not in cfg.sites:
        raise InvalidInput(f"--to {args.to!r}: not a site; sites: {sorted(cfg.sites)}")
    what = describe(
        cfg,
        kind,
        args.to if kind == "switchover" else None,
        force=kind == "failover" and args.force,
    )
    if kind == "failover" and args.force:
        loss = forced_loss(args, cfg)
        if loss:
            print(loss, file=sys.stderr)  # stated before the question, and recorded by the run
            what += " and accept that loss"
    if not confirm(args, what, kind):
        return exitcodes.REFUSED
    if args.direct:
        return move_direct(args, cfg, kind)
    body: dict[str, Any] = {}
    if kind == "switchover":
        body = {"to": args.to}
    elif kind == "failover" and args.force:
        body = {"force": True}
    api = ApiClient(cfg, agent=args.agent)
    try:
        started = api.post(f"/v1/{kind}", body)
    except ApiError as exc:
        if exc.status == 409:
            print(f"error: {exc}", file=sys.stderr)
            return exitcodes.REFUSED
        raise
    print(f"{kind} accepted by {api.used}: run {started['run']} (event {started['event']})")
    if args.no_wait or started["run"].endswith("-without-store"):
        return 0
    return follow_run(api, started["run"], kind)


def forced_loss(args: argparse.Namespace, cfg: Config) -> str:
    """What a forced failover would give up ('' when the DR site is eligible), read from the
    store (--direct) or from an agent's status."""
    from draas import commands

    if args.direct:
        store = commands.store_or_none(cfg)
        if store is None:
            return "the coordination store is unreachable: the loss cannot be stated"
        doc = commands.standby_of(cfg, store)
    else:
        try:
            doc = client(args).get("/v1/status").get("standby")
        except DraasError as exc:
            return f"the loss cannot be stated (no agent answered: {exc})"
    if not doc or doc["eligible"]:
        return ""
    return commands.known_loss(doc["site"], doc["why_not"], doc["behind_trx"], doc["since"])


UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """'90', '90s', '30m', '2h', '1d' -> seconds (argparse type: a bad one is a usage error)."""
    t = text.strip().lower()
    unit = UNITS.get(t[-1:])
    try:
        value = float(t[:-1] if unit is not None else t) * (unit or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 600, 30m, 2h, 1d)"
        ) from None
    if not 10 <= value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"{text}: allowed from 10 s to 7 days")
    return value


def cmd_pause(args: argparse.Namespace) -> int:
    api = client(args)
    body: dict[str, Any] = {"reason": args.reason}
    if args.for_s is not None:
        body["for_s"] = args.for_s
    got = api.post("/v1/pause", body)
    if wanted(args) != "table":
        print(dump(got, wanted(args)))
        return exitcodes.OK
    until = "until 'draas resume'" if args.for_s is None else f"for {args.for_s:g} s"
    print(f"automatic action paused {until} (event {got['event']}, by {api.used}): {args.reason}")
    return exitcodes.OK


def cmd_resume(args: argparse.Namespace) -> int:
    api = client(args)
    got = api.post("/v1/resume", {})
    if wanted(args) != "table":
        print(dump(got, wanted(args)))
        return exitcodes.OK
    said = "resumed" if got["was_paused"] else "was not paused; nothing changed"
    print(f"automatic action {said} (event {got['event']}, by {api.used})")
    return exitcodes.OK


def cmd_drill(args: argparse.Namespace) -> int:
    from draas.failover.drill import markdown

    api = client(args)
    report = api.post("/v1/drill", {}, timeout_s=60.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(report["started_at"]))
    md, js = out / f"drill-{stamp}.md", out / f"drill-{stamp}.json"
    md.write_text(markdown(report))
    js.write_text(json.dumps(report, indent=1) + "\n")
    if wanted(args) != "table":
        print(dump(report, wanted(args)))
    else:
        for c in report["checks"]:
            print(f"{c['verdict']:<8} {c['name']:<20} {c['detail']}")
        print(f"drill {'PASSED' if report['passed'] else 'FAILED'} (report: {md}, {js})")
    return 0 if report["passed"] else 1


def add_parsers(sub: Any) -> None:
    """The operator's commands: the traffic-moving ones, then ``status``, ``events``,
    ``drill``."""
    where = (
        "Sent to an agent's control API (the DR site's first); the command prints the run's "
        "steps until it ends (--no-wait: only the run id). --direct runs the runbook from "
        "this machine instead, which must then reach the databases, the coordination store "
        "and the DNS provider. Every step is recorded as an event."
    )
    sw = sub.add_parser(
        "switchover",
        help="planned, zero-loss move of the service to a site",
        description="Planned switchover: the target catches up, writes pause, "
        "the lease moves, roles swap, traffic moves. " + where,
    )
    sw.add_argument("--to", required=True, metavar="SITE", help="the site to move to")
    fb = sub.add_parser(
        "failback",
        help="bring the service home after a failover",
        description="The old primary rejoins as a replica (its errant "
        "transactions are saved to the recovery directory), catches up, then "
        "a planned switchover home. " + where,
    )
    fo = sub.add_parser(
        "failover",
        help="fail over to the DR site now",
        description="Fail over to the DR site. Refused unless the quorum "
        "confirms the disaster; --without-quorum (formerly --force; it does not skip the "
        "question, -y does) overrides that when the quorum itself "
        "is gone (never while the primary renews its lease). " + where,
    )
    fo.add_argument(
        "--without-quorum",
        "--force",
        dest="force",
        action="store_true",
        help="fail over without the quorum's confirmation (--force: the same; -y skips "
        "the question)",
    )
    for p in (sw, fb, fo):
        common(p)
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--no-wait", action="store_true", help="do not follow the run's steps")
        p.add_argument(
            "--direct", action="store_true", help="run the runbook here, without an agent"
        )
        p.set_defaults(func=cmd_move)
    st = sub.add_parser(
        "status",
        help="the deployment's state: sites, lease, traffic, lag",
        description="Asks an agent's control API (the DR site's first) for "
        "the sites and their databases, what each vantage point sees, the "
        "active site and epoch, and where DNS and the frontends "
        "point. Exit status 0 when healthy, 6 when it shows an ALERT (an alert raised, no "
        "eligible standby, an automatic failover blocked, the store unreachable).",
    )
    st.add_argument("--json", action="store_true", help="the status document as JSON")
    st.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_every,
        metavar="S",
        help="show it again every S seconds (default 2; 0.5 to 3600) until Ctrl-C",
    )
    st.add_argument("--count", type=_count, metavar="N", help="with --watch: stop after N screens")
    st.set_defaults(func=cmd_status)
    ev = sub.add_parser(
        "events",
        help="the event log (runbook steps, commands, alarms)",
        description="Prints the last --limit events; --follow keeps printing new ones.",
    )
    ev.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    ev.add_argument("--run", metavar="PREFIX", help="only runs whose id starts with PREFIX")
    ev.add_argument("--limit", type=int, default=50, help="how many of the last events")
    ev.add_argument("--node", metavar="NAME", help="only events this agent recorded")
    ev.add_argument("--step", metavar="STEP", help="only this step (e.g. promote, fence)")
    ev.add_argument(
        "--outcome", metavar="OUTCOME", help="only this outcome (done, failed, raised, ...)"
    )
    ev.add_argument(
        "--runbook", metavar="KIND", help="only this kind (failover, lease, alert, ...)"
    )
    ev.add_argument(
        "--for", dest="for_s", type=float, metavar="S", help="with --follow: stop after S seconds"
    )
    ev.add_argument("--json", action="store_true", help="one JSON object per line")
    ev.set_defaults(func=cmd_events)
    dr = sub.add_parser(
        "drill",
        help="prove a failover would work now (moves no traffic)",
        description="Checks the quorum, the DR replica's lag against the RPO, "
        "the DR service and a token issued from its database, the DNS "
        "provider's credentials and each frontend's path to the DR site. "
        "Writes drill-<time>.md and .json to --out; exit 1 if a check "
        "fails.",
    )
    pa = sub.add_parser(
        "pause",
        help="maintenance: no automatic failover, failback or repair until resumed",
        description="Pause automatic action: the controller (whichever agent holds it) still "
        "watches, raises alerts and keeps the lease, but fails nothing over, fails nothing "
        "back, repairs nothing and moves no DNS name; a run already under way is finished. "
        "Manual commands (switchover, failover, failback) still work. Shown in status (the "
        "headline opens with PAUSED), as the 'paused' alert and its metric, and as events. "
        "--for ends it by itself (the store's lease: no clock is compared).",
    )
    pa.add_argument("--reason", required=True, metavar="TEXT", help="why (shown everywhere)")
    pa.add_argument(
        "--for",
        dest="for_s",
        type=duration,
        metavar="DURATION",
        help="end by itself after DURATION (600, 30m, 2h, 1d; 10 s to 7 days); "
        "default: until draas resume",
    )
    pa.set_defaults(func=cmd_pause)
    re_ = sub.add_parser(
        "resume",
        help="end a pause: automatic action again",
        description="End the pause set by 'draas pause' (nothing changes if there is none).",
    )
    re_.set_defaults(func=cmd_resume)
    dr.add_argument("--out", default=".", metavar="DIR", help="where the report goes")
    dr.add_argument("--json", action="store_true", help="print the report as JSON")
    dr.set_defaults(func=cmd_drill)
    for p in (st, ev, dr, pa, re_):
        common(p)


def common(p: argparse.ArgumentParser) -> None:
    add_output(p)
    p.add_argument(
        "--config",
        metavar="FILE",
        help="draas.toml (default: $DRAAS_CONFIG, else /etc/draas/draas.toml)",
    )
    p.add_argument(
        "--agent", metavar="URL", help="ask this agent's API instead of the config's agents"
    )
    p.add_argument(
        "--timeout",
        type=_timeout,
        default=10.0,
        metavar="S",
        help="give up after S seconds over all the agents asked (default 10; 0.5 to 300)",
    )


N = TypeVar("N", int, float)


def bounded(kind: Callable[[str], N], lo: N, hi: N, unit: str, what: str) -> Callable[[str], N]:
    """An argparse type: ``kind`` of the text, from ``lo`` to ``hi`` (a usage error else)."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text}{unit}: allowed from {lo} to {hi}")
        return value

    return parse


_timeout = bounded(float, 0.5, 300, " s", "a number of seconds")
_every = bounded(float, 0.5, 3600, " s", "a number of seconds")
_count = bounded(int, 1, 1_000_000, "", "a whole number")
