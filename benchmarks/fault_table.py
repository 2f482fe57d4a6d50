"""The fault matrix as a table: the figures each fault test wrote (tests/lab/test_faults.py,
one ``figures.json`` per fault) and the soak's, gathered into one Markdown table.

    .venv/bin/pytest -m lab tests/lab/test_faults.py tests/lab/test_soak.py
    .venv/bin/python benchmarks/fault_table.py --artifacts test-artifacts --out results/faults.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = [
    ("fault", "fault"),
    ("failovers", "failovers"),
    ("rto_s", "read RTO s"),
    ("write_rto_s", "write RTO s"),
    ("write_downtime_s", "write downtime s"),
    ("acked_writes", "acked writes"),
    ("lost_acked_writes", "lost acked"),
    ("split_brain_instants", "split-brain instants"),
    ("site_at_end", "site at end"),
]


def cell(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def rows(artifacts: Path, soak: Path | None = None) -> list[dict[str, Any]]:
    out = [json.loads(p.read_text()) for p in sorted((artifacts / "faults").glob("*/figures.json"))]
    soak = soak or artifacts / "soak" / "soak.json"
    if soak.exists():
        s = json.loads(soak.read_text())
        # no single disaster time in a soak: no RTO, only downtime
        minutes, loss, jitter = s["seconds"] / 60, s["loss_pct"], s["jitter_ms"]
        name = f"soak {minutes:g} min, {loss:g} % loss, {jitter:g} ms jitter"
        out.append({**s, "fault": name, "rto_s": None, "write_rto_s": None})
    return out


def table(found: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(t for _, t in COLUMNS) + " |"
    sep = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(cell(r.get(k)) for k, _ in COLUMNS) + " |" for r in found]
    return "\n".join([head, sep, *body]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", type=Path, default=Path("test-artifacts"))
    ap.add_argument("--soak", type=Path, help="a soak.json (default: the CI soak's artifacts)")
    ap.add_argument("--out", type=Path, default=Path("results/faults.md"))
    args = ap.parse_args()
    found = rows(args.artifacts, args.soak)
    if not found:
        ap.error(f"no figures under {args.artifacts}/faults: run tests/lab/test_faults.py first")
    text = table(found)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
