"""`security/http` in an endpoint's own section (KrakenD EE), through a real gateway: the
section's lines open the answer's head, before the endpoint's own, exactly once, on answers
and error answers alike; a refused host gets secure's answer alone; a CSP nonce is fresh per
answer; with CORS on the endpoint both sets of headers are there; the next request on the
same connection, to an endpoint without the section, gets none of them."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import backend, exchange, free_port, gateway, write_config

pytestmark = pytest.mark.slow

COMMON = {"frame_deny": True, "content_type_nosniff": True, "browser_xss_filter": True,
          "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"}
HEAVY = {**COMMON, "allowed_hosts_are_regex": True, "allowed_hosts": [r"127\.0\.0\.1:\d+"],
         "ssl_proxy_headers": {"X-Forwarded-Proto": "https"}, "sts_seconds": 31536000}
LINES = [("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"),
         ("x-xss-protection", "1; mode=block"), ("content-security-policy", "default-src 'self'"),
         ("referrer-policy", "same-origin")]
STS = ("strict-transport-security", "max-age=31536000")


def _endpoint(path: str, bport: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"endpoint": path, "extra_config": extra or {},
            "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/echo"}]}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with backend() as bport:
        closed = free_port()  # nothing listens: the endpoint answers with its error
        cfg = tmp_path_factory.mktemp("secure-endpoint") / "krakend.json"
        write_config(cfg, {"version": 3, "endpoints": [
            _endpoint("/plain", bport),
            _endpoint("/headers", bport, {"security/http": COMMON}),
            _endpoint("/heavy", bport, {"security/http": HEAVY}),
            _endpoint("/down", closed, {"security/http": COMMON}),
            _endpoint("/nonce", bport, {"security/http": {
                **COMMON, "content_security_policy": "script-src $NONCE"}}),
            _endpoint("/cors", bport, {"security/http": COMMON, "security/cors": {
                "allow_origins": ["https://app.example.com"]}}),
        ]})
        gport = free_port()
        with gateway(str(cfg), gport):
            yield gport


def _without_date(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [h for h in headers if h[0] != "date"]


def test_the_sections_lines_open_the_head_before_the_endpoints_own(port: int) -> None:
    _, plain, _ = exchange(port, "GET", "/plain")
    status, headers, body = exchange(port, "GET", "/headers")
    assert status == 200 and body
    assert _without_date(headers) == LINES + _without_date(plain)
    status, headers, _ = exchange(port, "GET", "/heavy", {"X-Forwarded-Proto": "https"})
    assert status == 200
    assert _without_date(headers) == [STS, *LINES, *_without_date(plain)]
    status, headers, _ = exchange(port, "GET", "/heavy")  # plain HTTP: no STS
    assert status == 200
    assert _without_date(headers) == LINES + _without_date(plain)


def test_an_error_answer_gets_the_lines_and_a_refused_host_gets_secures_answer(port: int
                                                                              ) -> None:
    status, headers, _ = exchange(port, "GET", "/down")
    assert status >= 500
    assert headers[:len(LINES)] == LINES
    assert [h for h in headers if h in LINES] == LINES  # once each
    status, headers, body = exchange(port, "GET", "/heavy", {"Host": "evil.example.com"})
    assert (status, body) == (500, b"Bad Host\n")
    assert _without_date(headers) == [("content-type", "text/plain; charset=utf-8"),
                                      ("x-content-type-options", "nosniff"),
                                      ("content-length", "9")]


def test_a_nonce_is_fresh_and_cors_headers_are_kept(port: int) -> None:
    csp = []
    for _ in range(2):
        status, headers, _ = exchange(port, "GET", "/nonce")
        assert status == 200
        csp += [v for k, v in headers if k == "content-security-policy"]
    assert len(csp) == 2 and csp[0] != csp[1] and csp[0].startswith("script-src 'nonce-")
    status, headers, _ = exchange(port, "GET", "/cors", {"Origin": "https://app.example.com"})
    assert status == 200
    assert ("access-control-allow-origin", "https://app.example.com") in headers
    assert [h for h in headers if h in LINES] == LINES


def test_the_next_request_on_the_connection_does_not_inherit_the_lines(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for path, expected in (("/headers", LINES), ("/plain", []), ("/headers", LINES)):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            got = [(k.lower(), v) for k, v in resp.getheaders()]
            assert [h for h in got if h in LINES] == expected, path
    finally:
        conn.close()
