"""DNS providers against servers that speak their protocols on loopback: dyndns2 against a
small server implementing the documented answers; Route 53 against moto in server mode."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from draas.errors import ProviderBlocked, TrafficError
from draas.testkit import free_port, wait_port
from draas.traffic.dns.dyndns2 import USER_AGENT, Dyndns2Provider
from draas.traffic.dns.route53 import Route53Provider


class NoIp(BaseHTTPRequestHandler):
    """The dyndns2 protocol: the answer depends on the host name's first label."""

    requests: list[dict[str, Any]] = []
    flaky_left = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        NoIp.requests.append({"path": url.path, **q, "ua": self.headers.get("User-Agent")})
        auth = self.headers.get("Authorization", "")
        if auth != "Basic " + base64.b64encode(b"ops:right").decode():
            answer = "badauth"
        elif not (self.headers.get("User-Agent") or "").startswith("draas/"):
            answer = "badagent"
        else:
            label = q["hostname"].split(".")[0]
            answer = {
                "good": f"good {q['myip']}",
                "same": f"nochg {q['myip']}",
                "missing": "nohost",
                "abusive": "abuse",
                "poor": "!donator",
            }.get(label, "")
            if label == "flaky":
                NoIp.flaky_left -= 1
                answer = "911" if NoIp.flaky_left >= 0 else f"good {q['myip']}"
        body = answer.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def noip() -> Iterator[str]:
    NoIp.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoIp)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dyn(url: str, host: str, password: str = "right") -> Dyndns2Provider:
    return Dyndns2Provider(
        "dyndns2",
        url=url,
        record=f"{host}.example.org",
        ttl_s=60,
        username="ops",
        password=password,
        backoff_s=0.01,
    )


def test_good_update_sends_the_documented_request(noip: str) -> None:
    r = dyn(noip, "good").point_to("198.51.100.7")
    assert r.changed and r.attempts == 1
    (req,) = NoIp.requests
    assert req == {
        "path": "/nic/update",
        "hostname": "good.example.org",
        "myip": "198.51.100.7",
        "ua": USER_AGENT,
    }


def test_nochg_is_success_without_change(noip: str) -> None:
    p = dyn(noip, "same")
    assert p.point_to("198.51.100.7").changed is False
    assert p.current() == "198.51.100.7"


@pytest.mark.parametrize(
    ("host", "password", "answer"),
    [
        ("good", "wrong", "badauth"),
        ("missing", "right", "nohost"),
        ("abusive", "right", "abuse"),
        ("poor", "right", "!donator"),
    ],
)
def test_stop_answers_block_the_provider_for_good(
    noip: str, host: str, password: str, answer: str
) -> None:
    p = dyn(noip, host, password)
    with pytest.raises(ProviderBlocked, match=re.escape(f"'{answer}'") + ".*no further updates"):
        p.point_to("198.51.100.7")
    assert len(NoIp.requests) == 1  # never retried
    with pytest.raises(ProviderBlocked, match="blocked since it answered"):
        p.point_to("198.51.100.8")
    assert len(NoIp.requests) == 1  # and nothing more is ever sent
    assert p.check().ok is False


def test_911_is_retried_with_backoff_then_succeeds(noip: str) -> None:
    NoIp.flaky_left = 2
    r = dyn(noip, "flaky").point_to("198.51.100.9")
    assert r.attempts == 3 and r.changed


def test_bad_target_sends_nothing(noip: str) -> None:
    with pytest.raises(TrafficError, match=r"'not-an-ip'.*is not an IP address; nothing was sent"):
        dyn(noip, "good").point_to("not-an-ip")
    assert NoIp.requests == []


def test_unreachable_server_is_retryable_and_bounded() -> None:
    port = free_port()  # nothing listens there
    p = Dyndns2Provider(
        "dyndns2",
        url=f"http://127.0.0.1:{port}",
        record="good.example.org",
        ttl_s=60,
        username="ops",
        password="right",
        retries=2,
        backoff_s=0.01,
    )
    with pytest.raises(TrafficError, match="cannot reach") as info:
        p.point_to("198.51.100.7")
    assert info.value.retryable


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port("127.0.0.1", port, timeout_s=30, what="moto server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def r53_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "route53",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_route53_upsert_waits_insync_and_reads_back(moto_server: str) -> None:
    client = r53_client(moto_server)
    zone = client.create_hosted_zone(Name="example.org.", CallerReference=str(time.time()))
    zone_id = zone["HostedZone"]["Id"]
    p = Route53Provider(
        "route53", hosted_zone_id=zone_id, record="keystone.example.org", ttl_s=5, client=client
    )
    assert p.check().ok
    assert p.current() is None
    r = p.point_to("192.0.2.10")
    assert r.changed and p.current() == "192.0.2.10"
    assert p.point_to("192.0.2.10").changed is False
    p.point_to("198.51.100.10")
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    a = [s for s in sets if s["Type"] == "A"]
    assert a == [
        {
            "Name": "keystone.example.org.",
            "Type": "A",
            "TTL": 5,
            "ResourceRecords": [{"Value": "198.51.100.10"}],
        }
    ]


def test_route53_unknown_zone_is_a_clear_fatal_error(moto_server: str) -> None:
    p = Route53Provider(
        "route53",
        hosted_zone_id="/hostedzone/NOSUCHZONE",
        record="keystone.example.org",
        ttl_s=5,
        client=r53_client(moto_server),
    )
    with pytest.raises(TrafficError, match="NoSuchHostedZone") as info:
        p.point_to("192.0.2.10")
    assert not info.value.retryable
    assert p.check().ok is False


def answer_with_error(
    client: Any,
    operation: str,
    code: str,
    status: int,
    times: int,
    message: str = "",
    headers: dict[str, str] | None = None,
) -> list[str]:
    """The next ``times`` calls of ``operation`` get AWS's error ``code`` instead of reaching
    the (moto) server, the way Route 53 answers a client over its rate limit; returns a list
    that records every call of ``operation``."""
    from botocore.awsrequest import AWSResponse

    calls: list[str] = []

    def before_call(**_: Any) -> Any:
        calls.append(operation)
        if len(calls) > times:
            return None  # through to the server
        http = AWSResponse("https://route53.amazonaws.com/", status, headers or {}, None)
        return http, {
            "Error": {"Code": code, "Message": message or f"{code} (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        }

    client.meta.events.register(f"before-call.route-53.{operation}", before_call)
    return calls


def new_zone(client: Any) -> str:
    zone = client.create_hosted_zone(Name="example.org.", CallerReference=str(time.time_ns()))
    return str(zone["HostedZone"]["Id"])


def provider_in_new_zone(client: Any, **kw: Any) -> Route53Provider:
    """A Route 53 provider for a new hosted zone, retrying fast (the tests inject errors)."""
    args: dict[str, Any] = {"backoff_s": 0.01} | kw
    return Route53Provider(
        "route53",
        hosted_zone_id=new_zone(client),
        record="keystone.example.org",
        ttl_s=5,
        client=client,
        **args,
    )


def test_route53_throttling_is_retried_with_backoff_then_applied(moto_server: str) -> None:
    client = r53_client(moto_server)
    p = provider_in_new_zone(client)
    calls = answer_with_error(client, "ChangeResourceRecordSets", "Throttling", 400, times=2)
    r = p.point_to("192.0.2.20")
    assert r.changed and r.attempts == 3 and len(calls) == 3
    assert p.current() == "192.0.2.20"


def test_route53_refused_credentials_are_not_retried(moto_server: str) -> None:
    client = r53_client(moto_server)
    p = provider_in_new_zone(client)
    calls = answer_with_error(client, "ChangeResourceRecordSets", "AccessDenied", 403, times=9)
    with pytest.raises(TrafficError, match="AccessDenied") as info:
        p.point_to("192.0.2.21")
    assert not info.value.retryable and len(calls) == 1  # sent once, never again
    assert p.current() is None  # nothing changed


def test_route53_refusing_our_clock_says_so_and_by_how_much(moto_server: str) -> None:
    """AWS refuses a request signed more than 5 minutes off its own time: the error names the
    clock (from the answer's Date header), not the credentials."""
    from email.utils import formatdate

    client = r53_client(moto_server)
    p = provider_in_new_zone(client)
    theirs = formatdate(time.time() - 600, usegmt=True)  # we are ten minutes fast
    said = "Signature expired: 20261130T101000Z is now earlier than 20261130T100500Z"
    calls = answer_with_error(
        client,
        "ChangeResourceRecordSets",
        "InvalidSignatureException",
        403,
        9,
        said,
        {"date": theirs},
    )
    with pytest.raises(TrafficError, match="clock is \\+60[0-9] s off") as info:
        p.point_to("192.0.2.23")
    assert "rejects our request's signature time" in str(info.value)
    assert not info.value.retryable and len(calls) == 1


def test_route53_throttled_for_good_gives_up_within_its_retries(moto_server: str) -> None:
    client = r53_client(moto_server)
    p = provider_in_new_zone(client, retries=2)
    calls = answer_with_error(client, "ChangeResourceRecordSets", "Throttling", 400, times=99)
    with pytest.raises(TrafficError, match="Throttling") as info:
        p.point_to("192.0.2.22")
    assert info.value.retryable and len(calls) == 3  # the first try and two retries
