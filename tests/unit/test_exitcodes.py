"""Each kind of ending maps to its documented exit status; status exits 6 while it shows an
ALERT."""

from __future__ import annotations

from typing import Any

import pytest

from draas import exitcodes
from draas.errors import (
    ApiError,
    CommandRefused,
    ConfigError,
    CoordinationError,
    DraasError,
    InvalidInput,
    ReplicationError,
    StaleEpoch,
)
from draas.opscli import attention


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidInput("--limit 0: must be from 1 to 1000"), exitcodes.INVALID),
        (ConfigError("draas.toml", ["x"]), exitcodes.INVALID),
        (CommandRefused("failover refused"), exitcodes.REFUSED),
        (StaleEpoch("moved"), exitcodes.REFUSED),
        (ApiError("switchover refused", 409), exitcodes.REFUSED),
        (ApiError("no agent answered"), exitcodes.UNREACHABLE),
        (ApiError("bad body", 400), exitcodes.INVALID),
        (ApiError("boom", 500), exitcodes.FAILED),
        (CoordinationError("etcd down"), exitcodes.UNREACHABLE),
        (ReplicationError("cannot promote"), exitcodes.FAILED),
        (DraasError("anything else"), exitcodes.FAILED),
    ],
)
def test_each_error_has_its_exit_status(exc: DraasError, code: int) -> None:
    assert exitcodes.for_error(exc) == code


def healthy() -> dict[str, Any]:
    return {
        "alerts": {},
        "standby": {"site": "dr", "eligible": True},
        "sites": [{"name": "primary"}, {"name": "dr", "keys": {"alert": None}}],
        "automatic": {"action": "none", "reason": "primary is active"},
        "store_ok": True,
    }


def test_a_healthy_status_needs_nobody() -> None:
    assert attention(healthy()) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"alerts": {"clock-skew": "site-dr +600 s"}}, "alert clock-skew"),
        ({"standby": {"site": "dr", "eligible": False}}, "dr is not an eligible standby"),
        ({"automatic": {"action": "wait", "reason": "only 1 of 2"}}, "automatic failover wait"),
        ({"store_ok": False}, "coordination store unreachable"),
        (
            {"sites": [{"name": "dr", "keys": {"alert": "fernet keys differ"}}]},
            "dr's keys",
        ),
    ],
)
def test_each_alert_line_makes_status_need_attention(change: dict[str, Any], why: str) -> None:
    assert attention(healthy() | change) == [why]
