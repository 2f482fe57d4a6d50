"""A small server speaking the Designate v2 calls draas uses, for the lab's tests: tokens are
checked against the lab's real Keystone; a changed recordset is PENDING once, then ACTIVE.

    python fake_designate.py --bind ADDR --port PORT --keystone URL --zone draas.test.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ZONES: dict[str, dict[str, Any]] = {}
RECORDSETS: dict[str, dict[str, Any]] = {}
VALID: set[str] = set()
KEYSTONE = ""
BASE = ""


def token_ok(token: str | None) -> bool:
    if not token:
        return False
    if token in VALID:
        return True
    req = urllib.request.Request(
        f"{KEYSTONE}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            ok = bool(resp.status == 200)
    except urllib.error.URLError:
        ok = False
    if ok:
        VALID.add(token)
    return ok


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        print(fmt % args, flush=True)

    def send(self, code: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if parts in ([], ["v2"]):
            version = {
                "id": "v2.0",
                "status": "CURRENT",
                "links": [{"href": f"{BASE}/v2/", "rel": "self"}],
            }
            self.send(
                200, {"versions": {"values": [version]}} if not parts else {"version": version}
            )
            return
        if not token_ok(self.headers.get("X-Auth-Token")):
            self.send(401, {"code": 401, "type": "authentication_required"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        if parts[:2] == ["v2", "zones"] and len(parts) == 2:
            zones = [z for z in ZONES.values() if q.get("name") in (None, z["name"])]
            self.send(200, {"zones": zones, "links": {}, "metadata": {"total_count": len(zones)}})
        elif parts[:2] == ["v2", "zones"] and len(parts) == 3:
            z = ZONES.get(parts[2])
            self.send(200, z) if z else self.send(404, {"code": 404, "type": "zone_not_found"})
        elif len(parts) >= 4 and parts[3] == "recordsets":
            zone = ZONES.get(parts[2])
            if zone is None:
                self.send(404, {"code": 404, "type": "zone_not_found"})
                return
            if len(parts) == 4 and method == "GET":
                found = [
                    r
                    for r in RECORDSETS.values()
                    if r["zone_id"] == zone["id"]
                    and q.get("name") in (None, r["name"])
                    and q.get("type") in (None, r["type"])
                ]
                self.send(
                    200,
                    {"recordsets": found, "links": {}, "metadata": {"total_count": len(found)}},
                )
            elif len(parts) == 4 and method == "POST":
                rid = str(uuid.uuid4())
                RECORDSETS[rid] = {
                    "id": rid,
                    "zone_id": zone["id"],
                    "zone_name": zone["name"],
                    "name": body["name"],
                    "type": body["type"],
                    "records": body["records"],
                    "ttl": body.get("ttl"),
                    "status": "PENDING",
                    "action": "CREATE",
                }
                self.send(202, RECORDSETS[rid])
            elif len(parts) == 5 and parts[4] in RECORDSETS:
                rs = RECORDSETS[parts[4]]
                if method == "PUT":
                    rs.update(
                        {k: v for k, v in body.items() if k in ("records", "ttl")},
                        status="PENDING",
                        action="UPDATE",
                    )
                    self.send(202, rs)
                else:
                    shown = dict(rs)
                    if rs["status"] == "PENDING":  # pushed to the name servers after one look
                        rs.update(status="ACTIVE", action="NONE")
                    self.send(200, shown)
            else:
                self.send(404, {"code": 404, "type": "recordset_not_found"})
        else:
            self.send(404, {"code": 404, "type": "not_found"})

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")


def main() -> None:
    global KEYSTONE, BASE
    p = argparse.ArgumentParser()
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keystone", required=True)
    p.add_argument("--zone", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--address", required=True)
    a = p.parse_args()
    KEYSTONE, BASE = a.keystone.rstrip("/"), f"http://{a.bind}:{a.port}"
    zid = str(uuid.uuid4())
    ZONES[zid] = {"id": zid, "name": a.zone, "status": "ACTIVE", "action": "NONE"}
    rid = str(uuid.uuid4())
    RECORDSETS[rid] = {
        "id": rid,
        "zone_id": zid,
        "zone_name": a.zone,
        "name": a.record,
        "type": "A",
        "records": [a.address],
        "ttl": 5,
        "status": "ACTIVE",
        "action": "NONE",
    }
    ThreadingHTTPServer((a.bind, a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
