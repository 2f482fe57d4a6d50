"""The man page and the bash completion come from the parser: every command and flag is in
them, and the completion script works in a real bash."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from draas import exitcodes
from draas.cli import build_parser, main
from draas.clidocs import commands, options


def roff(text: str) -> str:
    return text.replace("-", "\\-")


def test_the_man_page_names_every_command_flag_and_exit_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["man"]) == 0
    page = capsys.readouterr().out
    assert page.startswith(".TH DRAAS 1 ")
    leaves = 0
    for words, _, sub in commands(build_parser()):
        if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            continue  # a group of subcommands: each has its own section
        leaves += 1
        assert ".SS " + roff("draas " + " ".join(words)) + "\n" in page, words
        for a in options(sub):
            for flag in a.option_strings:
                assert "\\fB" + roff(flag) + "\\fR" in page, (words, flag)
    assert leaves > 20
    for line in exitcodes.TABLE.splitlines()[1:]:
        assert roff(line) in page


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after ``draas WORDS`` (the last word being completed)."""
    argv = " ".join(f"'{w}'" for w in ("draas", *words))
    got = subprocess.run(
        [
            "bash",
            "-c",
            f"source {script}; COMP_WORDS=({argv}); COMP_CWORD={len(words)}; _draas; "
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return got.stdout.split()


def test_bash_completes_commands_subcommands_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "draas.bash"
    script.write_text(capsys.readouterr().out)
    assert {"status", "pause", "resume", "switchover"} <= set(complete(script, ""))
    assert complete(script, "sta") == ["status"]
    assert complete(script, "status", "--agent", "http://x", "--j") == ["--json"]
    assert "check" in complete(script, "config", "")
    assert "--reason" in complete(script, "pause", "--")
    assert "power-off" in complete(script, "lab", "disaster", "")
