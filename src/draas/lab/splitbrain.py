"""The split-brain checker: during a lab run it samples, from the client host, whether each
site accepts writes (its database's ``read_only`` and a real write through Keystone at the
site's own address), which site holds the ``active`` lease, and where the DNS name and each
frontend send traffic. An instant is a violation when two sites accept writes, or when
traffic goes to a site that accepts writes without holding the lease. A database "accepts" a
write when it is not read-only and its commits are not held for a standby's acknowledgement
that no standby can send (semi-sync, no replica connected): the instants that matter are those
where two sites can acknowledge a write, not those where two ``read_only`` flags are off.

    python -m draas.lab.splitbrain --config draas.toml --password-file F --out samples.jsonl \\
        --interval 0.25 --duration 600

``violations`` (pure) reads the samples; the sampler stops at --duration or on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from draas.replication.mariadb import STOPPING_SQL, stop_under_way

ACCEPTS = "acked"  # a write through the site's own Keystone was stored
NO_FALLBACK_MS = 3_600_000  # a semi-sync timeout this long never falls back while we look


# -- the pure part: samples in, violations out ---------------------------------------------------
# A sample is taken in order: the lease ("active"), the databases' read_only (round 1), the
# writes and where traffic goes, the databases again (round 2, "read_only_after"), the lease
# again ("active_after"). The reads are not one instant, so the rules only use what the order
# proves: a site writable in both rounds was writable at the instant between them; a site
# holding the lease in neither lease read did not hold it while the sample was taken.
UNKNOWN = "?"  # the store could not be read: the lease rule is not judged for that sample
UNREAD = "*"  # a database not read in a round: its receiver may run from any site


def _after(sample: Mapping[str, Any], key: str) -> Any:
    return sample.get(f"{key}_after", sample.get(key))  # older samples: one reading


def _open(read_only: Mapping[str, Any], held: Mapping[str, Any]) -> dict[str, bool]:
    """Per site, whether its database could acknowledge a write in that round: not read-only,
    and its commits not held for a standby's acknowledgement that no standby can send
    (semi-sync on, waiting with no replica connected: ``held``)."""
    return {s: read_only.get(s) is False and held.get(s) is not True for s in read_only}


def _rounds(sample: Mapping[str, Any]) -> tuple[dict[str, bool], dict[str, bool]]:
    before = _open(sample.get("read_only", {}), sample.get("held", {}))
    after = _open(_after(sample, "read_only"), _after(sample, "held") or {})
    return before, after


def writable_throughout(sample: Mapping[str, Any]) -> list[str]:
    """Sites whose database could acknowledge a write in both rounds of the sample."""
    before, after = _rounds(sample)
    return sorted(s for s in before if before[s] and after.get(s, False))


def accepting(sample: Mapping[str, Any]) -> list[str]:
    """Sites that took writes at some instant of the sample (a stored write, or a database
    that could acknowledge one in either round)."""
    before, after = _rounds(sample)
    writes = sample.get("write", {})
    sites = set(writes) | set(before) | set(after)
    return sorted(
        s for s in sites if writes.get(s) == ACCEPTS or before.get(s, False) or after.get(s, False)
    )


def traffic_targets(
    sample: Mapping[str, Any],
    address_of_site: Mapping[str, str],
    address_of_frontend: Mapping[str, str],
) -> dict[str, str]:
    """Where traffic goes: path ("dns", "fe-a") -> site."""
    out: dict[str, str] = {}
    site_by_addr = {a: s for s, a in address_of_site.items()}
    fe_by_addr = {a: f for f, a in address_of_frontend.items()}
    routes = sample.get("frontends", {})
    dns = sample.get("dns")
    if dns in site_by_addr:
        out["dns"] = site_by_addr[dns]
    elif dns in fe_by_addr and routes.get(fe_by_addr[dns]):
        out["dns"] = routes[fe_by_addr[dns]]
    for fe, site in routes.items():
        if site:
            out[fe] = site
    return out


def violations(
    samples: Iterable[Mapping[str, Any]],
    address_of_site: Mapping[str, str],
    address_of_frontend: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One entry per sample that breaks a rule, with what was wrong: a site took writes while
    another was writable throughout the sample; or traffic went to a site that took writes (a
    write stored, or writable in both rounds) and held the lease in neither lease read."""
    out = []
    for s in samples:
        wrong = []
        acc, steady = accepting(s), writable_throughout(s)
        both = sorted({x for a in acc for b in steady if a != b for x in (a, b)})
        if len(both) > 1:
            wrong.append(f"{' and '.join(both)} accept writes")
        holders = {s.get("active"), _after(s, "active")}
        if UNKNOWN not in holders:
            shown = " then ".join(
                dict.fromkeys(str(h) for h in (s.get("active"), _after(s, "active")))
            )
            # Took writes: a write stored, or writable in both rounds (one round alone may be
            # a reading whose proof of "held" was missing, e.g. the standby busy promoting).
            took = {x for x in acc if s.get("write", {}).get(x) == ACCEPTS or x in steady}
            for path, site in sorted(
                traffic_targets(s, address_of_site, address_of_frontend).items()
            ):
                if site not in holders and site in took:
                    wrong.append(
                        f"{path} sends traffic to {site}, which takes writes but does "
                        f"not hold the lease (held by {shown})"
                    )
        if wrong:
            out.append({"t": s["t"], "problems": wrong})
    return out


def held_between(before: Mapping[str, str], after: Mapping[str, str]) -> bool:
    """Whether semi-sync held every commit of a database from one reading of its counters to
    the next: on in both (with its timeout effectively infinite, a commit then completes only
    with an acknowledgement, or when its session is killed, which answers its client with a
    closed connection, not OK), a commit waiting at one of them, and no acknowledgement in
    between. (The client count is no proof: a replica cut off by a partition stays counted
    until the connection times out, and sends nothing.) Or no replica connected at all, at
    both readings, with ``wait_no_slave`` on."""
    if not before or not after:
        return False

    def idle(st: Mapping[str, str]) -> bool:
        return (
            st.get("Rpl_semi_sync_master_status") == "ON"
            and st.get("wait_no_slave") == "ON"
            and st.get("Rpl_semi_sync_master_clients") == "0"
        )

    if idle(before) and idle(after):
        return True
    on = all(st.get("Rpl_semi_sync_master_status") == "ON" for st in (before, after))
    waiting = any(
        int(st.get("Rpl_semi_sync_master_wait_sessions", "0") or 0) > 0 for st in (before, after)
    )
    acked = before.get("Rpl_semi_sync_master_yes_tx") != after.get("Rpl_semi_sync_master_yes_tx")
    return on and waiting and not acked


def no_acknowledger(site: str, st: Mapping[str, str], sources: Mapping[str, str | None]) -> bool:
    """Whether ``site``'s commits are held in one reading, whatever its client count says:
    semi-sync on with ``wait_no_slave``, no timeout to fall back on, and no other site's
    replication receiver running from it (``sources``: each site's receiver's source address
    while it runs, None when stopped or connecting). A replica cut off or stopped stays
    counted as a client until its dead connection is noticed, and sends nothing."""
    if not st or st.get("Rpl_semi_sync_master_status") != "ON" or st.get("wait_no_slave") != "ON":
        return False
    if int(st.get("timeout_ms", "0") or 0) < NO_FALLBACK_MS:
        return False
    me = st.get("address")
    return not any(src in (me, UNREAD) for other, src in sources.items() if other != site)


# -- the sampler ---------------------------------------------------------------------------------
class Sampler:
    def __init__(self, config: str, password: str, timeout_s: float) -> None:
        from draas.config import load_config
        from draas.coordination import make_store
        from draas.deployment import replicators
        from draas.lab.writer import Keystone
        from draas.replication.mariadb import MariaDBReplicator
        from draas.traffic.dns import make_provider
        from draas.traffic.frontend.haproxy import HaproxyEngine

        self.cfg = cfg = load_config(config)
        self.timeout_s = timeout_s
        # The checker reads the servers' variables itself, over MariaDB's own connections.
        self.reps = {
            site: rep
            for site, rep in replicators(cfg).items()
            if isinstance(rep, MariaDBReplicator)
        }
        self.keystone = {
            name: Keystone(f"http://{s.address}:5000", password, timeout_s)
            for name, s in cfg.sites.items()
        }
        self.store = make_store(cfg.coordination, timeout_s=timeout_s)
        self.dns = make_provider(cfg.dns) if cfg.dns is not None else None
        sites = {name: s.address for name, s in cfg.sites.items()}
        self.frontends = {
            n.name: HaproxyEngine(n.name, admin_socket=str(n.admin_socket), sites=sites)
            for n in cfg.nodes_with_role("frontend")
            if n.admin_socket
        }
        self.pool = ThreadPoolExecutor(max_workers=8)

    def _database(self, site: str) -> tuple[bool | None, dict[str, str]]:
        """(read_only, the semi-sync master's status counters, its timeout, and the source
        its own replication receiver runs from: ``receiving_from``, '' when not running)."""
        try:
            with (
                self.reps[site].connect(connect_timeout=1, read_timeout=2) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(
                    "SELECT @@read_only AS ro, @@rpl_semi_sync_master_wait_no_slave AS nos, "
                    "@@rpl_semi_sync_master_timeout AS tmo"
                )
                v = cur.fetchone()
                cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
                st = {r["Variable_name"]: str(r["Value"]) for r in cur.fetchall()}
                cur.execute("SHOW SLAVE STATUS")
                slave = cur.fetchone() or {}
                cur.execute(STOPPING_SQL)
                stopping = stop_under_way(list(cur.fetchall()))
        except Exception:  # unreachable or refused: not known to accept writes
            return None, {}
        st["wait_no_slave"] = "ON" if v["nos"] else "OFF"
        st["timeout_ms"] = str(v["tmo"])
        st["address"] = self.cfg.sites[site].address
        # A receiver being stopped acknowledges nothing more, though it may read as running.
        running = slave.get("Slave_IO_Running") == "Yes" and not stopping
        st["receiving_from"] = str(slave.get("Master_Host") or "") if running else ""
        return bool(v["ro"]), st

    def _databases(self) -> tuple[dict[str, bool | None], dict[str, dict[str, str]]]:
        got = {s: self.pool.submit(self._database, s) for s in self.cfg.sites}
        done = {s: f.result() for s, f in got.items()}
        return {s: d[0] for s, d in done.items()}, {s: d[1] for s, d in done.items()}

    def _write(self, site: str) -> str:
        from draas.lab.writer import attempt

        outcome, status, _ = attempt(self.keystone[site], f"sb-{site}-{time.time_ns()}")
        return outcome if status is None else (ACCEPTS if status == 201 else f"status {status}")

    def _active(self) -> str | None:
        try:
            rec = self.store.active()
        except Exception:  # the store unreachable from here: unknown, not "nobody"
            return UNKNOWN
        return None if rec is None else rec.site

    def _dns(self) -> str | None:
        try:
            return None if self.dns is None else self.dns.current()
        except Exception:  # unknown
            return None

    def _route(self, fe: str) -> str | None:
        try:
            return self.frontends[fe].current()
        except Exception:  # a crashed HAProxy routes nowhere
            return None

    def sample(self) -> dict[str, Any]:
        """One sample, in the order the rules rely on (see the pure part above)."""
        t = time.time()
        active = self._active()
        read_only, semi = self._databases()
        wr = {s: self.pool.submit(self._write, s) for s in self.cfg.sites}
        dns = self.pool.submit(self._dns)
        fes = {f: self.pool.submit(self._route, f) for f in self.frontends}
        routes = {f: x.result() for f, x in fes.items()}
        writes = {s: f.result() for s, f in wr.items()}
        dns_now = dns.result()
        read_only_after, semi_after = self._databases()
        between = {site: held_between(semi[site], semi_after[site]) for site in semi}

        def sources(reading: Mapping[str, Mapping[str, str]]) -> dict[str, str | None]:
            # A site not read counts as possibly receiving from anyone: it proves nothing.
            return {
                s: (r.get("receiving_from") or None) if r else UNREAD for s, r in reading.items()
            }

        held = {
            site: between[site] or no_acknowledger(site, semi[site], sources(semi)) for site in semi
        }
        held_after = {
            site: between[site] or no_acknowledger(site, semi_after[site], sources(semi_after))
            for site in semi
        }
        return {
            "t": round(t, 3),
            "active": active,
            "read_only": read_only,
            "held": held,
            "write": writes,
            "dns": dns_now,
            "frontends": routes,
            "read_only_after": read_only_after,
            "held_after": held_after,
            "active_after": self._active(),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", required=True)
    ap.add_argument("--password-file", required=True, help="Keystone admin's password")
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--duration", type=float, required=True)
    args = ap.parse_args(argv)
    if not 0.05 <= args.interval <= 10 or not 1 <= args.duration <= 7200:
        print("error: --interval must be 0.05..10 s and --duration 1..7200 s", file=sys.stderr)
        return 2
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    sampler = Sampler(args.config, Path(args.password_file).read_text().strip(), args.timeout)
    end = time.monotonic() + args.duration
    with open(args.out, "w") as f:
        while not stop["now"] and time.monotonic() < end:
            t0 = time.monotonic()
            f.write(json.dumps(sampler.sample()) + "\n")
            f.flush()
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0)))
    sampler.pool.shutdown(wait=False, cancel_futures=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
