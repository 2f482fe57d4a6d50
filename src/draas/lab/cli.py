"""``draas lab ...``: build, inspect, disrupt and tear down the lab."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from draas.errors import CommandRefused, InvalidInput


def _progress(msg: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _lab(args: argparse.Namespace) -> Any:
    from draas.lab.lab import Lab

    return Lab(args.lab)


def _cmd_up(args: argparse.Namespace) -> int:
    from draas.lab.lab import LabSettings

    if args.delay_ms < 0 or args.jitter_ms < 0 or args.jitter_ms > args.delay_ms:
        raise InvalidInput(
            f"--delay-ms {args.delay_ms} / --jitter-ms {args.jitter_ms}: both must be >= 0 and "
            "the jitter at most the delay"
        )
    lab = _lab(args)
    if not 1 <= args.dns_ttl <= 86400:
        raise InvalidInput(f"--dns-ttl {args.dns_ttl}: must be 1..86400 seconds")
    settings = LabSettings(
        delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
        scheme=args.scheme,
        dns_ttl_s=args.dns_ttl,
        services=not args.bare,
    )
    lab.up(settings, progress=_progress)
    if not args.bare and not args.no_agents:
        from draas.lab.agents import start_agents

        _progress(
            f"starting the agents ({args.preset} timings, {args.replication} replication); "
            "waiting until the DR site is eligible and every agent sees every target up"
        )
        start_agents(lab, preset=args.preset, replication=args.replication)
        _progress("ready: every agent observing; try: draas lab exec client -- draas drill")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    _lab(args).down(progress=_progress)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    st = _lab(args).status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"lab {st['lab']}: {st['phase']}   (run directory {st['run_dir']})")
    if st["phase"] == "down":
        return 0
    print(f"{'HOST':<9} {'ADDRESS':<13} {'ZONE':<7} {'LINK':<8} PURPOSE")
    for h in st["hosts"]:
        print(f"{h['name']:<9} {h['address']:<13} {h['zone']:<7} {h['link']:<8} {h['purpose']}")
    wan = st["wan"]
    print(
        f"WAN emulation: {wan.get('how')}"
        + (f" [delayer {wan['delayer']}]" if "delayer" in wan else "")
    )
    for r in wan.get("rules", []):
        print(
            f"  {r['a']} <-> {r['b']}: {r['delay_ms']:g} ms +/- {r['jitter_ms']:g} ms ({r['tag']})"
        )
    if st["processes"] and not st.get("services"):
        print(f"{'PROCESS':<16} {'HOST':<9} {'PID':>7} STATE")
        for p in st["processes"]:
            print(f"{p['name']:<16} {p['host']:<9} {p['pid']:>7} {p['state']}")
    if st.get("services"):
        print(f"{'SERVICE':<17} {'HOST':<8} {'STATE':<8} {'ROLE':<10} LAG")
        for row in st["services"]:
            lag = "" if row.get("lag_s") is None else f"{row['lag_s']} s"
            print(
                f"{row['service']:<17} {row['host']:<8} {row['state']:<8} "
                f"{row.get('role', ''):<10} {lag}"
            )
        dns = st["dns_answer"]
        print(f"DNS: the client resolves {dns['name']} to {', '.join(dns['client_gets']) or '-'}")
        healthy = sum(st["etcd_health"].values())
        print(f"etcd: {healthy}/3 members healthy; lab memory {st['memory_rss_mib']:.0f} MiB RSS")
    for d in st["disasters"]:
        print(f"active disaster: {d}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    lab = _lab(args)
    print(f"export DRAAS_LAB={lab.name}")
    print(f"export DRAAS_LAB_RUN_DIR={lab.run.path}")
    clouds = lab.run.path / "clouds.yaml"
    if clouds.exists():
        print(f"export OS_CLIENT_CONFIG_FILE={clouds}")
        print("export OS_CLOUD=draas-lab")
    return 0


def _cmd_exec(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise InvalidInput(
            "lab exec: give a command after the host, e.g. draas lab exec client -- ip a"
        )
    lab = _lab(args)
    if not lab.is_up():
        raise CommandRefused(f"lab {lab.name} is not up (run: draas lab up)")
    return int(lab.exec(args.host, cmd).returncode)


def _cmd_disaster(args: argparse.Namespace) -> int:
    from draas.lab.disasters import DISASTERS

    lab = _lab(args)
    if not lab.is_up():
        raise CommandRefused(f"lab {lab.name} is not up (run: draas lab up)")
    if args.duration is not None and not 0 < args.duration <= 3600:
        raise InvalidInput(f"--duration {args.duration}: must be more than 0 and at most 3600 s")
    host = args.host or "primary"
    params: dict[str, Any]
    if args.name in ("service-crash", "service-hang", "service-slow"):
        procs = lab.host_processes(host)
        proc = args.process or lab.run.load().get("services", {}).get(host)
        if proc is None or proc not in procs:
            known = ", ".join(procs) or "none"
            raise InvalidInput(f"{args.name}: give --process NAME; processes on {host}: {known}")
        params = {"process": proc, "host": host}
        if args.name == "service-slow":
            params.update(stop_ms=args.stop_ms, run_ms=args.run_ms)
    elif args.name in ("api-errors", "db-read-only", "disk-full"):
        params = {"host": host}
    elif args.name in ("network-failure", "power-off"):
        lab.topo.host(host)
        params = {"host": host}
    elif args.name == "partition":
        hosts = (args.host or "primary,fe-a").split(",")
        peers = (args.peers or "dr,fe-b").split(",")
        params = {"hosts": hosts, "peers": peers}
    elif args.name == "replication-cut":
        params = {}
    elif args.name == "replication-cut-then-power-off":
        if not 0 <= args.cut_s <= 3600:
            raise InvalidInput(f"--cut-s {args.cut_s}: must be from 0 to 3600 s")
        lab.topo.host(host)
        params = {"host": host, "cut_s": args.cut_s}
    else:
        params = {"hosts": host.split(","), "loss_pct": args.loss_pct, "jitter_ms": args.jitter_ms}
    disaster = DISASTERS[args.name](lab, **params)
    event = disaster.inject()
    _progress(f"injected {disaster.describe()} at {event['ts']:.3f}")
    if args.duration is None:
        _progress("it stays until you run: draas lab restore")
        return 0
    try:
        time.sleep(args.duration)
    finally:
        event = disaster.revert()
        _progress(f"reverted {disaster.name} at {event['ts']:.3f}")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from draas.lab.disasters import restore_all

    done = restore_all(_lab(args))
    _progress(f"reverted {len(done)} disaster(s)" + "".join(f"\n  {d}" for d in done))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from draas.lab.demo import run_demo

    return run_demo(args.lab, progress=_progress, out=Path(args.out))


def _cmd_experiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from draas.lab.experiment import run_matrix

    doc = run_matrix(
        [s for s in args.schemes.split(",") if s],
        [d for d in args.disasters.split(",") if d],
        args.repeat,
        Path(args.out),
        _progress,
        preset=args.preset,
        replication=args.replication,
        cut_s=args.cut_s,
    )
    from draas.lab.report import markdown

    print(markdown(doc).split("\n## Runs")[0])
    _progress(f"report: {Path(args.out) / 'index.html'}")
    return 0


def add_lab_parser(sub: Any) -> None:
    from draas.lab.disasters import DISASTERS

    lab = sub.add_parser(
        "lab",
        help="build and drive the lab (needs root)",
        description="A complete two-site deployment on this machine, each host a network "
        "namespace on a private bridge, addresses in 198.18.0.0/15 only.",
    )
    lab.add_argument(
        "--lab",
        default=os.environ.get("DRAAS_LAB", "lab"),
        help="lab name, so that several labs can coexist (default: %(default)s)",
    )
    ls = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    up = ls.add_parser("up", help="build the lab (idempotent) and start draas's agents")
    up.add_argument("--no-agents", action="store_true", help="services only, no draas agents")
    up.add_argument(
        "--preset",
        choices=("fast", "normal", "safe"),
        default="fast",
        help="the agents' timing preset (default %(default)s)",
    )
    up.add_argument(
        "--replication",
        choices=("async", "semi-sync"),
        default="semi-sync",
        help="replication mode the agents set up (default %(default)s)",
    )
    up.add_argument(
        "--delay-ms",
        type=float,
        default=10.0,
        help="one-way latency between the two sites (default %(default)s)",
    )
    up.add_argument("--jitter-ms", type=float, default=0.0, help="jitter on that latency")
    up.add_argument(
        "--scheme",
        choices=("dns", "frontend", "hybrid"),
        default="hybrid",
        help="traffic scheme: which services run (default %(default)s)",
    )
    up.add_argument(
        "--dns-ttl",
        type=int,
        default=5,
        metavar="S",
        help="TTL of the service's DNS record (default %(default)s s)",
    )
    up.add_argument(
        "--bare", action="store_true", help="only the hosts, links and WAN emulation; no services"
    )
    up.set_defaults(func=_cmd_up)

    ls.add_parser(
        "down",
        help="remove every namespace, link, rule and process of the lab "
        "(also after a crash; idempotent)",
    ).set_defaults(func=_cmd_down)

    st = ls.add_parser("status", help="hosts, links, WAN emulation, processes")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_cmd_status)

    ls.add_parser("env", help="print shell exports that point tools at the lab").set_defaults(
        func=_cmd_env
    )

    ex = ls.add_parser("exec", help="run a command inside a lab host: exec HOST -- CMD...")
    ex.add_argument("host")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=_cmd_exec)

    names = "\n".join(f"  {n:<16} {d.summary}" for n, d in DISASTERS.items())
    dis = ls.add_parser(
        "disaster",
        help="inject a disaster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Inject a disaster, recorded with its time in the lab's event log.\n\n{names}",
    )
    dis.add_argument("name", choices=sorted(DISASTERS), metavar="NAME")
    dis.add_argument(
        "--host", help="target host (comma list for partition/gray-network); default primary"
    )
    dis.add_argument("--peers", help="partition: the other side (default dr,fe-b)")
    dis.add_argument("--process", help="service-crash/hang/slow: the process to hit")
    dis.add_argument(
        "--stop-ms",
        type=float,
        default=1900.0,
        help="service-slow: how long the service is stopped each turn",
    )
    dis.add_argument(
        "--run-ms", type=float, default=100.0, help="service-slow: how long it runs each turn"
    )
    dis.add_argument("--duration", type=float, help="revert after this many seconds")
    dis.add_argument("--loss-pct", type=float, default=5.0, help="gray-network loss (default 5)")
    dis.add_argument("--jitter-ms", type=float, default=20.0, help="gray-network jitter")
    dis.add_argument(
        "--cut-s",
        type=float,
        default=10.0,
        help="replication-cut-then-power-off: how long the link is cut before the power-off",
    )
    dis.set_defaults(func=_cmd_disaster)

    ls.add_parser("restore", help="revert every active disaster").set_defaults(func=_cmd_restore)
    from draas.lab.experiment import DISASTERS as EXP_DISASTERS

    exp = ls.add_parser(
        "experiment",
        help="schemes x disasters x repetitions, measured; writes a report",
        description="Builds one lab per scheme (with its agents), then for every disaster and "
        "repetition: clean state, RTO meter and write checker in the client, warm-up, the "
        "disaster, recovery (bounded), revert, failback. Writes results.json, results.md, PNG "
        "plots and index.html to --out. Disasters: " + ", ".join(EXP_DISASTERS) + ".",
    )
    exp.add_argument("--schemes", default="dns,frontend,hybrid", help="comma list")
    exp.add_argument("--disasters", default="power-off", help="comma list")
    exp.add_argument("--repeat", type=int, default=1, help="runs per scheme and disaster")
    exp.add_argument("--out", default="experiment", metavar="DIR")
    exp.add_argument("--preset", default="fast", choices=("fast", "normal", "safe"))
    exp.add_argument("--replication", default="semi-sync", choices=("async", "semi-sync"))
    exp.add_argument(
        "--cut-s",
        type=float,
        default=10.0,
        help="replication-cut-then-power-off: seconds the link is cut before the power-off",
    )
    exp.set_defaults(func=_cmd_experiment)
    demo = ls.add_parser(
        "demo",
        help="the main job: up, health, power off the primary, RTO table, failback, down",
        description="Builds the hybrid lab, checks it as a client would, starts the agents, "
        "powers the primary site off while measuring from the client, prints the RTO table "
        "(with where the seconds went), powers the primary back on, waits for failback, and "
        "tears everything down. About 2 minutes.",
    )
    demo.add_argument(
        "--out",
        default="demo-results",
        metavar="DIR",
        help="where the run's requests, writes and events go",
    )
    demo.set_defaults(func=_cmd_demo)
