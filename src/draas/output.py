"""One ``--output table|json|yaml`` for the commands: the table is each command's own; JSON
and YAML print the same document an agent's API gives, and an error as ``{"error": ...,
"exit_status": N}`` on standard output, so that a script reads one stream."""

from __future__ import annotations

import argparse
import json
from typing import Any

FORMATS = ("table", "json", "yaml")


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=None,
        help="table (default), json or yaml; errors too",
    )


def wanted(args: argparse.Namespace) -> str:
    """The format asked for (the older --json means json)."""
    fmt = getattr(args, "output", None)
    if fmt:
        return str(fmt)
    return "json" if getattr(args, "json", False) else "table"


def dump(doc: Any, fmt: str) -> str:
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)).rstrip("\n")
    return json.dumps(doc, indent=2)


def dump_line(doc: Any, fmt: str) -> str:
    """One item of a stream (events): a JSON line, or a YAML list item."""
    if fmt == "yaml":
        return dump([doc], fmt)
    return json.dumps(doc)
