"""The ``draas`` command line: one entry point, subcommands per area."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from draas import __version__, exitcodes
from draas.config import beyond, config_path, load_config, without_invalid_file
from draas.errors import ConfigError, DraasError, InvalidInput
from draas.logs import setup_logging
from draas.model.kinds import RATES_PER_YEAR
from draas.output import Parser, add_output, dump, requested, wanted

log = logging.getLogger("draas")


def _cmd_config_check(args: argparse.Namespace) -> int:
    args.file = config_path(args.file)
    from draas.configcheck import check_deployment

    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        problems = list(exc.problems)
        # What a deployment needs, checked on the rest: one error does not hide the others.
        rest, left_out = without_invalid_file(args.file)
        if rest is not None:
            found = check_deployment(rest, files=not args.skip_files)
            problems += beyond(problems, found.problems, left_out)
        return _refused(args, f"{args.file} is not a valid draas configuration", problems)
    found = check_deployment(cfg, files=not args.skip_files)
    if found.problems:
        return _refused(args, f"{args.file} cannot work as a deployment", found.problems)
    fmt = wanted(args)
    print(dump(cfg.model_dump(mode="json"), "json" if fmt == "table" else fmt))
    for w in found.warnings:
        print(f"warning: {w}", file=sys.stderr)
    from draas.model.report import one_line_each

    for line in one_line_each(cfg):
        print(line, file=sys.stderr)
    print(
        f"ok: {args.file} is valid (scheme {cfg.scheme}, {len(cfg.nodes)} nodes)", file=sys.stderr
    )
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from draas.model.network import Path
    from draas.model.report import Question, rate, report, table, ttl_behaviour
    from draas.model.rto import Client

    rates = dict(RATES_PER_YEAR) | dict(rate(r) for r in args.rate)
    clamp = ttl_behaviour(args.client_ttl_behaviour)
    cfg = load_config(config_path(args.config))
    path = Path(args.rtt_ms / 1000, args.loss_pct / 100, args.jitter_ms / 1000)
    doc = report(cfg, Question(path, Client(clamp_s=clamp), rates))
    fmt = wanted(args)
    print(table(doc) if fmt == "table" else dump(doc, fmt))
    return 0


def _refused(args: argparse.Namespace, what: str, problems: list[str]) -> int:
    """A configuration refused: one line per problem (or one document), exit status 2."""
    fmt = wanted(args)
    if fmt != "table":
        doc = {"error": what, "problems": problems, "exit_status": exitcodes.INVALID}
        print(dump(doc, fmt))
        return exitcodes.INVALID
    print(f"error: {what}:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return exitcodes.INVALID


def _cmd_agent(args: argparse.Namespace) -> int:
    import asyncio

    from draas.agent.daemon import Agent
    from draas.coordination import make_store

    args.config = config_path(args.config)
    cfg = load_config(args.config)
    # Store calls give up well within the lease: the agent must still be able to fence in time.
    # Its own host's etcd member first, then the witness's: a member at a site that fails
    # would cost a connect timeout on the calls that matter most then.
    near = [n.address for n in cfg.nodes if n.name == args.node] + [
        n.address for n in cfg.nodes_with_role("witness")
    ]
    store = make_store(cfg.coordination, timeout_s=cfg.timings.retry_timeout_s / 2, prefer=near)
    agent = Agent(cfg, args.node, store, config_path=args.config, serve_api=not args.no_api)
    asyncio.run(agent.run())
    return 0


def _cmd_rto(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from draas.measure import meter
    from draas.measure.inputs import check_disaster_at, check_out, check_site_pattern, check_url
    from draas.measure.rto import summarize

    checks: list[meter.Check] = []
    if args.config:
        cfg = load_config(args.config)
        name = cfg.service.dns_name.rstrip(".")
        checks += [
            meter.Check(c.name, f"http://{name}:{c.port}{c.path}", c.expect_status, c.expect_body)
            for c in cfg.service.checks
            if c.kind == "http"
        ]
    bodies = args.expect_body or []
    if len(bodies) > len(args.url or []):
        raise InvalidInput("--expect-body: given more often than URLs (one per URL, in order)")
    for i, url in enumerate(args.url or []):
        body = bodies[i] if i < len(bodies) else None
        checks.append(meter.Check(f"url{i + 1}", check_url(url), args.expect_status, body or None))
    if not checks:
        raise InvalidInput("nothing to measure: give one or more URLs, or --config FILE")
    for flag, value, lo, hi in (
        ("--interval", args.interval, 0.01, 10.0),
        ("--timeout", args.timeout, 0.05, 30.0),
        ("--duration", args.duration, 1.0, 3600.0),
        ("--consecutive", args.consecutive, 1, 100),
    ):
        if not lo <= value <= hi:
            raise InvalidInput(f"{flag} {value}: must be between {lo:g} and {hi:g}")
    check_site_pattern(args.site_pattern)
    check_disaster_at(args.disaster_at, args.duration)
    out = check_out(Path(args.out or time.strftime("rto-%Y%m%dT%H%M%S.jsonl")))
    meter.to_stderr(
        f"measuring {', '.join(c.url for c in checks)} every {args.interval:g} s "
        f"for {args.duration:g} s; requests to {out}"
    )

    async def measure(f: TextIO) -> list[dict[str, Any]]:
        import signal

        stop = asyncio.Event()  # SIGTERM or Ctrl-C ends the measurement, not the report
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await meter.run(
            checks,
            interval_s=args.interval,
            timeout_s=args.timeout,
            duration_s=args.duration,
            out=f,
            site_pattern=args.site_pattern,
            progress=None if args.quiet else meter.to_stderr,
            stop=stop,
        )

    with out.open("w") as f:
        records = asyncio.run(measure(f))
    summary = summarize(records, args.disaster_at, args.consecutive)
    # Exit 1 when the service never came back within the measurement (a script must see it).
    down = (
        summary.samples == 0
        or bool(summary.windows and summary.windows[-1].end is None)
        or (args.disaster_at is not None and summary.rto_s is None)
    )
    rc = 1 if down else 0
    if wanted(args) != "table":
        print(dump(summary.to_dict(), wanted(args)))
        return rc
    rto = (
        "n/a"
        if args.disaster_at is None
        else ("never recovered" if summary.rto_s is None else f"{summary.rto_s:.3f} s")
    )
    rows = [
        ("samples", summary.samples),
        ("failed", summary.failed),
        ("availability", summary.availability),
        ("downtime", f"{summary.downtime_s:.3f} s"),
        ("RTO", rto),
        ("recovered at site", summary.recovered_site or "-"),
        ("latency p50 / p99", f"{summary.latency_p50_ms} / {summary.latency_p99_ms} ms"),
    ]
    for k, v in rows:
        print(f"{k:<20} {v}")
    for w in summary.windows:
        end = "still down" if w.end is None else time.strftime("%H:%M:%S", time.localtime(w.end))
        start = time.strftime("%H:%M:%S", time.localtime(w.start))
        print(f"down {start} .. {end} ({w.duration_s:.3f} s)")
    if down:
        print("error: the service was not answering when the measurement ended", file=sys.stderr)
    return rc


def _cmd_disaster(args: argparse.Namespace) -> int:
    from draas import gameday

    p = gameday.plan(
        args.name,
        pid=args.pid,
        pidfile=args.pidfile,
        interface=args.interface,
        duration_s=args.duration,
    )
    print(f"draas disaster {p.name}: will {p.says}", file=sys.stderr)
    if not args.yes:
        print(
            "error: refused without --yes (this disrupts the machine it runs on)", file=sys.stderr
        )
        return exitcodes.REFUSED
    p.act()
    print(f"done at {time.time():.3f}: {p.says}", file=sys.stderr)
    if args.name == "network-failure" and args.wait:
        time.sleep(float(args.duration) + 1)
    return 0


def _cmd_man(args: argparse.Namespace) -> int:
    from draas.clidocs import manpage

    sys.stdout.write(manpage(build_parser()))
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    from draas.clidocs import bash_completion

    sys.stdout.write(bash_completion(build_parser()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="draas",
        description="Automatic disaster-recovery failover for services hosted on OpenStack: "
        "DNS-based, frontend-based and hybrid traffic switching, and a lab that proves it.",
        epilog=exitcodes.TABLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"draas {__version__}")
    parser.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cfg = sub.add_parser("config", help="check a configuration file")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = cfg_sub.add_parser(
        "check",
        help="validate a draas.toml and print the effective configuration",
        description="Validate FILE: its fields, then what a deployment needs (voters, names, "
        "addresses, absolute paths; the secret files exist here and others cannot read them). "
        "Prints the effective configuration (defaults and timing preset filled in) as JSON and "
        "warnings for settings that will hurt, or one line per problem and exit status 2.",
    )
    check.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="default: $DRAAS_CONFIG, else /etc/draas/draas.toml",
    )
    check.add_argument(
        "--skip-files",
        action="store_true",
        help="do not look at the secret files (checking the file away from its machines)",
    )
    add_output(check)
    check.set_defaults(func=_cmd_config_check)

    agent = sub.add_parser(
        "agent",
        help="run the agent of one node (probes, lease, controller)",
        description="The draas agent: probes the sites from this node, publishes what it sees, "
        "renews the active lease when its site holds it (and fences itself when it cannot), "
        "and on the DR site decides and runs the failover.",
    )
    agent.add_argument(
        "--config", metavar="FILE", help="default: $DRAAS_CONFIG, else /etc/draas/draas.toml"
    )
    agent.add_argument("--node", required=True, metavar="NAME", help="this node's name in FILE")
    agent.add_argument("--no-api", action="store_true", help="do not serve the control API")
    agent.set_defaults(func=_cmd_agent)

    from draas.opscli import add_parsers, bounded

    add_parsers(sub)

    model = sub.add_parser(
        "model",
        help="predict the RTO per disaster kind, false failovers and availability",
        description="Predict, from the configuration the agents run (probe intervals, "
        "timeouts, rise/fall, windows, quorum, TTL, scheme), each disaster kind's "
        "client-visible RTO (median, p95; detect, decide, switch, client catch-up), the false "
        "failovers per year for the loss and jitter on the probes' paths, and the expected "
        "availability for the failure rates per kind (defaults shown; --rate to give yours).",
    )
    model.add_argument(
        "--config", metavar="FILE", help="default: $DRAAS_CONFIG, else /etc/draas/draas.toml"
    )
    model.add_argument(
        "--loss-pct",
        type=bounded(float, 0.0, 99.0, " %", "a percentage"),
        default=0.0,
        help="packet loss on the probes' paths, per packet and direction (default 0)",
    )
    millis = bounded(float, 0.0, 10_000.0, " ms", "a number of milliseconds")
    for flag, default, what in (
        ("--jitter-ms", 0.0, "each packet's delay moved by up to this much either way"),
        ("--rtt-ms", 20.0, "round trip between the observers and the sites"),
    ):
        model.add_argument(flag, type=millis, default=default, help=f"{what} (default {default:g})")
    model.add_argument(
        "--client-ttl-behaviour",
        default="honour",
        metavar="honour|clamp:SECONDS",
        help="clients keep a DNS answer for its TTL (honour, default; through a caching "
        "resolver that counts whole seconds: TTL + 1 s) or for SECONDS whatever the TTL "
        "(clamp:SECONDS, e.g. a JVM's networkaddress.cache.ttl)",
    )
    model.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="KIND=PER_YEAR",
        help="failures per year of a disaster kind (repeatable; defaults: "
        + ", ".join(f"{k}={v:g}" for k, v in RATES_PER_YEAR.items())
        + ")",
    )
    add_output(model)
    model.set_defaults(func=_cmd_model)

    rto = sub.add_parser(
        "rto",
        help="measure the service's downtime and RTO from a client's side",
        description="The RTO meter: every --interval it requests each URL as a real client "
        "does (the name resolved through the system resolver for every connection), writes "
        "every request as a JSON line to --out, prints progress, then the downtime windows, "
        "the RTO (from --disaster-at to the first of --consecutive passing samples), the "
        "availability and the latency outside the outage.",
    )
    rto.add_argument("url", nargs="*", metavar="URL", help="http URL(s) to check")
    rto.add_argument(
        "--expect-body",
        action="append",
        metavar="TEXT",
        help="text the body of the matching URL must contain (in order)",
    )
    rto.add_argument("--expect-status", type=int, default=200, metavar="CODE")
    rto.add_argument("--config", metavar="FILE", help="measure the service checks of draas.toml")
    rto.add_argument("--interval", type=float, default=0.1, metavar="S")
    rto.add_argument("--timeout", type=float, default=1.0, metavar="S", help="per request")
    rto.add_argument("--duration", type=float, required=True, metavar="S", help="at most 3600")
    rto.add_argument(
        "--disaster-at",
        type=float,
        metavar="EPOCH_S",
        help="when the disaster happened (Unix time), for the RTO",
    )
    rto.add_argument(
        "--consecutive",
        type=int,
        default=3,
        metavar="K",
        help="passing samples in a row that count as recovered (default 3)",
    )
    rto.add_argument(
        "--site-pattern",
        default=r"site=([A-Za-z0-9_-]+)",
        metavar="REGEX",
        help="regex whose group 1 in the body names the site that answered",
    )
    rto.add_argument("--out", metavar="FILE", help="JSON lines of every request")
    rto.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_output(rto)
    rto.set_defaults(func=_cmd_rto)

    from draas.gameday import NAMES

    dis = sub.add_parser(
        "disaster",
        help="game day: disrupt THIS machine (kill, freeze, link down, power off)",
        description="Run on the machine to disrupt. Prints what it will do, refuses without "
        "--yes. process-kill/process-hang --pid N|--pidfile F; network-failure --interface IF "
        "--duration S (restores itself, even if this command dies); power-off.",
    )
    dis.add_argument("name", choices=NAMES, metavar="NAME", help=", ".join(NAMES))
    dis.add_argument("--pid", type=int)
    dis.add_argument("--pidfile")
    dis.add_argument("--interface")
    dis.add_argument("--duration", type=float, metavar="S")
    dis.add_argument("--wait", action="store_true", help="network-failure: stay until restored")
    dis.add_argument("-y", "--yes", action="store_true", help="really do it")
    dis.set_defaults(func=_cmd_disaster)

    from draas.replication.catalog import add_catalog_parser

    add_catalog_parser(sub)

    from draas.lab.cli import add_lab_parser

    add_lab_parser(sub)
    man = sub.add_parser(
        "man",
        help="print the man page (draas man > /usr/local/share/man/man1/draas.1)",
        description="Print draas(1) in roff, generated from this command line: every command, "
        "its options and the exit statuses.",
    )
    man.set_defaults(func=_cmd_man)
    comp = sub.add_parser(
        "completion",
        help="print a shell completion script (draas completion bash > "
        "/etc/bash_completion.d/draas)",
        description="Print a completion script for SHELL (bash), generated from this command "
        "line: commands, subcommands and their flags.",
    )
    comp.add_argument("shell", choices=["bash"], metavar="SHELL", help="bash")
    comp.set_defaults(func=_cmd_completion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    Parser.output = requested(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    setup_logging(json_lines=args.log_json, verbose=-1 if args.quiet else args.verbose)
    try:
        rc: int = args.func(args)
    except DraasError as exc:
        code = exitcodes.for_error(exc)
        fmt = wanted(args)
        if fmt == "table":
            print(f"error: {exc}", file=sys.stderr)
        else:
            print(dump({"error": str(exc), "exit_status": code}, fmt))
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`draas status | head`): nothing more to say, and no traceback
        # when Python flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
