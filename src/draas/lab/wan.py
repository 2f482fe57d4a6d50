"""WAN emulation between the lab's zones: latency and jitter on the switch.

The kernel's ``netem`` qdisc is used where it exists; otherwise (as on this project's CI
kernel) bridged packets between zones are sent by iptables to an NFQUEUE, and the userspace
delayer (``draas.lab.delayer``) holds them. ``describe()`` says which one runs, for status.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
from dataclasses import asdict, dataclass
from typing import Any

from draas.lab import netns
from draas.lab.network import BRIDGE, LabNetwork, switch_port
from draas.lab.readiness import CommandReady
from draas.lab.state import RunDir, write_json
from draas.lab.supervisor import ProcessSpec, Supervisor

log = logging.getLogger(__name__)

DELAYER = "wan-delayer"
CHAIN = "DRAAS-WAN"
QUEUE = 0


@dataclass(frozen=True)
class WanRule:
    a: str
    b: str
    delay_ms: float
    jitter_ms: float
    tag: str


class Wan:
    def __init__(self, net: LabNetwork, run: RunDir, sup: Supervisor) -> None:
        self.net = net
        self.run = run
        self.sup = sup

    def _sw(self, argv: list[str], check: bool = True) -> Any:
        return netns.run(netns.in_ns(self.net.switch_ns, argv), check=check)

    def detect(self) -> str:
        """'netem' when the kernel has it, else 'nfqueue' (the userspace delayer)."""
        probe = self._sw(
            ["tc", "qdisc", "add", "dev", BRIDGE, "root", "netem", "delay", "1ms"], check=False
        )
        if probe.returncode == 0:
            self._sw(["tc", "qdisc", "del", "dev", BRIDGE, "root"], check=False)
            return "netem"
        return "nfqueue"

    def start(self, rules: list[WanRule]) -> str:
        method = self.detect()
        self.run.update(wan_method=method)
        if method == "nfqueue":
            self._write_delayer_config(rules)
            self._sw(["iptables", "-N", CHAIN], check=False)
            if self._sw(["iptables", "-C", "FORWARD", "-j", CHAIN], check=False).returncode != 0:
                self._sw(["iptables", "-A", "FORWARD", "-j", CHAIN])
            ready = self.run.file("wan-delayer.ready")
            ready.unlink(missing_ok=True)
            if self.sup.state(DELAYER) == "exited":
                self.sup.start(
                    ProcessSpec(
                        name=DELAYER,
                        ns=self.net.switch_ns,
                        host="switch",
                        argv=[
                            sys.executable,
                            "-m",
                            "draas.lab.delayer",
                            "--config",
                            str(self.run.file("wan.json")),
                            "--queue",
                            str(QUEUE),
                            "--ready-file",
                            str(ready),
                        ],
                        ready=CommandReady(("test", "-e", str(ready))),
                        ready_timeout_s=15,
                    )
                )
        self.apply(rules)
        return method

    def apply(self, rules: list[WanRule]) -> None:
        """Make the switch delay exactly as ``rules`` say (replacing what was there)."""
        self.run.update(wan_rules=[asdict(r) for r in rules])
        method = self.run.load().get("wan_method", "nfqueue")
        if method == "netem":
            self._apply_netem(rules)
            return
        self._write_delayer_config(rules)
        self._sw(["iptables", "-F", CHAIN])
        for r in rules:
            self._sw(
                [
                    "iptables",
                    "-A",
                    CHAIN,
                    "-s",
                    r.a,
                    "-d",
                    r.b,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    str(QUEUE),
                    "--queue-bypass",
                ]
            )
            self._sw(
                [
                    "iptables",
                    "-A",
                    CHAIN,
                    "-s",
                    r.b,
                    "-d",
                    r.a,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    str(QUEUE),
                    "--queue-bypass",
                ]
            )
        if self.sup.state(DELAYER) != "exited":
            self.sup.send(DELAYER, signal.SIGHUP)

    def _write_delayer_config(self, rules: list[WanRule]) -> None:
        write_json(self.run.file("wan.json"), {"rules": [asdict(r) for r in rules]})

    def _apply_netem(self, rules: list[WanRule]) -> None:
        for host in self.net.topo.host_names():
            port = switch_port(host)
            addr = ipaddress.ip_address(self.net.topo.host(host).address)
            sources = []
            for r in rules:
                if addr in ipaddress.ip_network(r.a):
                    sources.append((r.b, r))
                elif addr in ipaddress.ip_network(r.b):
                    sources.append((r.a, r))
            self._sw(["tc", "qdisc", "del", "dev", port, "root"], check=False)
            if not sources:
                continue
            sources = sources[:15]
            self._sw(
                [
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    port,
                    "root",
                    "handle",
                    "1:",
                    "prio",
                    "bands",
                    str(len(sources) + 1),
                    "priomap",
                    *["0"] * 16,
                ]
            )
            for i, (src, r) in enumerate(sources, start=2):
                self._sw(
                    [
                        "tc",
                        "qdisc",
                        "add",
                        "dev",
                        port,
                        "parent",
                        f"1:{i}",
                        "handle",
                        f"{i}0:",
                        "netem",
                        "delay",
                        f"{r.delay_ms}ms",
                        f"{r.jitter_ms}ms",
                    ]
                )
                self._sw(
                    [
                        "tc",
                        "filter",
                        "add",
                        "dev",
                        port,
                        "parent",
                        "1:",
                        "protocol",
                        "ip",
                        "prio",
                        str(i),
                        "u32",
                        "match",
                        "ip",
                        "src",
                        src,
                        "flowid",
                        f"1:{i}",
                    ]
                )

    def describe(self) -> dict[str, Any]:
        state = self.run.load()
        method = state.get("wan_method", "none")
        how = {
            "netem": "kernel tc netem on the switch ports",
            "nfqueue": "userspace delayer: iptables NFQUEUE in the switch namespace "
            "(this kernel has no tc netem)",
        }.get(method, "not running")
        out: dict[str, Any] = {"method": method, "how": how, "rules": state.get("wan_rules", [])}
        if method == "nfqueue":
            out["delayer"] = self.sup.state(DELAYER)
        return out
