"""Userspace WAN emulator for kernels without ``tc netem``: holds packets queued by iptables'
NFQUEUE target for a configured delay (plus random jitter) before letting them through.

Runs inside the lab's switch namespace, where bridged traffic between zones is queued. Rules
come from a JSON file (re-read on SIGHUP): ``{"rules": [{"a": CIDR, "b": CIDR, "delay_ms": D,
"jitter_ms": J}]}``; a packet between ``a`` and ``b`` (either direction) is held for the sum of
``D + uniform(-J, J)`` over every matching rule. Packets of one direction leave in the order
they came, as on a real link, so jitter never reorders a TCP stream.

    python -m draas.lab.delayer --config FILE --queue N [--ready-file FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("draas.lab.delayer")

Net = ipaddress.IPv4Network


@dataclass(frozen=True)
class Rule:
    a: Net
    b: Net
    delay_s: float
    jitter_s: float

    def matches(self, src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address) -> bool:
        return (src in self.a and dst in self.b) or (src in self.b and dst in self.a)


def load_rules(path: Path) -> list[Rule]:
    doc = json.loads(path.read_text())
    return [
        Rule(
            ipaddress.IPv4Network(r["a"]),
            ipaddress.IPv4Network(r["b"]),
            float(r["delay_ms"]) / 1000,
            float(r.get("jitter_ms", 0)) / 1000,
        )
        for r in doc.get("rules", [])
    ]


def hold_time(
    rules: list[Rule], src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, rng: random.Random
) -> float:
    """Seconds to hold a packet from src to dst (0 when no rule matches)."""
    total = 0.0
    for r in rules:
        if r.matches(src, dst):
            total += r.delay_s + (rng.uniform(-r.jitter_s, r.jitter_s) if r.jitter_s else 0.0)
    return max(0.0, total)


class Delayer:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.rules = load_rules(config)
        self.rng = random.Random()
        self.loop = asyncio.new_event_loop()
        self.last_release: dict[tuple[bytes, bytes], float] = {}
        self.count = 0

    def reload(self) -> None:
        try:
            self.rules = load_rules(self.config)
            log.info("reloaded %d rule(s) from %s", len(self.rules), self.config)
        except (OSError, ValueError, KeyError) as exc:
            log.error("kept the old rules: cannot load %s: %s", self.config, exc)

    def on_packet(self, pkt: Any) -> None:
        payload = pkt.get_payload()
        if len(payload) < 20 or payload[0] >> 4 != 4:
            pkt.accept()
            return
        src_b, dst_b = payload[12:16], payload[16:20]
        src = ipaddress.IPv4Address(src_b)
        dst = ipaddress.IPv4Address(dst_b)
        hold = hold_time(self.rules, src, dst, self.rng)
        if hold <= 0:
            pkt.accept()
            return
        now = self.loop.time()
        key = (src_b, dst_b)
        release = max(now + hold, self.last_release.get(key, 0.0))
        self.last_release[key] = release
        self.count += 1
        self.loop.call_at(release, pkt.accept)

    def run(self, queue: int, ready_file: Path | None) -> None:
        from netfilterqueue import NetfilterQueue  # only in the lab extra

        nfq = NetfilterQueue()
        nfq.bind(queue, self.on_packet, max_len=8192)
        self.loop.add_reader(nfq.get_fd(), lambda: nfq.run(block=False))
        self.loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.loop.add_signal_handler(signal.SIGTERM, self.loop.stop)
        self.loop.add_signal_handler(signal.SIGINT, self.loop.stop)
        log.info("delaying on NFQUEUE %d with %d rule(s)", queue, len(self.rules))
        if ready_file:
            ready_file.write_text("ready\n")
        try:
            self.loop.run_forever()
        finally:
            nfq.unbind()
            log.info("stopped after delaying %d packet(s)", self.count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="draas-delayer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    Delayer(args.config).run(args.queue, args.ready_file)


if __name__ == "__main__":
    main()
