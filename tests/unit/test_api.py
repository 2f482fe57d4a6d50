"""The agent's control API on loopback, backed by the in-memory store: commands need the
right token and are refused (changing nothing) when the state does not allow them; read-only
endpoints honour api.read_networks; events page and filter; metrics and the OpenAPI document
are served; a bad SIGHUP reload keeps the running config; schemathesis finds no server error."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from draas.agent.daemon import Agent
from draas.agent.openapi import document
from draas.apiclient import ApiClient
from draas.clock import FakeClock
from draas.config import load_config
from draas.coordination import DatabaseReport, Event, Observation, Seen
from draas.coordination.memory import MemoryStore
from draas.errors import ApiError, ConfigError, DraasError
from draas.testkit import event

CONFIG = """
scheme = "frontend"
[service]
dns_name = "keystone.draas.test."
[sites.primary]
role = "primary"
address = "127.0.0.2"
database = {{ host = "127.0.0.2", password_file = "{token_file}" }}
[sites.dr]
role = "dr"
address = "127.0.0.3"
database = {{ host = "127.0.0.3", password_file = "{token_file}" }}
[[nodes]]
name = "site-a"
role = "site"
site = "primary"
address = "127.0.0.2"
[[nodes]]
name = "site-b"
role = "site"
site = "dr"
address = "127.0.0.3"
[[nodes]]
name = "fe-a"
role = "frontend"
address = "127.0.0.4"
[[nodes]]
name = "witness"
role = "witness"
address = "127.0.0.1"
api_port = {port}
[coordination]
backend = "memory"
[api]
token_file = "{token_file}"
read_networks = {networks}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    tmp: Path,
    networks: str = '["127.0.0.0/8"]',
    token: str = "t" * 24,
    mode: int = 0o600,
    port: int | None = None,
) -> Path:
    token_file = tmp / "api-token"
    token_file.write_text(token + "\n")
    token_file.chmod(mode)
    path = tmp / "draas.toml"
    path.write_text(
        CONFIG.format(port=port or free_port(), token_file=token_file, networks=networks)
    )
    return path


@dataclass
class Served:
    url: str
    token: str
    store: MemoryStore
    agent: Agent
    config: Path

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()


def serve(config: Path, store: MemoryStore) -> tuple[Served, Any]:
    cfg = load_config(config)
    agent = Agent(cfg, "witness", store, config_path=str(config), serve_api=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    node = agent.node
    assert agent.api is not None
    asyncio.run_coroutine_threadsafe(agent.api.start(node.address, node.api_port), loop).result(10)

    def stop() -> None:
        assert agent.api is not None
        asyncio.run_coroutine_threadsafe(agent.api.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

    token = (cfg.api.token_file.read_text().strip()) if cfg.api.token_file else ""
    return Served(f"http://127.0.0.1:{node.api_port}", token, store, agent, config), stop


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Served]:
    store = MemoryStore(FakeClock())
    served, stop = serve(write_config(tmp_path), store)
    yield served
    stop()


COMMANDS = [
    ("/v1/switchover", {"to": "dr"}),
    ("/v1/failover", {}),
    ("/v1/failback", {}),
    ("/v1/failover", {"force": True}),
    ("/v1/drill", {}),
    ("/v1/pause", {"reason": "patching"}),
    ("/v1/resume", {}),
]


@pytest.mark.parametrize(("path", "body"), COMMANDS)
def test_a_command_without_the_right_token_is_refused_and_changes_nothing(
    api: Served, path: str, body: dict[str, Any]
) -> None:
    for token in (None, "wrong-" + api.token, api.token[:-1]):
        status, doc = api.call("POST", path, body, token=token)
        assert status == 401, (token, doc)
        assert "token" in doc["error"]
    assert api.store.events() == [] and api.store.active() is None


def test_commands_the_state_does_not_allow_are_refused_with_the_reason(api: Served) -> None:
    status, doc = api.call("POST", "/v1/switchover", {"to": "dr"}, token=api.token)
    assert status == 409 and "no site holds the active record" in doc["error"]
    status, doc = api.call("POST", "/v1/failover", {}, token=api.token)
    assert status == 409 and "quorum does not confirm" in doc["error"]
    api.store.take_active("primary", "site-a", 0, 30)
    status, doc = api.call("POST", "/v1/failover", {"force": True}, token=api.token)
    assert status == 409 and "still renews the lease" in doc["error"]
    status, doc = api.call("POST", "/v1/switchover", {"to": "primary"}, token=api.token)
    assert status == 409 and "already active" in doc["error"]
    status, doc = api.call("POST", "/v1/failback", {}, token=api.token)
    assert status == 409 and "already active" in doc["error"]
    assert api.store.events() == [] and api.store.active().epoch == 1  # type: ignore[union-attr]


def test_bad_command_input_names_the_field_and_what_is_allowed(api: Served) -> None:
    cases = [
        ({"to": "moon"}, "field 'to': 'moon' is not a site; allowed: ['dr', 'primary']"),
        ({}, "field 'to': None is not a site"),
        ({"to": 3}, "field 'to': 3 is not a str"),
        ({"to": "dr", "x": 1}, "unknown field 'x'"),
        (b"{", "not JSON"),
        (b"[1]", "must be a JSON object"),
    ]
    for body, said in cases:
        status, doc = api.call("POST", "/v1/switchover", body, token=api.token)
        assert status == 400 and said in doc["error"], (body, doc)
    status, doc = api.call("POST", "/v1/failover", {"force": "yes"}, token=api.token)
    assert status == 400 and "field 'force': 'yes' is not a bool" in doc["error"]
    assert api.store.events() == []


def test_an_accepted_command_answers_with_its_event_and_run(api: Served) -> None:
    api.store.take_active("primary", "site-a", 0, 30)
    status, doc = api.call("POST", "/v1/switchover", {"to": "dr"}, token=api.token)
    assert status == 202, doc
    assert doc["run"] == "switchover-dr-from-e1" and doc["target"] == "dr"
    stored = {e.id: e for e in api.store.events()}
    assert stored[doc["event"]].outcome == "accepted"
    assert stored[doc["event"]].run == "switchover-dr-from-e1"


def test_events_filter_and_page(api: Served) -> None:
    for i in range(7):
        api.store.append_event(
            event(f"failover-dr-from-e{i % 2}", f"s{i}", "done", 100.0 + i, node="site-b")
        )
    status, doc = api.call("GET", "/v1/events?run=failover-dr-from-e1&limit=2")
    assert status == 200 and [e["step"] for e in doc["events"]] == ["s1", "s3"]
    status, doc2 = api.call("GET", f"/v1/events?run=failover-dr-from-e1&after={doc['next']}")
    assert [e["step"] for e in doc2["events"]] == ["s5"] and doc2["next"] is None
    status, doc = api.call("GET", "/v1/events?since=105")
    assert [e["step"] for e in doc["events"]] == ["s5", "s6"]
    status, doc = api.call("GET", "/v1/events?last=2")
    assert [e["step"] for e in doc["events"]] == ["s5", "s6"] and doc["next"] is None
    status, doc = api.call("GET", "/v1/events?run=failover-dr-from-e0&last=1")
    assert [e["step"] for e in doc["events"]] == ["s6"]
    for bad, said in (
        ("limit=0", "limit='0'"),
        ("limit=x", "limit='x'"),
        ("since=soon", "since='soon'"),
        ("colour=red", "unknown query"),
        ("last=0", "last='0'"),
    ):
        status, doc = api.call("GET", f"/v1/events?{bad}")
        assert status == 400 and said in doc["error"], bad


def test_status_metrics_dashboard_and_openapi_are_served(api: Served) -> None:
    api.store.take_active("primary", "site-a", 0, 30)
    api.store.claim_controller("witness", 30)
    report = DatabaseReport("replica", True, lag_s=0.4)
    api.store.publish(Observation("site-b", 0.0, {"primary": Seen("up", 0)}, database=report), 30)
    api.agent.control.lag_duty()  # the agent's loop samples the lag every few seconds
    for step, outcome in (
        ("no-holder", "raised"),
        ("unprotected", "raised"),
        ("no-holder", "cleared"),
    ):
        api.store.append_event(
            Event(
                ts=1.0,
                node="witness",
                runbook="alert",
                run=f"alert-{step}",
                step=step,
                outcome=outcome,
                detail=f"why {step}",
            )
        )
    status, st = api.call("GET", "/v1/status")
    assert st["alerts"] == {"unprotected": "why unprotected"}
    assert status == 200 and st["active"] == {"site": "primary", "epoch": 1, "holder": "site-a"}
    assert [row[1:] for row in st["lag_history"]] == [["dr", 0.4]]
    assert st["sites"][1]["database"]["lag_s"] == 0.4 and "dr replicating" in st["summary"]
    status, text = api.call("GET", "/metrics")
    assert status == 200
    assert 'draas_site_up{observer="site-b",site="primary"} 1.0' in text
    assert 'draas_replication_lag_seconds{site="dr"} 0.4' in text
    assert "draas_active_epoch 1.0" in text and "draas_failovers_total 0.0" in text
    assert 'draas_controller{node="witness"} 1.0' in text and st["controller"] == "witness"
    assert 'draas_alert{name="unprotected"} 1.0' in text and "no-holder" not in text
    assert 'draas_site_role{home="true",site="primary",state="active"} 1.0' in text
    assert 'draas_site_role{home="false",site="dr",state="standby"} 1.0' in text
    status, page = api.call("GET", "/")
    assert status == 200 and "<title>draas dashboard</title>" in page
    status, doc = api.call("GET", "/v1/openapi.json")
    assert status == 200 and doc == json.loads(json.dumps(document()))


def test_the_keys_are_served_only_over_tls_and_with_the_token(api: Served, tmp_path: Path) -> None:
    status, body = api.call("GET", "/v1/keys", token=api.token)
    assert status == 403 and "only over TLS" in body["error"]
    # A lab on one machine may say so explicitly; the token is still needed.
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "insecure_key_transfer = true\n")
    lab, stop = serve(config, MemoryStore(FakeClock()))
    try:
        assert lab.call("GET", "/v1/keys")[0] == 401
        assert lab.call("GET", "/v1/keys", token="wrong-token-wrong-token")[0] == 401
        status, body = lab.call("GET", "/v1/keys", token=lab.token)
        assert status == 200 and body == {"directories": []}  # the witness holds no keys
        status, body = lab.call("GET", "/v1/keys/0", token=lab.token)
        assert status == 400 and "this site has 0" in body["error"]
    finally:
        stop()


def test_read_endpoints_outside_read_networks_are_refused(tmp_path: Path) -> None:
    served, stop = serve(write_config(tmp_path, networks='["198.18.0.0/15"]'), MemoryStore())
    try:
        for path in ("/v1/status", "/v1/events", "/metrics", "/"):
            status, doc = served.call("GET", path)
            assert status == 403 and "not in api.read_networks" in doc["error"], path
    finally:
        stop()


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, mode=0o644)
    with pytest.raises(ConfigError, match="readable by everyone"):
        Agent(load_config(config), "witness", MemoryStore(), serve_api=True)


def test_sighup_with_a_bad_config_keeps_the_running_one(api: Served) -> None:
    before = api.agent.cfg
    text = api.config.read_text()
    api.config.write_text(text.replace('role = "witness"', 'role = "umpire"'))
    said = api.agent.reload()
    assert "REFUSED" in said and "umpire" in said and api.agent.cfg is before
    token_file = api.config.parent / "api-token"
    api.config.write_text(text)
    token_file.write_text("n" * 24 + "\n")
    api.config.write_text(text + '[timings]\npreset = "safe"\n')
    said = api.agent.reload()
    assert said.startswith("reloaded") and api.agent.cfg.timings.preset == "safe"
    status, _ = api.call("POST", "/v1/failback", {}, token=api.token)
    assert status == 401  # the old token no longer works
    status, _ = api.call("POST", "/v1/failback", {}, token="n" * 24)
    assert status == 409  # the new one does (and failback is refused: nothing is active)


SCHEMA = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = MemoryStore()
    store.take_active("primary", "site-a", 0, 3600)  # switchover/failback get planned
    served, stop = serve(write_config(tmp_path_factory.mktemp("fuzz")), store)
    yield served
    stop()


@SCHEMA.parametrize()
def test_no_request_the_document_allows_makes_the_server_fail(case: Any, fuzzed: Served) -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1")
    case.call_and_validate(
        base_url=fuzzed.url,
        checks=[not_a_server_error],
        headers={"Authorization": f"Bearer {fuzzed.token}"},
    )


def test_with_a_certificate_the_api_speaks_tls_and_the_cli_verifies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    from draas.cli import main

    cert, key = tmp_path / "agent.pem", tmp_path / "agent.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    config = write_config(tmp_path)
    config.write_text(
        config.read_text() + f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
        f'tls_ca_file = "{cert}"\n'
    )
    served, stop = serve(config, MemoryStore())
    try:
        with pytest.raises(OSError):  # plain HTTP gets no answer (the connection is dropped)
            urllib.request.urlopen(served.url + "/v1/health", timeout=5).read()
        assert (
            main(
                [
                    "status",
                    "--config",
                    str(config),
                    "--agent",
                    served.url.replace("http:", "https:"),
                ]
            )
            in (0, 6)  # answered: healthy, or ALERTs (an empty store has no holder)
        )
        assert "as seen by witness" in capsys.readouterr().out
    finally:
        stop()


def test_draas_events_prints_the_newest_then_follows(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    from draas.cli import main

    for i in range(5):
        api.store.append_event(event(f"r{i}", "s", "done", 100.0 + i, node="n"))
    assert main(["events", "--config", str(api.config), "--agent", api.url, "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[2] for ln in lines] == ["r3", "r4"]
    later = threading.Timer(
        0.5,
        lambda: api.store.append_event(event("r-new", "s", "done", 200.0, node="n")),
    )
    later.start()
    argv = [
        "events",
        "--config",
        str(api.config),
        "--agent",
        api.url,
        "--limit",
        "1",
        "--follow",
        "--for",
        "1.5",
        "--json",
    ]
    assert main(argv) == 0
    runs = [json.loads(ln)["run"] for ln in capsys.readouterr().out.splitlines()]
    assert runs == ["r4", "r-new"]
    # The API's filters, from the command line.
    api.store.append_event(event("r-fail", "promote", "failed", 201.0, node="m"))
    base = ["events", "--config", str(api.config), "--agent", api.url, "--json"]
    for flags, want in (
        (["--node", "m"], ["r-fail"]),
        (["--outcome", "failed"], ["r-fail"]),
        (["--step", "s", "--limit", "2"], ["r4", "r-new"]),
    ):
        assert main(base + flags) == 0
        got = [json.loads(ln)["run"] for ln in capsys.readouterr().out.splitlines()]
        assert got == want, flags


def test_a_command_from_the_cli_follows_its_run_and_reports_the_failed_step(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens at the sites' database addresses: the switchover is accepted, its
    first step fails, and the CLI says so with a non-zero exit."""
    from draas.cli import main

    api.store.take_active("primary", "site-a", 0, 3600)
    argv = ["switchover", "--to", "dr", "--yes", "--config", str(api.config), "--agent", api.url]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "switchover accepted by http://127.0.0.1" in captured.out
    assert "switchover-dr-from-e1 catch-up started" in captured.out
    assert "error: switchover-dr-from-e1 failed at step catch-up: " in captured.err
    assert "cannot connect to MariaDB" in captured.err
    assert api.store.active().site == "primary"  # type: ignore[union-attr]


def test_a_second_agent_for_the_same_node_says_so(api: Served) -> None:
    """The first agent holds the node's API port: the second stops with one clear line
    (before it does anything else: the API is bound before any task starts)."""
    cfg = load_config(api.config)
    second = Agent(cfg, "witness", api.store, config_path=str(api.config), serve_api=True)
    assert second.api is not None
    node = second.node
    with pytest.raises(DraasError, match="port .* is in use: an agent for this node is already"):
        asyncio.run(second.api.start(node.address, node.api_port))


def test_status_moves_past_an_agent_that_answers_404_and_past_silent_ones(api: Served) -> None:
    """Two agents that accept a connection and never answer cost the --timeout in all, not
    each; a 404 (not an agent's answer) sends the CLI to the next agent."""
    silent = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # connections complete in the backlog; nothing is ever read or answered
        silent.append(s)

    class NotAnAgent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404, "no such page")

        def log_message(self, *args: Any) -> None:
            return None

    other = http.server.HTTPServer(("127.0.0.1", 0), NotAnAgent)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        cfg = load_config(api.config)
        client = ApiClient(cfg, timeout_s=2.0)
        client.urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in silent]
        t0 = time.monotonic()
        with pytest.raises(ApiError, match="no agent answered") as info:
            client.get("/v1/status")
        assert time.monotonic() - t0 < 3.0, "the timeout is for all the agents, not each"
        assert "timed out" in str(info.value)
        client = ApiClient(cfg, timeout_s=5.0)
        client.urls = [f"http://127.0.0.1:{other.server_address[1]}", api.url]
        assert client.get("/v1/status")["node"] == "witness" and client.used == api.url
    finally:
        other.shutdown()
        other.server_close()
        for s in silent:
            s.close()


def test_pause_and_resume_from_the_cli_are_shown_and_recorded(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    from draas.cli import main

    for body, said in (
        ({}, "field 'reason' is required"),
        ({"reason": "  "}, "reason: empty"),
        ({"reason": "x", "for_s": 5}, "for_s: 5; allowed from 10 to 604800 seconds"),
        ({"reason": "x", "for_s": "1h"}, "field 'for_s': '1h' is not a float"),
    ):
        status, doc = api.call("POST", "/v1/pause", body, token=api.token)
        assert status == 400 and said in doc["error"], doc
    assert api.store.pause() is None  # nothing half-changed
    argv = ["--config", str(api.config), "--agent", api.url]
    assert main(["pause", *argv, "--reason", "patching the primary", "--for", "2h"]) == 0
    out = capsys.readouterr().out
    assert "automatic action paused for 7200 s" in out and "patching the primary" in out
    paused = api.store.pause()
    assert paused is not None and paused.for_s == 7200 and paused.by == "witness:api"
    assert main(["status", *argv]) == 6  # needs attention
    out = capsys.readouterr().out
    assert "PAUSED by witness:api for 7200 s: patching the primary" in out
    with pytest.raises(SystemExit) as usage:
        main(["pause", *argv, "--reason", "x", "--for", "5s"])
    assert usage.value.code == 2
    assert "allowed from 10 s to 7 days" in capsys.readouterr().err
    assert main(["resume", *argv]) == 0
    assert "automatic action resumed" in capsys.readouterr().out
    assert main(["resume", *argv]) == 0
    assert "was not paused; nothing changed" in capsys.readouterr().out
    assert api.store.pause() is None
    got = [(e.step, e.outcome) for e in api.store.events() if e.step == "pause"]
    assert got == [("pause", "set"), ("pause", "cleared"), ("pause", "cleared")]


def test_the_question_before_a_failover_shows_the_state_and_the_expected_loss(
    api: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from draas.cli import main

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []

    def answer(question: str) -> str:
        asked.append(question)
        return "n"

    monkeypatch.setattr("builtins.input", answer)
    argv = ["--config", str(api.config), "--agent", api.url]
    assert main(["failover", *argv]) == 3  # not confirmed: refused, nothing done
    err = capsys.readouterr().err
    assert asked == ["fail over to the standby site (the active site's partner)? [y/N] "]
    assert "now: " in err and "standby: dr: NOT eligible for failover" in err
    assert "expected loss: KNOWN LOSS: " in err  # no sync record: dr is not eligible
    assert main(["switchover", "--to", "dr", *argv]) == 3
    assert "expected loss: none (planned" in capsys.readouterr().err
    assert not [e for e in api.store.events() if e.runbook == "command"]


def test_status_watch_shows_the_status_again_until_its_count(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    from draas.cli import main

    argv = ["status", "--config", str(api.config), "--agent", api.url]
    assert main([*argv, "--watch", "0.5", "--count", "3"]) in (0, 6)
    assert capsys.readouterr().out.count("as seen by witness") == 3
    with pytest.raises(SystemExit):
        main([*argv, "--watch", "0.1"])
    assert "allowed from 0.5 to 3600" in capsys.readouterr().err
