"""``draas lab demo``: build the whole lab, show its health as a client and an operator would
see it, then tear it all down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from draas.lab.components import bind9, etcd, mariadb
from draas.lab.lab import Lab, LabSettings, Progress
from draas.lab.reach import ping
from draas.lab.secrets import secret
from draas.lab.services import memory_rss_mb, resolve

TOKEN_BODY = (
    '{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", '
    '"domain": {"name": "Default"}, "password": "%s"}}}}}'
)


def _curl(lab: Lab, host: str, *args: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = lab.exec(
        host,
        ["curl", "-s", "-m", "10", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body, time.monotonic() - t0


def health_checks(lab: Lab) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) rows, each asked the way a client or an operator would."""
    rows: list[tuple[str, bool, str]] = []

    def check(name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = fn()
        except Exception as exc:  # the demo reports every check, whatever fails
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        rows.append((name, ok, detail))

    def dns_answer() -> tuple[bool, str]:
        got = resolve(lab, bind9.SERVICE_NAME)
        return got == [lab.topo.host("fe-a").address], f"{bind9.SERVICE_NAME} -> {got}"

    def web() -> tuple[bool, str]:
        code, body, took = _curl(lab, "client", "http://keystone.draas.test/")
        site = body.split("site=")[1].split("<")[0] if "site=" in body else "?"
        return code == 200, f"HTTP {code} from site {site} in {took * 1000:.0f} ms"

    def token() -> tuple[bool, str]:
        body = TOKEN_BODY % secret(lab.run, "keystone-admin")
        url = "http://keystone.draas.test:5000/v3/auth/tokens"
        code, _, took = _curl(
            lab, "client", "-H", "Content-Type: application/json", "-d", body, url
        )
        return code == 201, f"HTTP {code} in {took * 1000:.0f} ms (through fe-a to primary)"

    def replication() -> tuple[bool, str]:
        st = mariadb.replication_status(lab, "dr")
        ok = st["io_running"] == st["sql_running"] == "Yes" and st["lag_s"] == 0
        return ok, f"dr replicates primary, lag {st['lag_s']} s, GTID {st['gtid_slave_pos']}"

    def quorum() -> tuple[bool, str]:
        h = etcd.health(lab)
        return len(h) == 3 and all(h.values()), f"{sum(h.values())}/3 members healthy"

    def wan() -> tuple[bool, str]:
        r = ping(lab.ns("primary"), "primary", "dr", lab.topo.host("dr").address, count=5)
        want = 2 * lab.settings.delay_ms
        ok = r.median_ms is not None and abs(r.median_ms - want) <= 0.2 * want
        return ok, f"primary->dr RTT {r.median_ms} ms (configured {want:g} ms)"

    def reach() -> tuple[bool, str]:
        client = lab.ns("client")
        others = [h for h in lab.topo.hosts if h.name != "client"]
        bad = [h.name for h in others if not ping(client, "client", h.name, h.address).reachable]
        return not bad, "client reaches every host" if not bad else f"unreachable: {bad}"

    for name, fn in (
        ("hosts reachable", reach),
        ("DNS via Unbound", dns_answer),
        ("web page", web),
        ("Keystone token", token),
        ("DR replica", replication),
        ("etcd quorum", quorum),
        ("WAN latency", wan),
    ):
        check(name, fn)
    mem = memory_rss_mb(lab)
    rows.append(("lab memory", mem < 2048, f"{mem:.0f} MiB resident"))
    return rows


def rto_table(run: dict[str, Any]) -> list[tuple[str, str]]:
    def sec(v: object) -> str:
        return "-" if v is None else f"{float(v):.2f} s"  # type: ignore[arg-type]

    return [
        ("RTO (client served again)", sec(run["rto_s"])),
        ("  detection (first alarm)", sec(run["detection_s"])),
        ("  decision (failover starts)", sec(run["decision_s"])),
        ("  switch (traffic moved)", sec(run["switch_s"])),
        ("  client catch-up", sec(run["client_catch_up_s"])),
        ("client-visible downtime", sec(run["downtime_s"])),
        ("served after recovery by", str(run["recovered_site"])),
        ("acknowledged writes lost", f"{run['lost_acked_writes']} of {run['acked_writes']}"),
        ("false failovers", str(run["false_failovers"])),
        ("split-brain instants", str(run["split_brain_instants"])),
        ("failback (power-on to home)", sec(run["failback_s"])),
        ("sites' checksums equal", str(run["checksums_match"])),
    ]


def run_demo(name: str, progress: Progress, out: Path | None = None) -> int:
    """Up (hybrid), health, agents, power off the primary, RTO table, failback, down."""
    from draas.lab.agents import start_agents
    from draas.lab.experiment import active, one_run, wait

    lab = Lab(name)
    ok = False
    out = out or Path("demo-results")
    try:
        result = lab.up(LabSettings(scheme="hybrid"), progress=progress)
        progress("checking the deployment as a client and an operator would")
        rows = health_checks(lab)
        print(f"\nlab up in {result.get('total_s', 0):.1f} s, hybrid scheme\n")
        print(f"{'CHECK':<17} {'RESULT':<6} DETAIL")
        for check, passed, detail in rows:
            print(f"{check:<17} {'ok' if passed else 'FAIL':<6} {detail}")
        print(flush=True)
        progress("starting the draas agents (fast preset, semi-sync replication)")
        start_agents(lab, preset="fast", replication="semi-sync")
        wait("the active record", lambda: active(lab) is not None, 30, 0.2)
        progress(
            "powering off the primary site, measuring from the client; then powering it "
            "back on and waiting for failback"
        )
        run = one_run(lab, "hybrid", "power-off", 1, 1, out, progress)
        print(f"\nprimary site power-off, hybrid scheme (details in {out}/runs/)\n")
        for k, v in rto_table(run):
            print(f"{k:<30} {v}")
        print(flush=True)
        progress("the operator's view after the failback (draas status on the client host)")
        got = lab.exec("client", ["draas", "status"], capture_output=True, text=True, timeout=30)
        print(got.stdout or got.stderr, flush=True)
        ok = (
            all(passed for _, passed, _ in rows)
            and run["rto_s"] is not None
            and run["lost_acked_writes"] == 0
            and run["checksums_match"] is True
            and run["split_brain_instants"] == 0
        )
    finally:
        lab.down(progress=progress)
    return 0 if ok else 1
