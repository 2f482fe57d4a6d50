"""``draas config check`` beyond the fields: configurations that parse but cannot work (each a
problem naming the field, the value and what is allowed) and settings that will hurt
(warnings), on the OpenStack example changed one thing at a time."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from draas.cli import main
from draas.config import parse_config
from draas.configcheck import check_deployment
from draas.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "openstack" / "draas.toml"


def base() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def found(change: Callable[[dict[str, Any]], None], files: bool = False) -> tuple[str, str]:
    data = copy.deepcopy(base())
    change(data)
    f = check_deployment(parse_config(data), files=files)
    return " | ".join(f.problems), " | ".join(f.warnings)


def test_the_example_is_a_working_deployment() -> None:
    assert found(lambda d: None) == ("", "")


def _memory(d: dict[str, Any]) -> None:
    d["coordination"] = {"backend": "memory"}


def _one_voter(d: dict[str, Any]) -> None:
    d["nodes"] = [n for n in d["nodes"] if n["role"] != "witness"]


def _other_record(d: dict[str, Any]) -> None:
    d["dns"]["record"] = "keystone.example.org."


def _outside_zone(d: dict[str, Any]) -> None:
    d["dns"]["record"] = d["service"]["dns_name"] = "identity.example.net."


def _same_address(d: dict[str, Any]) -> None:
    d["nodes"][2]["address"] = d["nodes"][0]["address"]


def _relative(d: dict[str, Any]) -> None:
    d["sites"]["dr"]["database"]["password_file"] = "db-password"


def _no_dr_database(d: dict[str, Any]) -> None:
    del d["sites"]["dr"]["database"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_memory, "coordination.backend: 'memory' lives inside one process, so the 3 nodes"),
        (_one_voter, "only 1 node(s) away from site 'primary' (['site-b'])"),
        (_other_record, "dns.record: 'keystone.example.org.' is not service.dns_name"),
        (_outside_zone, "dns.record: 'identity.example.net.' is not inside dns.zone"),
        (_same_address, "'witness' and 'site-a' both listen on 192.0.2.11 port 8780"),
        (_relative, "sites.dr.database.password_file: 'db-password' is relative"),
        (_no_dr_database, "sites.dr.database: missing while another site has one"),
    ],
)
def test_a_deployment_that_cannot_work_is_refused(
    change: Callable[[dict[str, Any]], None], said: str
) -> None:
    problems, _ = found(change)
    assert said in problems


def test_settings_that_hurt_are_warnings() -> None:
    def day_ttl(d: dict[str, Any]) -> None:
        d["dns"]["ttl_s"] = 86400

    def witness_next_door(d: dict[str, Any]) -> None:
        d["nodes"][2]["address"] = "192.0.2.30"

    problems, warnings = found(day_ttl)
    assert problems == "" and "dns.ttl_s: 86400 s: clients keep the dead site's" in warnings
    problems, warnings = found(witness_next_door)
    assert problems == "" and "witness 'witness' (192.0.2.30) is in the same /24 as site" in (
        warnings
    )


def test_secret_files_must_exist_and_be_closed_to_others(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"

    def here(d: dict[str, Any]) -> None:
        for site in d["sites"].values():
            site["database"]["password_file"] = str(secret)

    problems, _ = found(here, files=True)
    assert f"sites.primary.database.password_file: {secret} does not exist" in problems
    secret.write_text("pw")
    secret.chmod(0o644)
    problems, _ = found(here, files=True)
    assert "is readable by others (mode 644); allowed: 0600 or 0640" in problems
    secret.chmod(0o640)
    problems, _ = found(here, files=True)
    assert str(secret) not in problems  # (the example's other secrets are not on this machine)


def test_the_cli_prints_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "draas.toml"
    text = EXAMPLE.read_text().replace(
        'record = "identity.example.org."', 'record = "x.example.org."'
    )
    bad.write_text(text.replace('backend = "etcd"', 'backend = "memory"'))
    assert main(["config", "check", "--skip-files", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cannot work as a deployment" in err
    assert "  - coordination.backend: 'memory'" in err and "  - dns.record: 'x.example.org.'" in err
    # Without --skip-files the secret files are looked at too (they are not on this machine).
    assert main(["config", "check", str(EXAMPLE)]) == 2
    assert "/etc/draas/db-password does not exist" in capsys.readouterr().err


def test_etcd_tls_files_are_checked_like_every_secret(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("k")
    key.chmod(0o644)

    def here(d: dict[str, Any]) -> None:
        d["coordination"]["key_file"] = str(key)

    problems, _ = found(here, files=True)
    assert f"coordination.key_file: {key} is readable by others (mode 644)" in problems

    def login(d: dict[str, Any]) -> None:
        d["coordination"] |= {"user": "draas", "password_file": str(tmp_path / "nope")}

    problems, _ = found(login, files=True)
    assert f"coordination.password_file: {tmp_path / 'nope'} does not exist" in problems


def test_an_etcd_login_over_plain_http_is_a_warning() -> None:
    def plain(d: dict[str, Any]) -> None:
        co = d["coordination"]
        for k in ("ca_file", "cert_file", "key_file"):
            co.pop(k, None)
        co |= {
            "endpoints": ["http://192.0.2.11:2379"],
            "user": "draas",
            "password_file": "/etc/draas/etcd-password",
        }

    problems, warnings = found(plain, files=False)
    assert not problems, problems
    assert "coordination.user: 'draas' logs in over plain http (http://192.0.2.11:2379)" in warnings


@pytest.mark.parametrize(
    ("coordination", "said"),
    [
        ({"cert_file": "/etc/draas/etcd/c.pem"}, "cert_file and key_file: give both"),
        ({"user": "draas"}, "user and password_file: give both"),
        ({"password_file": "/etc/draas/etcd/password"}, "user and password_file: give both"),
        (
            {"endpoints": ["http://192.0.2.11:2379"], "ca_file": "/etc/draas/etcd/ca.pem"},
            "ca_file/cert_file are for TLS; use https:// endpoints",
        ),
    ],
)
def test_etcd_tls_settings_that_cannot_work_are_refused(
    coordination: dict[str, Any], said: str
) -> None:
    data = base()
    data["coordination"] = {
        k: v for k, v in data["coordination"].items() if k not in ("cert_file", "key_file")
    } | coordination
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert said in str(err.value)


def test_a_type_error_does_not_hide_what_the_rest_gets_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("ttl_s = 30 ", 'ttl_s = "five" ', 1)  # a type error
    dr = 'host = "198.51.100.11", user = "draas", password_file = "/etc/draas/db-password"'
    assert dr in text
    text = text.replace(dr, dr.replace("/etc/draas/db-password", "db-password"))  # relative
    path = tmp_path / "draas.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(text))
    assert any("ttl_s" in p for p in err.value.problems)
    assert main(["config", "check", str(path), "--skip-files"]) == 2
    said = capsys.readouterr().err
    assert "dns.designate.ttl_s: Input should be a valid integer" in said
    assert "'db-password' is relative; give an absolute path (found with dns.ttl_s left out)" in (
        said
    )
    assert "a [dns] section is needed" not in said  # the rest of [dns] stays
