"""Slow a lab service down to seconds per answer: its whole process group is stopped
(SIGSTOP) for ``--stop-ms`` and let run (SIGCONT) for ``--run-ms``, over and over, as a
starved or overloaded server behaves. Bounded by ``--duration``; on SIGTERM, at the end and on
any error the group is always left running.

    python -m draas.lab.throttle --pid PID --start-time TICKS --run-ms 100 --stop-ms 1900 \\
        --duration 600

``--start-time`` (the process's start time in clock ticks, /proc/PID/stat field 22) makes sure
the signals only ever reach the process the lab started, never a later one with the same PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from draas.lab.supervisor import proc_stat


def same(pid: int, start_time: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st[1] == start_time


def signal_group(pid: int, start_time: int, sig: int) -> bool:
    if not same(pid, start_time):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--start-time", type=int, required=True)
    ap.add_argument("--run-ms", type=float, default=100.0)
    ap.add_argument("--stop-ms", type=float, default=1900.0)
    ap.add_argument("--duration", type=float, required=True)
    args = ap.parse_args(argv)
    if not (
        10 <= args.run_ms <= 60000 and 10 <= args.stop_ms <= 60000 and 1 <= args.duration <= 7200
    ):
        print(
            "error: --run-ms and --stop-ms must be 10..60000, --duration 1..7200 s", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # out of any sleep, to finally
    end = time.monotonic() + args.duration
    try:
        while time.monotonic() < end:
            if not signal_group(args.pid, args.start_time, signal.SIGSTOP):
                return 1  # the service is gone: nothing to slow
            time.sleep(args.stop_ms / 1000)
            signal_group(args.pid, args.start_time, signal.SIGCONT)
            time.sleep(args.run_ms / 1000)
    finally:
        signal_group(args.pid, args.start_time, signal.SIGCONT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
