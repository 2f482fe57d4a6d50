"""The ``draas`` command line: one entry point, subcommands per area."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from draas import __version__
from draas.config import load_config
from draas.errors import ConfigError, DraasError
from draas.logs import setup_logging

log = logging.getLogger("draas")


def _cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(f"error: {args.file} is not a valid draas configuration:", file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    print(json.dumps(cfg.model_dump(mode="json"), indent=2))
    print(
        f"ok: {args.file} is valid (scheme {cfg.scheme}, {len(cfg.nodes)} nodes)", file=sys.stderr
    )
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    import asyncio

    from draas.agent.daemon import Agent
    from draas.coordination import make_store

    cfg = load_config(args.config)
    # Store calls give up well within the lease: the agent must still be able to fence in time.
    store = make_store(cfg.coordination, timeout_s=cfg.timings.retry_timeout_s / 2)
    agent = Agent(cfg, args.node, store)
    asyncio.run(agent.run())
    return 0


def _confirm(args: argparse.Namespace, what: str) -> bool:
    """Commands that move traffic ask first, unless --yes; without a terminal they refuse."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"error: {what}: confirm with --yes (no terminal to ask on)", file=sys.stderr)
        return False
    return input(f"{what}? [y/N] ").strip().lower() in ("y", "yes")


def _cmd_move(args: argparse.Namespace) -> int:
    from draas.coordination import make_store
    from draas.failover import manual

    cfg = load_config(args.config)
    if args.command == "switchover":
        what = f"move the service to site {args.to} (planned switchover)"
    elif args.command == "failback":
        what = f"fail back to site {cfg.site_with_role('primary')}"
    else:
        what = f"fail over to site {cfg.site_with_role('dr')}" + (" (FORCED)" if args.force else "")
    if not _confirm(args, what):
        return 1
    if args.command == "failover":
        said = manual.failover(cfg, manual.store_or_none(cfg), force=args.force)
    else:
        store = make_store(cfg.coordination, timeout_s=2.0)
        to = args.to if args.command == "switchover" else cfg.site_with_role("primary")
        said = manual.switchover(cfg, store, to, failback=args.command == "failback")
    print(said)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="draas",
        description="Automatic disaster-recovery failover for services hosted on OpenStack: "
        "DNS-based, frontend-based and hybrid traffic switching, and a lab that proves it.",
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
        description="Validate FILE. Prints the effective configuration (defaults and timing "
        "preset filled in) as JSON, or one line per problem and exit status 2.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_cmd_config_check)

    agent = sub.add_parser(
        "agent", help="run the agent of one node (probes, lease, controller)",
        description="The draas agent: probes the sites from this node, publishes what it sees, "
        "renews the active lease when its site holds it (and fences itself when it cannot), "
        "and on the DR site decides and runs the failover.",
    )  # fmt: skip
    agent.add_argument("--config", required=True, metavar="FILE")
    agent.add_argument("--node", required=True, metavar="NAME", help="this node's name in FILE")
    agent.set_defaults(func=_cmd_agent)

    where = (
        "Runs the runbook from this machine, which must reach the databases, the "
        "coordination store and the DNS provider; every step is recorded as an event."
    )
    sw = sub.add_parser("switchover", help="planned, zero-loss move of the service to a site",
                        description="Planned switchover: the target catches up, writes pause, "
                        "the lease moves, roles swap, traffic moves. " + where)  # fmt: skip
    sw.add_argument("--to", required=True, metavar="SITE", help="the site to move to")
    fb = sub.add_parser("failback", help="bring the service home after a failover",
                        description="The old primary rejoins as a replica (its errant "
                        "transactions are saved to the recovery directory), catches up, then "
                        "a planned switchover home. " + where)  # fmt: skip
    fo = sub.add_parser("failover", help="fail over to the DR site now",
                        description="Fail over to the DR site. Refused unless the quorum "
                        "confirms the disaster; --force overrides that when the quorum itself "
                        "is gone (never while the primary renews its lease). " + where)  # fmt: skip
    fo.add_argument("--force", action="store_true",
                    help="fail over without the quorum's confirmation")  # fmt: skip
    for p in (sw, fb, fo):
        p.add_argument("--config", required=True, metavar="FILE")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.set_defaults(func=_cmd_move)

    from draas.lab.cli import add_lab_parser

    add_lab_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(json_lines=args.log_json, verbose=-1 if args.quiet else args.verbose)
    try:
        rc: int = args.func(args)
    except DraasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
