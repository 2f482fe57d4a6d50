"""One ``--output table|json|yaml`` for the commands: the table is each command's own; JSON
and YAML print the same document an agent's API gives, and an error as ``{"error": ...,
"exit_status": N}`` on standard output, so that a script reads one stream."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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


def requested(argv: Sequence[str]) -> str:
    """The format a command line asks for, read before parsing it (argparse's own errors
    come first): the last ``-o``/``--output`` given, ``--json`` for json; table otherwise, and
    when the last one given is not a format (that is the error to report)."""
    fmt = "table"
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output"):
            fmt = argv[i + 1] if i + 1 < len(argv) else "table"
        elif arg.startswith("--output="):
            fmt = arg.split("=", 1)[1]
        elif arg.startswith("-o") and not arg.startswith("--"):
            fmt = arg[2:]
        elif arg == "--json" and fmt == "table":
            fmt = "json"
    return fmt if fmt in FORMATS else "table"


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors follow ``--output``: under json or yaml, the
    error is the same document as any other error, on standard output (exit status 2)."""

    output = "table"  # set from the command line before parsing it (``requested``)

    def error(self, message: str) -> NoReturn:
        if Parser.output == "table":
            super().error(message)
        print(dump({"error": f"{self.prog}: {message}", "exit_status": 2}, Parser.output))
        sys.exit(2)
