"""The lab engine: hosts as network namespaces on a switch, the WAN between the sites, a
process supervisor. Build it (``up``), look at it (``status``), run commands in it, tear it
down. What runs on the hosts (the deployment) is added by ``lab.Lab`` through ``_deploy``.

``down`` removes everything that carries this lab's tag (namespace prefix ``draas-<lab>-``),
whether or not the run directory survived: it is also the cleanup after a crash.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from draas.errors import LabError, NeedRootError
from draas.lab import netns
from draas.lab.network import SWITCH, LabNetwork, ns_prefix
from draas.lab.state import RunDir
from draas.lab.supervisor import ProcessSpec, Supervisor, proc_stat
from draas.lab.topology import LAB_SUBNET, Topology, default_topology
from draas.lab.wan import Wan, WanRule

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
REQUIRED_PROGRAMS = ("ip", "nft", "iptables", "tc", "setpriv", "setsid")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class LabSettings:
    delay_ms: float = 10.0
    jitter_ms: float = 0.0
    scheme: str = "hybrid"
    dns_ttl_s: int = 5
    services: bool = True  # False: the bare topology only (hosts, links, WAN)

    def topology(self) -> Topology:
        return default_topology(self.delay_ms, self.jitter_ms)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, outermost first (from /proc/self/mountinfo)."""
    root = path.resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts))


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise NeedRootError(
            f"draas lab {action} needs root: it creates and removes network namespaces, veth "
            "links and firewall rules, which takes CAP_NET_ADMIN. Run it as root "
            f"(e.g. sudo draas lab {action})."
        )
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if missing:
        raise LabError(
            f"draas lab {action} needs these programs, not found on PATH: {', '.join(missing)}; "
            "run scripts/setup (as root) to install the lab's Debian packages"
        )


class LabEngine:
    def __init__(self, name: str = "lab") -> None:
        self.run = RunDir(name)
        self.name = self.run.lab
        self.sup = Supervisor(self.run)
        saved = self.run.load().get("settings")
        self._configure(LabSettings(**saved) if saved else LabSettings())

    def _configure(self, settings: LabSettings) -> None:
        self.settings = settings
        self.topo = settings.topology()
        self.net = LabNetwork(self.name, self.topo)
        self.wan = Wan(self.net, self.run, self.sup)

    # -- state -----------------------------------------------------------------------------
    def our_namespaces(self) -> list[str]:
        prefix = ns_prefix(self.name)
        return [ns for ns in netns.list_namespaces() if ns.startswith(prefix)]

    def is_up(self) -> bool:
        if self.run.load().get("phase") != "up":
            return False
        wanted = {self.net.ns(h) for h in self.topo.host_names()} | {self.net.switch_ns}
        return wanted <= set(self.our_namespaces())

    def ns(self, host: str) -> str:
        return self.net.ns(host)

    # -- up / down -------------------------------------------------------------------------
    def up(
        self, settings: LabSettings | None = None, progress: Progress = _quiet
    ) -> dict[str, Any]:
        """Build the lab; return what it took. Safe to call on a lab that is already up."""
        require_root("up")
        if self.is_up():
            progress(f"lab {self.name} is already up (draas lab down first to rebuild it)")
            return {"already_up": True}
        if self.run.exists() or self.our_namespaces():
            progress(f"lab {self.name}: removing what an earlier, unfinished run left behind")
            self.down()
        self._configure(settings or LabSettings())
        t0 = time.monotonic()
        self.run.save(
            {
                "lab": self.name,
                "phase": "building",
                "settings": asdict(self.settings),
                "created_at": time.time(),
                "impairments": [],
            }
        )
        progress(f"building {len(self.topo.hosts)} hosts and the switch")
        self.net.build()
        t_net = time.monotonic() - t0
        progress("starting WAN emulation between the sites")
        method = self.wan.start(self.base_wan_rules())
        result: dict[str, Any] = {
            "already_up": False,
            "network_s": round(t_net, 3),
            "wan_method": method,
        }
        if self.settings.services:
            took = self._deploy(progress)
            result["services_s"] = {k: round(v, 3) for k, v in took.items()}
        self.run.update(phase="up", up_at=time.time())
        total = time.monotonic() - t0
        result["total_s"] = round(total, 3)
        progress(f"lab {self.name} is up in {total:.1f} s (network {t_net:.2f} s, WAN: {method})")
        return result

    def _deploy(self, progress: Progress) -> dict[str, float]:
        """Start what runs on the hosts; the seconds each part took. The bare engine has
        nothing to deploy."""
        return {}

    def _overview(self) -> dict[str, Any]:
        """What the deployment adds to ``status``."""
        return {}

    def down(self, progress: Progress = _quiet) -> dict[str, Any]:
        """Remove every process, namespace and file of this lab. Safe to call twice."""
        require_root("down")
        t0 = time.monotonic()
        if self.run.exists():
            self.run.update(phase="tearing-down")
        # A lab being destroyed keeps no data: whatever has not exited after 2 s (etcd
        # members trying to hand over leadership to peers that are also stopping) is killed.
        stopped = self.sup.stop_all(timeout=2.0, warn=False)
        namespaces = self.our_namespaces()
        killed = self.kill_all_in(namespaces)
        for ns in namespaces:
            LabNetwork.remove_namespace(ns)
        # Per-namespace /etc files of namespaces that were never created (crash mid-up).
        for h in [*self.topo.host_names(), SWITCH]:
            LabNetwork.remove_namespace(self.net.ns(h))
        self._remove_run_dir()
        left = self.our_namespaces()
        if left:
            raise LabError(f"lab {self.name}: namespaces still present after down: {left}")
        took = time.monotonic() - t0
        if namespaces or stopped:
            progress(
                f"lab {self.name} is down in {took:.1f} s: {len(namespaces)} namespace(s) "
                f"removed, {stopped + killed} process(es) ended"
            )
        else:
            progress(f"lab {self.name}: nothing to remove")
        return {
            "namespaces_removed": namespaces,
            "processes_stopped": stopped,
            "processes_killed": killed,
            "total_s": round(took, 3),
        }

    def _remove_run_dir(self) -> None:
        """Unmount what the lab mounted under its run directory (the databases' own
        filesystems), then remove the directory; a leftover would leak old data into the next
        ``up``."""
        for mount in reversed(mounts_under(self.run.path)):
            netns.run(["umount", "-l", str(mount)], check=False)
        for _ in range(3):
            shutil.rmtree(self.run.path, ignore_errors=True)
            if not self.run.path.exists():
                return
            time.sleep(0.2)
        shutil.rmtree(self.run.path)  # raises, naming what could not be removed

    @staticmethod
    def kill_all_in(namespaces: Sequence[str]) -> int:
        """SIGKILL every process in our namespaces (ours: we made the namespaces)."""
        killed = 0
        for _ in range(50):
            pids = [(pid, proc_stat(pid)) for ns in namespaces for pid in netns.pids_in(ns)]
            alive = [pid for pid, st in pids if st is not None and st[0] not in ("Z", "X")]
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        return killed

    # -- impairments -----------------------------------------------------------------------
    def base_wan_rules(self) -> list[WanRule]:
        return [
            WanRule(
                self.topo.zone(p.a).cidr,
                self.topo.zone(p.b).cidr,
                p.delay_ms,
                p.jitter_ms,
                f"wan {p.a}<->{p.b}",
            )
            for p in self.topo.wan
        ]

    def impairments(self) -> list[dict[str, Any]]:
        return list(self.run.load().get("impairments", []))

    def set_impairments(self, impairments: list[dict[str, Any]]) -> None:
        """Make the lab's filters and WAN emulation match exactly this list."""
        self.run.update(impairments=impairments)
        for host in self.topo.host_names():
            self.net.apply_filters(host, impairments)
        rules = self.base_wan_rules()
        for imp in impairments:
            if imp["kind"] == "jitter":
                for h in imp["hosts"]:
                    addr = f"{self.topo.host(h).address}/32"
                    j = float(imp["jitter_ms"])
                    rules.append(WanRule(addr, str(LAB_SUBNET), j, j, imp["id"]))
        self.wan.apply(rules)

    def add_impairment(self, imp: dict[str, Any]) -> None:
        self.set_impairments([*(i for i in self.impairments() if i["id"] != imp["id"]), imp])

    def remove_impairment(self, imp_id: str) -> None:
        self.set_impairments([i for i in self.impairments() if i["id"] != imp_id])

    # -- processes and commands ------------------------------------------------------------
    def host_processes(self, host: str) -> list[str]:
        ns = self.ns(host)
        return [n for n in self.sup.names() if self.sup.record(n)["spec"]["ns"] == ns]

    def spec(self, name: str, host: str, argv: list[str], **kw: Any) -> ProcessSpec:
        return ProcessSpec(name=name, ns=self.ns(host), host=host, argv=argv, **kw)

    def exec(
        self, host: str, argv: Sequence[str], env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run a command inside a host, with this Python's scripts (draas) on PATH."""
        env = {**os.environ, **(env or {})}
        env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '/usr/bin:/bin')}"
        env["DRAAS_LAB"] = self.name
        config = self.run.path / "draas.toml"  # the deployment's, once its agents run
        if config.exists() and "DRAAS_CONFIG" not in (env or {}):
            env["DRAAS_CONFIG"] = str(config)
        return subprocess.run(netns.in_ns(self.ns(host), list(argv)), env=env, check=False, **kw)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        state = self.run.load()
        present = set(self.our_namespaces())
        hosts = []
        for h in self.topo.hosts:
            ns = self.ns(h.name)
            hosts.append(
                {
                    "name": h.name,
                    "namespace": ns,
                    "address": h.address,
                    "zone": h.zone,
                    "purpose": h.purpose,
                    "exists": ns in present,
                    "link": self.net.link_state(h.name) if ns in present else "missing",
                }
            )
        procs = []
        for name in self.sup.names():
            rec = self.sup.record(name)
            procs.append(
                {
                    "name": name,
                    "host": rec["spec"].get("host", ""),
                    "pid": rec["pid"],
                    "state": self.sup.state(name),
                }
            )
        services: dict[str, Any] = {}
        if state.get("services") and state.get("phase") == "up":
            services = self._overview()
        return {
            **services,
            "lab": self.name,
            "scheme": state.get("scheme"),
            "phase": state.get("phase", "down"),
            "run_dir": str(self.run.path),
            "settings": state.get("settings", asdict(self.settings)),
            "hosts": hosts,
            "wan": self.wan.describe() if state else {"method": "none"},
            "impairments": state.get("impairments", []),
            "disasters": state.get("disasters", []),
            "processes": procs,
        }
