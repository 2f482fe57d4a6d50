"""docs/install.md, followed literally on fresh lab machines, ends with a passing drill.

The document's shell blocks run in order on the machines they name (each a network namespace
with a file system of its own, see ``installdoc``), with the document's addresses replaced by
the lab's. Two stand-ins, as the document says: ``systemctl`` (no systemd in the lab: the same
daemons from the same files, ``install_systemctl.py``) and the service (an HTTP answer on
port 5000 at each site where Keystone would be). The packages the document names must be
installed on this machine (scripts/setup installs them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from installdoc import Follower, Step, steps
from support import new_lab_name

from draas.lab.lab import Lab, LabSettings
from draas.lab.readiness import TcpReady

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "install.md"
# The document's machines, the lab's hosts they run on, and their addresses in each.
MACHINES = {"site-a": "primary", "site-b": "dr", "witness": "witness", "dns": "dns"}
DOC_ADDRESSES = {
    "site-a": "192.0.2.10",
    "site-b": "198.51.100.10",
    "witness": "203.0.113.30",
    "dns": "203.0.113.53",
}
SERVICE = (
    "import http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    '        body = b\'{"version": {"status": "stable"}}\'\n'
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer((ADDRESS, 5000), H).serve_forever()\n"
)


def test_every_shell_block_of_the_document_says_where_it_runs() -> None:
    got = steps(DOC.read_text())
    runs = [s for s in got if s.kind == "run"]
    assert {m for s in runs for m in s.machines} == set(MACHINES)
    assert runs[-1].machines == ("site-a",) and "draas drill" in runs[-1].text
    assert any(s.kind == "copy" for s in got) and any(s.kind == "packages" for s in got)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Removed after the lab is down (its daemons write there until then)."""
    base = Path(tempfile.mkdtemp(prefix="draas-install-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def lab(workdir: Path) -> Iterator[Lab]:
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(services=False))
        yield lab
    finally:
        lab.down()


def installed(package: str) -> bool:
    got = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True
    )
    return "install ok installed" in got.stdout


@pytest.fixture
def follower(lab: Lab, workdir: Path) -> Iterator[Follower]:
    lab_addr = {m: lab.topo.host(h).address for m, h in MACHINES.items()}

    def rewrite(text: str) -> str:
        for machine, doc_addr in DOC_ADDRESSES.items():
            text = text.replace(doc_addr, lab_addr[machine])
        return text

    f = Follower(
        workdir,
        {m: lab.ns(h) for m, h in MACHINES.items()},
        rewrite,
        Path(__file__).parent / "install_systemctl.py",
    )
    try:
        yield f
    finally:
        f.close()


def test_the_install_document_followed_on_fresh_machines_ends_with_a_passing_drill(
    lab: Lab, workdir: Path, follower: Follower
) -> None:
    lab_addr = {m: lab.topo.host(h).address for m, h in MACHINES.items()}
    wheel = build_wheel(workdir / "dist")
    for name in ("site-a", "site-b", "witness"):
        shutil.copy(wheel, follower.machines[name].root / "root")
    # What the document assumes is there: the service and its key directories.
    for machine in ("site-a", "site-b"):
        keys = follower.machines[machine].root / "etc" / "keystone"
        for d in ("fernet-keys", "credential-keys"):
            (keys / d).mkdir(parents=True, mode=0o700)
        if machine == "site-a":
            for d, key in (("fernet-keys", "0"), ("credential-keys", "0")):
                (keys / d / key).write_text(f"{d}-secret-of-site-a\n")
                (keys / d / key).chmod(0o600)
        host = MACHINES[machine]
        code = SERVICE.replace("ADDRESS", repr(lab_addr[machine]))
        lab.sup.launch(
            lab.spec(
                f"service-{host}",
                host,
                [sys.executable, "-c", code],
                ready=TcpReady(lab_addr[machine], 5000),
            )
        )

    last = follower.follow(steps(DOC.read_text()), installed)

    drill = last["site-a"]
    print(drill)
    assert "FAIL" not in drill
    for check in ("quorum", "dr-eligible", "dns-credentials"):
        assert any(check in line and "pass" in line for line in drill.splitlines()), check
    status = json.loads(
        follower.run(
            Step("run", ("site-a",), "draas status -o json\n"), follower.machines["site-a"]
        )
    )
    assert status["active"]["site"] == "primary", status
    # The key directories travelled to the standby over the agents' API (TLS).
    for d in ("fernet-keys", "credential-keys"):
        copied = follower.machines["site-b"].root / "etc" / "keystone" / d / "0"
        assert copied.read_text() == f"{d}-secret-of-site-a\n"
    print("install.md, per block:")
    for what, took in follower.took:
        print(f"  {what}: {took:.1f} s")
    print(f"total {sum(t for _, t in follower.took):.1f} s")


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("draas-*.whl")
    return wheel
