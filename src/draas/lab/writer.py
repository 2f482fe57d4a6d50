"""A Keystone write load that records what was acknowledged: it creates projects named
``PREFIX-SEQ`` through the API and logs every attempt as a JSON line. A write starts every
``--interval`` on a fixed schedule, on any of ``--workers`` clients that is free: while writes
hang on a dead site (up to ``--timeout``), new ones are still tried on time, so the first
write the service acknowledges after a disaster is seen within an interval of it being
possible, not after a timeout.

    python -m draas.lab.writer --url http://keystone.draas.test:5000 --password-file F \\
        --prefix w1 --duration 10 --interval 0.05 --out writes.jsonl

Outcome per attempt: ``acked`` (201: the service says it is stored), ``failed`` (a refusal, or
no connection: nothing was sent), ``unknown`` (sent, but no answer: it may or may not be stored).
Runs inside a lab host (``ip netns exec``), resolving the name as any client there would.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class Keystone:
    def __init__(self, url: str, password: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        self.password = password
        self.timeout = timeout
        self.token: str | None = None

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        # One connection per request: a reused idle connection that the server closed would
        # turn a write that never reached the service into an "unknown" outcome.
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        try:
            conn.request(
                method,
                path,
                body=data,
                headers={"Content-Type": "application/json", "Connection": "close", **headers},
            )
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def authenticate(self) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"name": "Default"},
                            "password": self.password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        }
        status, headers, _ = self._request("POST", "/v3/auth/tokens", body, {})
        if status != 201:
            raise ConnectionError(f"authentication answered {status}")
        self.token = {k.lower(): v for k, v in headers.items()}["x-subject-token"]

    def create_project(self, name: str) -> int:
        if self.token is None:
            self.authenticate()
        body = {"project": {"name": name, "domain_id": "default"}}
        status, _, _ = self._request(
            "POST", "/v3/projects", body, {"X-Auth-Token": self.token or ""}
        )
        if status == 401:
            self.token = None
        return status


def attempt(ks: Keystone, name: str) -> tuple[str, int | None, str]:
    try:
        if ks.token is None:
            ks.authenticate()
    except (OSError, http.client.HTTPException) as exc:
        return "failed", None, f"auth: {exc}"
    try:
        status = ks.create_project(name)
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return "failed", None, str(exc)  # nothing reached the service
    except (OSError, http.client.HTTPException) as exc:
        return "unknown", None, str(exc) or type(exc).__name__
    if status == 201:
        return "acked", status, ""
    return ("unknown" if status in (502, 504) else "failed"), status, ""


def run(
    url: str,
    password: str,
    prefix: str,
    duration: float,
    interval: float,
    out: Path,
    timeout: float,
    max_writes: int,
    workers: int = 1,
) -> dict[str, int]:
    """A write is started every ``interval`` on a fixed schedule, by whichever of ``workers``
    clients is free: writes hanging on a dead site do not delay the next one (a tick with
    every client busy is skipped and counted)."""
    counts = {"acked": 0, "failed": 0, "unknown": 0, "skipped": 0}
    t_end = time.time() + duration
    seqs = itertools.count(1)
    lock = threading.Lock()
    free = [Keystone(url, password, timeout) for _ in range(workers)]
    threads: list[threading.Thread] = []

    def one(ks: Keystone, seq: int) -> None:
        name = f"{prefix}-{seq:06d}"
        t0 = time.time()
        outcome, status, error = attempt(ks, name)
        t1 = time.time()
        row = {
            "seq": seq,
            "name": name,
            "t_start": round(t0, 6),
            "t_end": round(t1, 6),
            "outcome": outcome,
            "status": status,
            "error": error,
        }
        with lock:
            counts[outcome] += 1
            f.write(json.dumps(row) + "\n")
            f.flush()
            free.append(ks)

    with out.open("a") as f:
        tick = time.monotonic()
        while time.time() < t_end:
            with lock:
                ks = free.pop() if free else None
                if ks is None:
                    counts["skipped"] += 1
                seq = next(seqs) if ks is not None else 0
            if seq > max_writes:
                break
            if ks is not None:
                t = threading.Thread(target=one, args=(ks, seq), daemon=True)
                t.start()
                threads = [x for x in threads if x.is_alive()] + [t]
            tick += interval
            time.sleep(max(0.0, tick - time.monotonic()))
        for t in threads:
            t.join()
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="draas-writer", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="Keystone base URL, e.g. http://host:5000")
    p.add_argument("--password-file", type=Path, required=True, help="admin password file")
    p.add_argument("--prefix", required=True, help="project name prefix")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--interval", type=float, default=0.05, help="seconds between writes")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout")
    p.add_argument("--max-writes", type=int, default=100_000)
    p.add_argument(
        "--workers", type=int, default=1, help="writes in flight at most (clients, 1-16)"
    )
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if not 0 < a.duration <= 7200 or not 0 <= a.interval <= 60:
        p.error("--duration must be in (0, 7200] s and --interval in [0, 60] s")
    if not 1 <= a.workers <= 16:
        p.error(f"--workers must be 1 to 16, not {a.workers}")
    counts = run(
        a.url,
        a.password_file.read_text().strip(),
        a.prefix,
        a.duration,
        a.interval,
        a.out,
        a.timeout,
        a.max_writes,
        a.workers,
    )
    print(json.dumps(counts))
    return 0


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
