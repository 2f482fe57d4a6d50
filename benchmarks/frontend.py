"""Frontend engines in the lab against a fast static backend: throughput with keep-alive and
added latency (direct, embedded proxy, HAProxy), switch time, and DNS update time.

    .venv/bin/python benchmarks/frontend.py --seconds 5 --out results/frontend.json

Needs root and ``wrk``. The static backend is HAProxy answering ``http-request return`` on each
site (tens of thousands of requests per second), so the figures are the frontends' own. The
load comes from the client host with one wrk thread and 10 connections; the embedded proxy is
one Python process (one core). Added latency: 3000 rounds of one request to each of direct,
proxy and HAProxy, interleaved, the per-round difference with the direct one; its p5, p50, p95
and p99 (the spread: single pairs can go below zero, the median of the hop does not).
switch_ms: from ``point_to`` to the first answer from the new
site, for a client sending requests back to back. dns_update_ms: an RFC 2136 update through
the lab's BIND, read back from the server.
"""

from __future__ import annotations

import argparse
import http.client
import re
import secrets
import socket
import statistics
import sys
import time
from pathlib import Path

from common import report

from draas.lab import netns
from draas.lab.components import bind9
from draas.lab.embedded import proxy_in
from draas.lab.lab import Lab, LabSettings
from draas.lab.readiness import TcpReady, UnixReady
from draas.lab.secrets import secret
from draas.traffic.dns.rfc2136 import Rfc2136Provider
from draas.traffic.frontend.haproxy import HaproxyEngine, config_text

STATIC_PORT = 8090
PROXY_PORT = 8095
HAPROXY_PORT = 8096
PAIRS = 3000  # request rounds for the added latency (one request to each URL per round)


def static_backend(lab: Lab, site: str) -> None:
    d = lab.run.path / f"static-{site}"
    d.mkdir(exist_ok=True)
    cfg = d / "haproxy.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout client 10s\n    timeout connect 1s\n"
        "    timeout server 10s\n"
        f"frontend static\n    bind {lab.topo.host(site).address}:{STATIC_PORT}\n"
        f'    http-request return status 200 content-type text/plain string "{site}\\n"\n'
    )
    lab.sup.start(
        lab.spec(
            f"static-{site}",
            site,
            ["haproxy", "-db", "-f", str(cfg)],
            ready=TcpReady(lab.topo.host(site).address, STATIC_PORT),
        )
    )


def wrk(lab: Lab, url: str, seconds: float, conns: int = 10) -> dict[str, float]:
    proc = lab.exec(
        "client",
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    out = proc.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"wrk output without {label}: {out}\n{proc.stderr}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%")}


def paired_latency(lab: Lab, urls: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Milliseconds each frontend adds, per request pair: every round sends one request to
    each URL, back to back, in a rotating order, over one kept-alive connection each, from the
    client host; the difference with the direct request of the same round is that round's
    added time. Pairs taken close together share the machine's state, so the quantiles of the
    differences measure the hop, not the noise between two separate runs."""
    ns = lab.ns("client")
    conns: dict[str, http.client.HTTPConnection] = {}
    for name, url in urls.items():
        host, port = url.split("//")[1].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        conn.sock = netns.tcp_connect(ns, host, int(port), timeout=2)
        conns[name] = conn

    def once(name: str) -> float:
        t0 = time.perf_counter()
        conns[name].request("GET", "/")
        conns[name].getresponse().read()
        return (time.perf_counter() - t0) * 1000

    names = list(urls)
    for name in names:  # warm up
        once(name)
    added: dict[str, list[float]] = {n: [] for n in names if n != "direct"}
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        took = {name: once(name) for name in order}
        for name in added:
            added[name].append(took[name] - took["direct"])
    for conn in conns.values():
        conn.close()
    return added


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def switch_time(lab: Lab, host: str, port: int, flip: object) -> float:
    """Seconds from flip() to the first answer from dr, requests sent back to back."""
    ns = lab.ns("client")
    addr = lab.topo.host(host).address

    def ask() -> str:
        sock = netns.tcp_connect(ns, addr, port, timeout=2)
        conn = http.client.HTTPConnection(addr, port, timeout=2)
        conn.sock = sock
        try:
            conn.request("GET", "/")
            return conn.getresponse().read().decode().strip()
        finally:
            conn.close()

    assert ask() == "primary"
    t0 = time.monotonic()
    flip()  # type: ignore[operator]
    for _ in range(10_000):
        if ask() == "dr":
            return time.monotonic() - t0
    raise RuntimeError("never switched")


def embedded_switch_time(lab: Lab, sites: dict[str, str]) -> float:
    """The same measure for the embedded proxy, run in this process inside fe-a."""
    with proxy_in(lab, "fe-a", sites, {PROXY_PORT + 10: STATIC_PORT}, target="primary") as e:
        return switch_time(lab, "fe-a", PROXY_PORT + 10, lambda: e.point_to("dr"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("results/frontend.json"))
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be 1..120")
    lab = Lab("b" + secrets.token_hex(3))
    result: dict[str, float] = {}
    try:
        lab.up(LabSettings(scheme="dns"))
        for site in ("primary", "dr"):
            static_backend(lab, site)
        sites = {s: lab.topo.host(s).address for s in ("primary", "dr")}
        fe = lab.topo.host("fe-a").address
        proxy_argv = [
            sys.executable,
            "-m",
            "draas.traffic.frontend.proxy",
            "--bind",
            fe,
            "--port",
            f"{PROXY_PORT}:{STATIC_PORT}",
            "--target",
            "primary",
            *[f"--site={k}={v}" for k, v in sites.items()],
        ]
        lab.sup.start(lab.spec("bench-proxy", "fe-a", proxy_argv, ready=TcpReady(fe, PROXY_PORT)))
        hsock = lab.run.path / "bench-haproxy.sock"
        hcfg = lab.run.path / "bench-haproxy.cfg"
        text = config_text(
            fe,
            sites,
            "primary",
            str(hsock),
            ports={"web": STATIC_PORT},
            listen={"web": HAPROXY_PORT},
        )
        hcfg.write_text(text)
        lab.sup.start(
            lab.spec(
                "bench-haproxy",
                "fe-a",
                ["haproxy", "-W", "-db", "-f", str(hcfg)],
                ready=UnixReady(str(hsock), "show info", "HAProxy"),
            )
        )
        time.sleep(1.5)  # health checks settle
        primary = sites["primary"]
        urls = {
            "direct": f"http://{primary}:{STATIC_PORT}/",
            "proxy": f"http://{fe}:{PROXY_PORT}/",
            "haproxy": f"http://{fe}:{HAPROXY_PORT}/",
        }
        # Throughput: 10 connections, saturating. Added latency: one connection, one request
        # at a time (under saturation a percentile measures the queue, not the hop).
        load = {k: wrk(lab, u, args.seconds) for k, u in urls.items()}
        direct = wrk(lab, urls["direct"], args.seconds, conns=1)
        added = paired_latency(lab, urls, rounds=PAIRS)
        engine = HaproxyEngine("fe-a", admin_socket=str(hsock), sites=sites, backends=("web",))
        hap_switch = switch_time(lab, "fe-a", HAPROXY_PORT, lambda: engine.point_to("dr"))
        proxy_switch = embedded_switch_time(lab, sites)
        provider = Rfc2136Provider(
            "rfc2136",
            zone=bind9.ZONE,
            record=f"bench.{bind9.ZONE}",
            ttl_s=5,
            server=lab.topo.host("dns").address,
            key_name=bind9.TSIG_NAME,
            key_algorithm="hmac-sha256",
            key_secret=secret(lab.run, "tsig", kind="tsig"),
            socket_factory=lambda: netns.socket_in(lab.ns("witness"), kind=socket.SOCK_DGRAM),
        )
        dns_ms = []
        for i in range(20):
            t0 = time.monotonic()
            provider.point_to(f"198.18.{1 + i % 2}.20")
            dns_ms.append((time.monotonic() - t0) * 1000)
        result = {
            "direct_rps": round(load["direct"]["rps"]),
            "proxy_rps": round(load["proxy"]["rps"]),
            "haproxy_rps": round(load["haproxy"]["rps"]),
            "proxy_to_haproxy_rps_ratio": round(load["proxy"]["rps"] / load["haproxy"]["rps"], 3),
            "direct_p50_ms": round(direct["p50_ms"], 3),
            **{
                f"{name}_added_{label}_ms": round(quantile(added[name], q), 3)
                for name in ("proxy", "haproxy")
                for label, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "added_pairs": PAIRS,
            "switch_ms": round(max(hap_switch, proxy_switch) * 1000, 2),
            "haproxy_switch_ms": round(hap_switch * 1000, 2),
            "proxy_switch_ms": round(proxy_switch * 1000, 2),
            "dns_update_ms": round(statistics.median(dns_ms), 2),
        }
    finally:
        lab.down()
    report(result, args.out)


if __name__ == "__main__":
    main()
