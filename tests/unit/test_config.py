"""Config loading: good configs load with defaults filled; every bad input gets its own message."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from draas.cli import main
from draas.config import load_config, parse_config
from draas.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "draas.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_example_config_loads_with_preset_and_overrides() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.scheme == "hybrid"
    assert cfg.service.dns_name == "keystone.example.org."
    assert cfg.timings.preset == "normal"
    assert cfg.timings.confirm_window_s == 6  # explicit value overrides the preset
    assert cfg.timings.probe_interval_s == 1.0  # filled from the preset
    assert cfg.site_with_role("dr") == "dr"
    assert [n.name for n in cfg.nodes_with_role("frontend")] == ["fe-a", "fe-b"]


def test_fast_preset_fills_every_timing() -> None:
    data = example()
    data["timings"] = {"preset": "fast"}
    t = parse_config(data).timings
    assert (t.probe_interval_s, t.fall, t.confirm_window_s, t.lease_ttl_s) == (0.5, 3, 2.0, 5.0)


def test_dns_name_gets_a_trailing_dot() -> None:
    data = example()
    data["service"]["dns_name"] = "Keystone.Example.org"
    assert parse_config(data).service.dns_name == "keystone.example.org."


def test_bad_scheme_names_field_value_and_allowed() -> None:
    data = example()
    data["scheme"] = "anycast"
    (msg,) = problems(data)
    assert msg.startswith("scheme:")
    assert "'anycast'" in msg
    assert "'dns', 'frontend' or 'hybrid'" in msg


def test_bad_address_names_the_nested_path() -> None:
    data = example()
    data["sites"]["primary"]["address"] = "300.1.2"
    (msg,) = problems(data)
    assert msg.startswith("sites.primary.address:")
    assert "IP address or a DNS host name" in msg
    assert "'300.1.2'" in msg


def test_unknown_field_lists_the_allowed_ones() -> None:
    data = example()
    data["timings"]["probe_intervall_s"] = 1
    (msg,) = problems(data)
    assert msg.startswith("timings.probe_intervall_s: unknown field")
    assert "probe_interval_s" in msg.split("allowed:")[1]


def test_missing_required_field() -> None:
    data = example()
    del data["service"]["dns_name"]
    assert problems(data) == ["service.dns_name: required field is missing"]


def test_wrong_type_in_a_list_item() -> None:
    data = example()
    data["nodes"][2]["api_port"] = 70000
    (msg,) = problems(data)
    assert msg.startswith("nodes[2].api_port:")
    assert "65535" in msg


def test_unknown_dns_provider() -> None:
    data = example()
    data["dns"]["provider"] = "noip"
    (msg,) = problems(data)
    assert msg.startswith("dns:")
    assert "rfc2136" in msg and "'noip'" in msg


def test_provider_specific_field_checked() -> None:
    data = example()
    del data["dns"]["tsig_key_file"]
    assert problems(data) == ["dns.rfc2136.tsig_key_file: required field is missing"]


def test_several_problems_reported_together() -> None:
    data = example()
    data["scheme"] = "x"
    data["sites"]["dr"]["address"] = "not an address"
    assert len(problems(data)) == 2


def test_cross_field_rules_each_have_a_message() -> None:
    data = example()
    data["nodes"][1]["name"] = "site-a"  # duplicate
    data["nodes"][0]["site"] = "moon"  # unknown site
    data["frontend"]["preferred"] = "witness"  # not a frontend
    data["timings"] = {"preset": "normal", "lease_ttl_s": 3}
    msgs = problems(data)
    assert any(m.startswith("nodes[1].name: duplicate node name 'site-a'") for m in msgs)
    assert any(m.startswith("nodes[0].site: unknown site 'moon'") for m in msgs)
    assert any(m.startswith("frontend.preferred: 'witness' is not a frontend") for m in msgs)
    assert any(m.startswith("timings.lease_ttl_s: 3.0 is less than") for m in msgs)


def test_key_directories_pair_up_and_travel_only_over_tls() -> None:
    data = example()
    data["sites"]["dr"]["key_directories"] = ["/etc/keystone/fernet-keys"]
    (msg,) = problems(data)
    assert msg.startswith("sites.*.key_directories: the sites list dr 1, primary 2 directories")
    data = example()
    for key in ("tls_cert_file", "tls_key_file"):
        del data["api"][key]
    (msg,) = problems(data)
    assert msg.startswith("api.tls_cert_file: the key directories travel") and "TLS" in msg
    data["api"]["insecure_key_transfer"] = True  # a lab on one machine says so
    parse_config(data)


def test_controller_candidates_are_nodes_and_default_to_every_agent() -> None:
    data = example()
    assert parse_config(data).controller_candidates() == ["site-a", "site-b", "witness"]
    data["controller"]["candidates"] = ["site-a", "witnes"]
    (msg,) = problems(data)
    assert msg.startswith("controller.candidates: 'witnes' is not a node; allowed: [")
    del data["controller"]
    every = [n["name"] for n in data["nodes"]]
    assert parse_config(data).controller_candidates() == every
    data["controller"] = {"ttl_s": 1}
    with pytest.raises(ConfigError, match=r"controller\.ttl_s"):
        parse_config(data)


def test_two_primaries_refused() -> None:
    data = example()
    data["sites"]["dr"]["role"] = "primary"
    (msg,) = problems(data)
    assert msg.startswith("sites: need exactly one site with role 'primary'")


def test_hybrid_needs_two_frontends_and_dns() -> None:
    data = example()
    data["nodes"] = [n for n in data["nodes"] if n["name"] != "fe-b"]
    data["frontend"]["preferred"] = "fe-a"
    del data["dns"]
    msgs = problems(data)
    assert any("a [dns] section is needed" in m for m in msgs)
    assert any("at least two nodes with role 'frontend'" in m for m in msgs)


def test_window_must_hold_fall_probes() -> None:
    data = example()
    data["timings"] = {
        "probe_interval_s": 2,
        "probe_timeout_s": 1,
        "fall": 5,
        "confirm_window_s": 4,
    }
    msgs = problems(data)
    assert any(m.startswith("timings.confirm_window_s: 4.0 is shorter") for m in msgs)


def test_semi_sync_has_no_timeout_of_its_own_and_degrades_faster_than_the_lease() -> None:
    data = example()
    data["timings"] = {"preset": "fast"}
    assert parse_config(data).timings.sync_degrade_s == 1.0
    data["replication"]["semi_sync_timeout_ms"] = 6000  # an old setting: refused, explained
    msgs = problems(data)
    assert [
        m for m in msgs if m.startswith("replication.semi_sync_timeout_ms: 6000 is no longer used")
    ], msgs
    del data["replication"]["semi_sync_timeout_ms"]
    data["timings"]["sync_degrade_s"] = 5.0
    msgs = problems(data)
    assert [m for m in msgs if m.startswith("timings.sync_degrade_s: 5.0 is not shorter")], msgs


def test_a_keystone_check_needs_its_account_and_a_short_enough_interval() -> None:
    data = example()
    data["timings"] = {"preset": "fast"}
    data["service"]["checks"] = [
        {"name": "db", "kind": "keystone", "port": 5000, "interval_s": 1.5}
    ]
    msgs = problems(data)
    assert "service.checks[0]: a 'keystone' check logs in: give username and password_file" in msgs
    assert any(
        m.startswith(
            "service.checks[0].interval_s: 1.5 is not shorter than probe_interval_s x fall = 1.5"
        )
        for m in msgs
    ), msgs
    data["service"]["checks"][0].update(
        username="admin", password_file="/etc/draas/pw", interval_s=1.0
    )
    check = parse_config(data).service.checks[0]
    assert (check.kind, check.project, check.interval_s) == ("keystone", "admin", 1.0)
    data["service"]["checks"] = [{"name": "web", "port": 80, "username": "admin"}]
    assert [
        m
        for m in problems(data)
        if m.startswith("service.checks[0].username: only a 'keystone' check logs in")
    ]


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("scheme = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--skip-files", str(EXAMPLE)]) == 0
    out = capsys.readouterr()
    assert '"scheme": "hybrid"' in out.out
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('scheme = "hybrid"', 'scheme = "hybrd"'))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "scheme: Input should be 'dns', 'frontend' or 'hybrid' (got 'hybrd')" in err


toml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "scheme",
                "service",
                "sites",
                "nodes",
                "dns",
                "frontend",
                "coordination",
                "timings",
                "api",
                "drill",
                "replication",
                "x",
            ]
        ),
        toml_values,
        max_size=6,
    )
)
def test_random_documents_give_only_config_errors(doc: dict[str, Any]) -> None:
    try:
        parse_config(doc)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and ":" in p for p in exc.problems)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_mutating_one_field_of_a_good_config_gives_only_config_errors(data: st.DataObject) -> None:
    doc = copy.deepcopy(example())
    # Walk to a random table and replace one of its values with arbitrary data.
    node: Any = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(toml_values)
        break
    try:
        parse_config(doc)
    except ConfigError as exc:
        assert exc.problems


def test_the_haproxy_backends_draas_switches_are_configured() -> None:
    """HAProxy's backends are the operator's (docs/install.md): draas switches the ones named
    in frontend.backends, each with a server per site named after the site."""
    from draas.deployment import frontend_engine
    from draas.traffic.frontend.haproxy import HaproxyEngine

    data = tomllib.loads(EXAMPLE.read_text())
    fe = next(n for n in parse_config(data).nodes if n.role == "frontend")
    default = frontend_engine(parse_config(data), fe)
    assert isinstance(default, HaproxyEngine) and default.backends == ("api", "web")
    data["frontend"]["backends"] = ["keystone-api"]
    mine = frontend_engine(parse_config(data), fe)
    assert isinstance(mine, HaproxyEngine) and mine.backends == ("keystone-api",)
    data["frontend"]["backends"] = []
    with pytest.raises(ConfigError, match="frontend.backends"):
        parse_config(data)
