"""The lab's run directory: what a lab made, so that any later command (or a teardown after a
crash) knows it. Everything is plain JSON, written atomically.

    /run/draas-lab/<lab>/
        state.json          settings, phase, active impairments
        processes/<n>.json  one record per supervised process (spec, pid, start time)
        logs/<n>.log        output of each supervised process
        events.jsonl        timestamped lab events (disasters injected and reverted)
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from draas.errors import InvalidInput

DEFAULT_RUN_ROOT = Path("/run/draas-lab")
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")


def run_root() -> Path:
    return Path(os.environ.get("DRAAS_LAB_RUN_ROOT", str(DEFAULT_RUN_ROOT)))


def check_lab_name(name: str) -> str:
    if not _LAB_NAME.match(name):
        raise InvalidInput(
            f"lab name {name!r} is not allowed: use 1-10 characters, a-z and 0-9, "
            "starting with a letter"
        )
    return name


def write_json(path: Path, doc: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class RunDir:
    """Paths and records of one lab's run directory."""

    def __init__(self, lab: str, root: Path | None = None) -> None:
        self.lab = check_lab_name(lab)
        self.path = (root or run_root()) / lab

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def processes(self) -> Path:
        return self.path / "processes"

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> dict[str, Any]:
        return read_json(self.state_file, default={}) or {}

    def save(self, state: dict[str, Any]) -> None:
        write_json(self.state_file, state)

    def update(self, **changes: Any) -> dict[str, Any]:
        state = self.load()
        state.update(changes)
        self.save(state)
        return state

    def record_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one timestamped event (wall clock, seconds) to events.jsonl."""
        event = {"ts": round(time.time(), 6), "lab": self.lab, "kind": kind, **fields}
        self.path.mkdir(parents=True, exist_ok=True)
        with self.events_file.open("a") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")
        return event

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.events_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]
