"""No command line is ever built as a string for a shell (the original system did this with
values from its config): every process is started from an argument list. Checked on the
source's syntax tree, so a new call site cannot slip in."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "draas"
SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "dash", "zsh"}


def offences(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"line {node.lineno}: shell={ast.unparse(kw.value)}")
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and (f.value.id, f.attr) in SHELL_CALLS
            ):
                found.append(f"line {node.lineno}: {f.value.id}.{f.attr}()")
        if (
            isinstance(node, ast.List)
            and len(node.elts) >= 2
            and all(isinstance(e, ast.Constant) for e in node.elts[:2])
        ):
            first, second = (e.value for e in node.elts[:2])  # type: ignore[attr-defined]
            if first in SHELLS and second == "-c":
                found.append(f"line {node.lineno}: [{first!r}, '-c', ...]")
    return found


def test_no_source_file_starts_a_shell() -> None:
    bad = {
        str(p.relative_to(SRC)): offences(ast.parse(p.read_text()))
        for p in sorted(SRC.rglob("*.py"))
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_check_would_catch_each_form() -> None:
    code = (
        'import os, subprocess\nsubprocess.run("ls " + x, shell=True)\nos.system(cmd)\n'
        'subprocess.run(["sh", "-c", cmd])\nsubprocess.run(["ls", x])\n'
    )
    assert len(offences(ast.parse(code))) == 3
