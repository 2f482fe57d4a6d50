"""Command-line behaviour that needs no root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from draas.cli import main


def test_lab_up_without_root_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["lab", "--lab", "nonroot", "up"]) == 1
    err = capsys.readouterr().err
    assert "draas lab up needs root" in err
    assert "CAP_NET_ADMIN" in err


def test_unknown_disaster_is_refused_with_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["lab", "disaster", "meteor"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'meteor'" in err and "power-off" in err


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "config" in out and "lab" in out


EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "draas.toml")


@pytest.mark.parametrize("command", [["status"], ["events"], ["drill"], ["failback", "--yes"]])
def test_operator_commands_without_a_config_say_how_to_give_one(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import draas.config

    monkeypatch.delenv("DRAAS_CONFIG", raising=False)
    monkeypatch.setattr(draas.config, "DEFAULT_CONFIG", Path("/nonexistent/draas.toml"))
    assert main(command) == 2  # invalid input: no configuration
    said = "no configuration: give --config FILE, set DRAAS_CONFIG, or write /nonexistent/"
    assert said in capsys.readouterr().err


def test_an_unreachable_agent_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        main(["status", "--config", EXAMPLE, "--agent", f"http://127.0.0.1:{port}"]) == 4
    )  # unreachable
    err = capsys.readouterr().err
    assert f"no agent answered: http://127.0.0.1:{port}" in err and "refused" in err


def test_switchover_to_an_unknown_site_is_refused_before_asking_anyone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["switchover", "--config", EXAMPLE, "--to", "moon", "--yes"]) == 2
    assert "--to 'moon': not a site; sites: ['dr', 'primary']" in capsys.readouterr().err
    assert main(["switchover", "--config", EXAMPLE, "--to", "moon", "-y"]) == 2  # -y: --yes
    assert "--to 'moon': not a site" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["switchover"], "the following arguments are required: --to"),
        (["events", "--limit", "many"], "argument --limit: invalid int value: 'many'"),
        (["status", "--colour"], "unrecognized arguments: --colour"),
        (["rto", "http://127.0.0.1:9/"], "the following arguments are required: --duration"),
        (["agent", "--config", "x.toml"], "the following arguments are required: --node"),
        (["lab", "up", "--scheme", "carrier-pigeon"], "invalid choice: 'carrier-pigeon'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_wrong_arguments_give_a_clear_message_and_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert said in capsys.readouterr().err
