"""Bad input to the CLI is one clear line and a non-zero exit, never a traceback; a service
that never came back is an exit status, not 'RTO 0'; a closed pipe ends quietly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from draas.cli import main
from draas.errors import DraasError
from draas.measure.inputs import check_disaster_at, check_out, check_site_pattern, check_url

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "draas.toml")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--site-pattern", "("], "--site-pattern '(': not a regular expression"),
        (["--site-pattern", "site=.*"], "needs a group"),
        (["--out", "/nonexistent/x.jsonl"], "--out /nonexistent/x.jsonl: the directory"),
        (["http://[::1"], "URL 'http://[::1': Invalid IPv6 URL"),
        (["http://127.0.0.1:99999/"], "Port out of range"),
        (["ftp://127.0.0.1/"], "not an http(s) URL"),
        (["--disaster-at", "99999999999"], "--disaster-at 1e+11: must be a Unix time"),
    ],
)
def test_bad_rto_input_is_one_clear_line(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = [] if any(a.startswith(("http", "ftp")) for a in argv) else ["http://127.0.0.1:9/"]
    assert main(["rto", "--duration", "1", *argv, *urls]) == 2  # invalid input
    err = capsys.readouterr().err
    assert err.startswith("error: ") and said in err and "Traceback" not in err


def test_a_service_that_never_answered_is_a_failed_measurement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on loopback port 9: every request is refused.
    out = str(tmp_path / "r.jsonl")
    at = str(time.time())
    rc = main(
        ["-q", "rto", "--duration", "1", "--disaster-at", at, "--out", out, "http://127.0.0.1:9/"]
    )
    assert rc == 1
    got = capsys.readouterr()
    assert "never recovered" in got.out and "not answering when the measurement ended" in got.err


def test_the_checks_accept_what_is_right(tmp_path: Path) -> None:
    assert (
        check_url("https://keystone.example.org:5000/v3") == "https://keystone.example.org:5000/v3"
    )
    assert check_site_pattern(r"site=(\w+)") == r"site=(\w+)"
    assert check_out(tmp_path / "r.jsonl") == tmp_path / "r.jsonl"
    check_disaster_at(None, 10)
    check_disaster_at(946684800 + 1005.0, 10, now=946684800 + 1000.0)
    with pytest.raises(DraasError, match="between 2000"):
        check_disaster_at(5.0, 10, now=2e9)


def test_an_agent_that_is_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", EXAMPLE, "--agent", "notaurl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --agent: URL 'notaurl': not an http(s) URL")


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    cmd = [sys.executable, "-m", "draas.cli", "config", "check", "--skip-files", EXAMPLE]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first line (`| head -0`)
        err = proc.stderr.read().decode()
        assert proc.wait(30) == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_every_command_finds_the_default_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import draas.config

    monkeypatch.delenv("DRAAS_CONFIG", raising=False)
    default = tmp_path / "draas.toml"
    monkeypatch.setattr(draas.config, "DEFAULT_CONFIG", default)
    assert main(["config", "check", "--skip-files"]) == 2
    err = capsys.readouterr().err
    assert f"no configuration: give --config FILE, set DRAAS_CONFIG, or write {default}" in err
    default.write_text(Path(EXAMPLE).read_text())
    assert main(["config", "check", "--skip-files"]) == 0
    assert f"ok: {default} is valid" in capsys.readouterr().err
    # $DRAAS_CONFIG comes first; the status command reads the same file.
    monkeypatch.setenv("DRAAS_CONFIG", str(tmp_path / "other.toml"))
    assert main(["status", "--agent", "notaurl"]) == 2
    assert "other.toml" in capsys.readouterr().err


def test_the_catalog_tool_is_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["catalog", "--auth-url", "http://127.0.0.1:9/v3", "--password-file", "/nonexistent"]
    assert main([*argv, "--from", "http://a", "--to", "http://b"]) == 2
    assert "--password-file: cannot read /nonexistent" in capsys.readouterr().err
