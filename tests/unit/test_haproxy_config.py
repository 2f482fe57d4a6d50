"""The HAProxy configuration the frontend engine writes: one backend per port with its own
health check; controlled (the other site disabled) or autonomous (a backup server, checked as
often as the caller says)."""

from __future__ import annotations

from draas.traffic.frontend.haproxy import DEFAULT_CHECK, config_text

SITES = {"primary": "198.18.1.10", "dr": "198.18.2.10"}


def test_each_backend_has_its_health_check_and_its_request() -> None:
    text = config_text("198.18.1.20", SITES, "primary", "/run/x.sock")
    assert text.count(f"    default-server {DEFAULT_CHECK}\n") == 2
    assert "    option httpchk GET /v3\n" in text and "    option httpchk GET /\n" in text
    assert "    server dr 198.18.2.10:5000 disabled\n" in text
    assert "    server primary 198.18.1.10:5000\n" in text


def test_an_autonomous_frontend_checks_as_often_as_asked_and_keeps_a_backup() -> None:
    fast = "check inter 100ms fall 3 rise 2"
    text = config_text("198.18.1.20", SITES, "primary", "/run/x.sock", True, health=fast)
    assert text.count(f"    default-server {fast}\n") == 2
    assert "    server dr 198.18.2.10:80 backup\n" in text and "disabled" not in text
