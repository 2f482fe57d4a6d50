"""Random arguments to the operator's commands: whatever is typed, the CLI answers with one
clear line and an exit status from the documented table, never a traceback. Every address in
the configuration used is a closed port on loopback, so nothing here reaches a real host."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from draas import exitcodes
from draas.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = {
    exitcodes.OK,
    exitcodes.FAILED,
    exitcodes.INVALID,
    exitcodes.REFUSED,
    exitcodes.UNREACHABLE,
    exitcodes.UNKNOWN,
    exitcodes.ATTENTION,
}

VALUES = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "1e309",
        "nan",
        "3",
        "999999",
        "x",
        "moon",
        "dr",
        "primary",
        "http://127.0.0.1:9/",
        "notaurl",
        "http://[::1",
        "/nonexistent/file",
        "--",
        "é",
        "(",
        "json",
        "yaml",
    ]
)
# Per command: words it starts with (subcommand, positional), and its flags, each with whether
# it takes a value; and one it has not. Never --yes for `disaster`: it acts on this machine.
Flags = dict[str, bool]
MOVE: Flags = {"-y": False, "--no-wait": False, "--direct": False, "--agent": True}
COMMON: Flags = {"--agent": True, "--timeout": True, "--config": True, "-o": True}
COMMANDS: dict[str, tuple[list[str], Flags]] = {
    "status": ([], {"--json": False, "--watch": True, "--count": True, **COMMON}),
    "events": (
        [],
        {"--limit": True, "--run": True, "--node": True, "--for": True, "--json": False, **COMMON},
    ),
    "drill": ([], {"--out": True, "--json": False, **COMMON}),
    "switchover": ([], {"--to": True, **MOVE}),
    "failover": ([], {"--force": False, "--without-quorum": False, **MOVE}),
    "failback": ([], MOVE),
    "config": (["check"], {"--skip-files": False, "-o": True}),
    "disaster": (
        ["process-kill", "process-hang", "network-failure", "power-off"],
        {"--pid": True, "--pidfile": True, "--interface": True, "--duration": True},
    ),
    "catalog": (
        [],
        {"--auth-url": True, "--password-file": True, "--from": True, "--to": True},
    ),
    "pause": ([], {"--reason": True, "--for": True, **COMMON}),
    "resume": ([], COMMON),
    "model": (
        [],
        {
            "--loss-pct": True,
            "--jitter-ms": True,
            "--rtt-ms": True,
            "--client-ttl-behaviour": True,
            "--rate": True,
            "--config": True,
            "-o": True,
        },
    ),
    "rto": (["http://127.0.0.1:9/"], {"--interval": True, "--site-pattern": True, "--out": True}),
}


def loopback_config(tmp: Path) -> Path:
    """The example configuration with every address on loopback (nothing listens there on
    the ports it names) and plain-HTTP agents."""
    text = (ROOT / "examples" / "draas.toml").read_text()
    text = re.sub(r"\b(192\.0\.2|198\.51\.100|203\.0\.113)\.0/24\b", "127.0.0.0/8", text)
    found = re.findall(r"\b(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d+\b", text)
    for i, address in enumerate(dict.fromkeys(found)):
        text = re.sub(rf"\b{re.escape(address)}\b", f"127.0.0.{i + 2}", text)
    for secret in re.findall(r'"(/etc/draas/[^"]+)"', text):
        mine = tmp / Path(secret).name
        mine.write_text("t0ken\n")
        mine.chmod(0o600)
        text = text.replace(f'"{secret}"', f'"{mine}"')
    text = re.sub(r"(?m)^tls_cert_file = .*$", "insecure_key_transfer = true", text)
    text = re.sub(r"(?m)^tls_(key|ca)_file = .*$", "", text)
    path = tmp / "draas.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return loopback_config(tmp_path_factory.mktemp("cli"))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    starts, flags = COMMANDS[command]
    argv = [command]
    positional: bool = draw(st.booleans())
    if starts and positional:
        argv.append(draw(st.sampled_from(starts)))
    for _ in range(draw(st.integers(0, 4))):
        flag = draw(st.sampled_from([*sorted(flags), "--colour"]))
        argv.append(flag)
        if flags.get(flag) and draw(st.integers(0, 9)) > 0:
            argv.append(draw(VALUES))
    if command == "rto":  # a measurement, when valid, lasts one second
        argv += ["--duration", "1"]
    return argv


@settings(
    max_examples=int(os.environ.get("DRAAS_CLI_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_any_arguments_give_one_clear_line_and_a_documented_status(
    argv: list[str],
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRAAS_CONFIG", str(config))
    monkeypatch.chdir(config.parent)  # rto writes its requests to the working directory
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)  # nobody to ask: refuse
    if argv[0] == "disaster":
        assert "--yes" not in argv and "-y" not in argv
    if argv[0] == "config" and "check" in argv:
        argv = [*argv, "--skip-files"]  # the example's secret files are not on this machine
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out, (argv, err)
    assert rc in DOCUMENTED, (argv, rc, err)
    if rc in (exitcodes.OK, exitcodes.ATTENTION):
        return
    given = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-o"]
    fmt = given[-1] if given else "table"  # the last one counts
    if fmt == "table" and "--json" in argv:
        fmt = "json"  # the older flag
    if fmt == "json" and out.strip():
        doc = json.loads(out)  # the error as a document, on stdout (argparse's own too)
        assert doc["exit_status"] == rc and doc["error"], doc
    elif fmt == "yaml" and out.strip():
        doc = yaml.safe_load(out)
        assert doc["exit_status"] == rc and doc["error"], doc
    else:
        said = [line for line in err.splitlines() if "error" in line]
        assert said, (argv, rc, err)  # the reason, on stderr


def test_the_exit_status_table_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert exitcodes.TABLE in text
    for code in DOCUMENTED | {exitcodes.INTERRUPTED}:
        assert re.search(rf"(?m)^  {code}\s", text), code
    ops = (ROOT / "docs" / "operations.md").read_text()
    assert exitcodes.TABLE.split("\n", 1)[1] in ops  # the same table in the docs


@pytest.mark.parametrize(
    ("argv", "fmt"),
    [
        (["status", "--timeout", "abc", "-o", "json"], "json"),
        (["status", "-o", "yaml", "--bogus"], "yaml"),
        (["events", "--output=json", "--limit", "x"], "json"),
        (["status", "-ojson", "--count", "0"], "json"),
    ],
)
def test_a_usage_error_follows_the_output_format(
    argv: list[str], fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own errors (a bad value, an unknown flag) are the same document as any other
    error under -o json|yaml, on standard output: a script reads one stream."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    doc = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert exc.value.code == 2 and doc["exit_status"] == 2, (out, err)
    assert doc["error"].startswith("draas") and err == ""
    with pytest.raises(SystemExit):
        main(["status", "-o", "xml"])  # not a format: argparse's usage line, on stderr
    out, err = capsys.readouterr()
    assert out == "" and "invalid choice: 'xml'" in err
