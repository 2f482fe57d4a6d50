"""The three meters of a measured stretch of lab time, run in the client's host: the RTO meter
(web page and API through the service name), the write checker (Keystone projects created
through the service name) and the split-brain checker. The experiment and the fault tests
start them, inject, stop them, then read the figures."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from draas.errors import LabError
from draas.lab.components import keystone
from draas.lab.lab import Lab
from draas.lab.services import frontends_for
from draas.measure.meter import read_records
from draas.measure.rto import Summary, summarize
from draas.measure.writes import WriteReport, account, write_figures

WEB = "http://keystone.draas.test/"
API = "http://keystone.draas.test:5000/v3"
API_BASE = "http://keystone.draas.test:5000"
# The write checker: a write every third of a second on a fixed schedule (up to four in flight),
# so that while writes hang on a dead site (up to the writer's 2 s timeout) new ones are still
# tried on time: the write RTO is known to a third of a second (Keystone takes ~3 writes/s here).
WRITERS = 4
WRITE_EVERY_S = 0.33


class Meters:
    """``tag``: unique within the lab (names the processes and the write prefix); the files
    go to ``rundir``. ``split_brain=False`` for baselines, which hold no lease."""

    def __init__(
        self, lab: Lab, tag: str, rundir: Path, split_brain: bool = True, duration_s: float = 900
    ) -> None:
        from draas.lab.secrets import secret_file

        rundir.mkdir(parents=True, exist_ok=True)
        self.lab, self.rundir = lab, rundir
        self.prefix = f"x{tag}"
        self.requests = rundir / "requests.jsonl"
        self.meter = lab.spec(
            f"rto-{tag}",
            "client",
            [
                sys.executable,
                "-m",
                "draas.cli",
                "-q",
                "rto",
                WEB,
                API,
                "--expect-body",
                "",
                "--expect-body",
                "stable",
                "--interval",
                "0.1",
                "--timeout",
                "1",
                "--duration",
                str(duration_s),
                "--out",
                str(self.requests),
                "--json",
            ],
        )
        self.writer, self.writes = keystone.writer_spec(
            lab, f"writer-{tag}", API_BASE, self.prefix, duration_s, WRITE_EVERY_S, workers=WRITERS
        )
        self.checker = None
        self.samples = rundir / "splitbrain.jsonl"
        if split_brain:
            self.checker = lab.spec(
                f"splitbrain-{tag}",
                "client",
                [
                    sys.executable,
                    "-m",
                    "draas.lab.splitbrain",
                    "--config",
                    str(lab.run.path / "draas.toml"),
                    "--password-file",
                    str(secret_file(lab.run, "keystone-admin")),
                    "--out",
                    str(self.samples),
                    "--interval",
                    "0.5",
                    "--duration",
                    str(duration_s),
                ],
            )

    @property
    def names(self) -> list[str]:
        return [self.meter.name, self.writer.name] + (
            [self.checker.name] if self.checker is not None else []
        )

    def start(self) -> None:
        for spec in (self.meter, self.writer, self.checker):
            if spec is not None:
                self.lab.sup.launch(spec)

    def stop(self) -> None:
        for name in self.names:
            if self.lab.sup.state(name) != "exited":
                self.lab.sup.send(name, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name in self.names:
            while self.lab.sup.state(name) != "exited":
                if time.monotonic() > deadline:
                    raise LabError(f"{name} did not stop within 30 s of SIGTERM")
                time.sleep(0.1)
        if self.writes.exists():  # kept with the run's other files (the lab's go with it)
            shutil.copyfile(self.writes, self.rundir / "writes.jsonl")

    # -- the figures (after stop) ----------------------------------------------------------------
    def rto(self, t0: float, k: int = 3) -> Summary:
        return summarize(read_records(self.requests), t0, k=k)

    def write_log(self) -> list[dict[str, Any]]:
        if not self.writes.exists():
            return []
        return [json.loads(x) for x in self.writes.read_text().splitlines() if x.strip()]

    def writes_report(self, site: str) -> WriteReport:
        """The writes accounted against what ``site``'s database holds."""
        return account(self.write_log(), keystone.project_names(self.lab, site, self.prefix))

    def write_figures(self, t0: float) -> dict[str, float | None]:
        """``write_rto_s`` and ``write_downtime_s`` from ``t0`` (see ``write_figures``)."""
        return write_figures(self.write_log(), t0)

    def split_brain(self) -> list[dict[str, Any]] | None:
        """The split-brain instants (see ``draas.lab.splitbrain``); None without a checker."""
        from draas.lab.splitbrain import violations

        if self.checker is None:
            return None
        rows = (
            [json.loads(x) for x in self.samples.read_text().splitlines() if x.strip()]
            if self.samples.exists()
            else []
        )
        if not rows:
            raise LabError(f"the split-brain checker recorded nothing ({self.samples})")
        lab = self.lab
        sites = {h: lab.topo.host(h).address for h in ("primary", "dr")}
        fes = {fe: lab.topo.host(fe).address for fe in frontends_for(lab.settings.scheme)}
        return violations(rows, sites, fes)
