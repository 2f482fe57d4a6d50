"""Command-line behaviour that needs no root."""

from __future__ import annotations

import os

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
