"""docs/install.md as steps a test can follow: the shell blocks with the machines they run on,
the packages each machine needs and the files carried between machines; and a runner that
follows them on fresh lab machines (a network namespace each, and a file system of their own:
``/etc`` a copy of this machine's, ``/root``, ``/run``, the daemons' state directories and
``/usr/local`` empty; ``/opt`` shared, as the wheel is installed once).

Every ``sh`` block of the document must say where it runs, so the document cannot carry a
command the test does not run.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

MARKER = re.compile(r"^<!--\s*(run on|packages on|copy)\s*:?\s*(.*?)\s*-->\s*$")
NETNS_EXEC = ("ip", "netns", "exec")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # "run", "packages" or "copy"
    machines: tuple[str, ...]  # run/packages: where; copy: the destinations ("machine:path")
    text: str = ""  # run: the block; packages: the block; copy: the source ("machine:path")
    outside: bool = False  # run: needs the package index (this machine's network)
    line: int = 0


class DocError(AssertionError):
    pass


def steps(markdown: str) -> list[Step]:
    """The document's steps in order; a DocError for a shell block without a marker."""
    out: list[Step] = []
    lines = markdown.splitlines()
    pending: tuple[str, str, int] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        fence = FENCE.match(line)
        if m:
            kind, rest = m.group(1), m.group(2)
            if kind == "copy":
                src, *dsts = rest.split()
                out.append(Step("copy", tuple(dsts), src, line=i + 1))
            else:
                pending = (kind, rest, i + 1)
        elif fence:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body = "\n".join(lines[i + 1 : j]) + "\n"
            if fence.group(1) == "sh":
                if pending is None:
                    raise DocError(f"line {i + 1}: a sh block without <!-- run on: ... -->")
                kind, rest, at = pending
                where, _, needs = rest.partition(";")
                step_kind = "run" if kind == "run on" else "packages"
                outside = "package index" in needs
                out.append(Step(step_kind, tuple(where.split()), body, outside, at))
            pending = None
            i = j
        i += 1
    return out


def packages(step: Step) -> list[str]:
    """The Debian packages an ``apt-get install`` block names."""
    words = step.text.split()
    return [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]


@dataclasses.dataclass
class Machine:
    name: str  # the document's name (site-a)
    ns: str  # the lab namespace it runs in
    root: Path  # its own file system's directories
    holder: subprocess.Popen[str] | None = None  # keeps its mount namespace


# Directories each machine has to itself (bind-mounted over the real ones), and their owners;
# /var/lib is an overlay of the real one (what a block creates there stays the machine's).
PRIVATE: dict[str, tuple[str, str, int]] = {
    "root": ("root", "root", 0o700),
    "run": ("root", "root", 0o755),
    "var/lib/mysql": ("mysql", "mysql", 0o755),
    "var/lib/etcd": ("etcd", "etcd", 0o700),
    "var/lib/bind": ("root", "bind", 0o775),
    "var/cache/bind": ("root", "bind", 0o775),
    "usr/local/bin": ("root", "root", 0o755),
    "usr/local/share": ("root", "root", 0o755),
}


class Follower:
    """Follows the steps on the machines: ``machines`` maps the document's names to lab
    namespaces; ``rewrite`` turns the document's text into the lab's (its addresses). Each
    machine is one network namespace and one mount namespace, kept by a holder process, so
    the daemons a block starts see the same files as the blocks after it."""

    def __init__(
        self,
        base: Path,
        machines: Mapping[str, str],
        rewrite: Callable[[str], str],
        shim: Path,
        say: Callable[[str], None] = print,
    ) -> None:
        self.base = base
        self.rewrite = rewrite
        self.say = say
        self.opt = base / "opt"
        self.opt.mkdir(parents=True, exist_ok=True)
        self.bin = base / "bin"
        self.bin.mkdir(exist_ok=True)
        shutil.copy(shim, self.bin / "systemctl")
        (self.bin / "systemctl").chmod(0o755)
        self.machines = {
            name: Machine(name, ns, base / "machines" / name) for name, ns in machines.items()
        }
        self.took: list[tuple[str, float]] = []
        for m in self.machines.values():
            self._prepare(m)

    def _prepare(self, m: Machine) -> None:
        m.root.mkdir(parents=True)
        subprocess.run(["cp", "-a", "/etc", str(m.root / "etc")], check=True)
        for name in ("hosts", "resolv.conf"):  # what ip netns exec would have shown
            mine = Path("/etc/netns") / m.ns / name
            if mine.exists():
                shutil.copy(mine, m.root / "etc" / name)
        (m.root / "etc" / "draas-node").write_text(m.name + "\n")
        for rel, (user, group, mode) in PRIVATE.items():
            d = m.root / rel
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, user, group)
            d.chmod(mode)
        for sub in ("state", "var-lib/upper", "var-lib/work"):
            (m.root / sub).mkdir(parents=True)
        r = m.root
        layers = f"lowerdir=/var/lib,upperdir={r / 'var-lib/upper'},workdir={r / 'var-lib/work'}"
        mounts = [
            f"mount --bind {r / 'etc'} /etc",
            f"mount -t overlay overlay -o {layers} /var/lib",
            *(f"mount --bind {r / rel} /{rel}" for rel in PRIVATE),
            f"mount --bind {self.opt} /opt",
        ]
        script = "set -e\n" + "\n".join(mounts) + "\necho ready\nexec sleep 86400\n"
        m.holder = subprocess.Popen(
            [
                *NETNS_EXEC,
                m.ns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
                script,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert m.holder.stdout is not None
        if m.holder.stdout.readline().strip() != "ready":
            raise DocError(f"{m.name}: its file system could not be made: {m.holder.stderr}")

    def close(self) -> None:
        """End the holders (the lab's down ends whatever the blocks started there)."""
        for m in self.machines.values():
            if m.holder is None:
                continue
            if m.holder.poll() is None:
                m.holder.kill()
            m.holder.communicate(timeout=10)  # reaps it and closes its pipes

    def run(self, step: Step, m: Machine, timeout_s: float = 600) -> str:
        script = self.base / "blocks" / f"{step.line:04d}-{m.name}.sh"
        script.parent.mkdir(exist_ok=True)
        script.write_text(self.rewrite(step.text))
        assert m.holder is not None
        # A block that needs the package index runs in this machine's network (lab machines
        # have no way out), with the lab machine's file system.
        enter = ["nsenter", f"--target={m.holder.pid}", "--mount"]
        if not step.outside:
            enter.append("--net")
        argv = [*enter, "--", "bash", "-c", f"cd /root && exec bash -e -o pipefail {script}"]
        env = {
            "PATH": f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "DRAAS_INSTALL_STATE": str(m.root / "state"),
        }
        t0 = time.monotonic()
        got = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        self.took.append((f"line {step.line} on {m.name}", time.monotonic() - t0))
        if got.returncode != 0:
            raise DocError(
                f"docs/install.md line {step.line}, on {m.name}: exit {got.returncode}\n"
                f"{got.stdout[-3000:]}\n{got.stderr[-3000:]}"
            )
        return got.stdout

    def path(self, spec: str) -> Path:
        name, _, path = spec.partition(":")
        return self.machines[name].root / _private(path)

    def copy(self, step: Step) -> None:
        src = self.path(step.text)
        for dst in step.machines:
            target = self.path(dst)
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True, symlinks=True)
            else:
                shutil.copy2(src, target)
            st = src.stat()
            os.chown(target, st.st_uid, st.st_gid)

    def follow(self, all_steps: Sequence[Step], installed: Callable[[str], bool]) -> dict[str, str]:
        """Every step in order; the output of the last block run on each machine."""
        last: dict[str, str] = {}
        for step in all_steps:
            if step.kind == "copy":
                self.say(f"install.md line {step.line}: copy {step.text} to {step.machines}")
                self.copy(step)
                continue
            if step.kind == "packages":
                missing = [p for p in packages(step) if not installed(p)]
                if missing:
                    raise DocError(f"line {step.line}: packages not on this machine: {missing}")
                continue
            for name in step.machines:
                self.say(f"install.md line {step.line}: on {name}")
                last[name] = self.run(step, self.machines[name])
        return last


def _private(path: str) -> str:
    """A path of a machine's file system, relative to its private directories."""
    rel = path.lstrip("/")
    for prefix in ("etc", *PRIVATE):
        if rel == prefix or rel.startswith(prefix + "/"):
            return rel
    if rel.startswith("var/lib/"):
        return "var-lib/upper/" + rel.removeprefix("var/lib/")
    raise DocError(f"{path}: not in a machine's own file system ({', '.join(PRIVATE)}, etc)")
