"""What every benchmark does at the end: write flat JSON to --out and print a short table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result) + 2
    print(f"{'figure':<{width}} value")
    for k, v in result.items():
        print(f"{k:<{width}} {v}")
    print(f"written to {out}")
