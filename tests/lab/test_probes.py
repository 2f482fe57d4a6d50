"""Probes against the lab's real Keystone, web page and MariaDB: cheap and deep, a gray
failure only the deep probe sees, a hung service, and what the probes cost in CPU."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from draas.health.probes import HttpProbe, KeystoneProbe, TcpProbe
from draas.lab import netns
from draas.lab.disasters import ServiceCrash, ServiceHang
from draas.lab.lab import Lab
from draas.lab.secrets import secret

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(dns_lab: Lab) -> Lab:
    return dns_lab


def factory(lab: Lab, host: str = "witness") -> Callable[[], socket.socket]:
    return lambda: netns.socket_in(lab.ns(host))


def probes(lab: Lab) -> tuple[HttpProbe, HttpProbe, KeystoneProbe]:
    f = factory(lab)
    web = HttpProbe("http://198.18.1.10/", expect_body="site=primary", socket_factory=f)
    api = HttpProbe("http://198.18.1.10:5000/v3", expect_body="stable", socket_factory=f)
    deep = KeystoneProbe(
        "http://198.18.1.10:5000",
        "admin",
        secret(lab.run, "keystone-admin"),
        timeout_s=2.0,
        socket_factory=f,
    )
    return web, api, deep


def run(*checks: object) -> list[bool]:
    async def go() -> list[bool]:
        return [r.ok for r in await asyncio.gather(*(c.check() for c in checks))]  # type: ignore[attr-defined]

    return asyncio.run(go())


def test_cheap_and_deep_probes_pass_and_the_token_is_reused(lab: Lab) -> None:
    web, api, deep = probes(lab)
    for _ in range(5):
        assert run(web, api, deep) == [True, True, True]
    assert deep.logins == 1
    assert run(TcpProbe("198.18.1.10", 3306, socket_factory=factory(lab))) == [True]
    assert run(TcpProbe("198.18.1.10", 9, socket_factory=factory(lab))) == [False]


def test_database_down_is_seen_only_by_the_deep_probe(lab: Lab) -> None:
    web, api, deep = probes(lab)
    assert run(deep) == [True]
    with ServiceCrash(lab, process="mariadb-primary"):
        t0 = time.monotonic()
        assert run(web, api, deep) == [True, True, False]  # a gray failure
        assert time.monotonic() - t0 < 5  # bounded by the probe timeout
    deadline = time.monotonic() + 30
    while run(deep) != [True]:
        assert time.monotonic() < deadline, "deep probe never recovered"
        time.sleep(0.5)


def test_a_hung_service_fails_within_the_timeout(lab: Lab) -> None:
    _, api, deep = probes(lab)
    with ServiceHang(lab, process="keystone-primary"):
        t0 = time.monotonic()
        assert run(api, deep) == [False, False]
        assert time.monotonic() - t0 < 3
    assert run(api) == [True]


def test_probe_cpu_cost_is_small(lab: Lab) -> None:
    _, api, deep = probes(lab)
    run(deep)  # log in once

    def cpu_ms_per(check: object, n: int) -> float:
        t0 = time.process_time()
        for _ in range(n):
            run(check)
        return (time.process_time() - t0) / n * 1000

    cheap = cpu_ms_per(api, 50)
    deep_ms = cpu_ms_per(deep, 20)
    print(
        f"probe CPU here (this process, incl. a new event loop per check): cheap "
        f"{cheap:.2f} ms, deep {deep_ms:.2f} ms per probe; logins {deep.logins}"
    )
    assert deep.logins == 1
    assert cheap < 20 and deep_ms < 20
