"""`security/http` through a real gateway: the headers on every answer (404 included, not
/__health), allowed hosts (500 Bad Host as unrolled/secure), the HTTPS redirect and STS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import backend, exchange, free_port, gateway, write_config
from tests.support import header_values as values

pytestmark = pytest.mark.slow

SECURE = {"allowed_hosts": ["api.example.com"],
          "host_proxy_headers": ["X-Forwarded-Host"],
          "ssl_redirect": True, "ssl_host": "secure.example.com",
          "ssl_proxy_headers": {"X-Forwarded-Proto": "https"},
          "sts_seconds": 31536000, "sts_include_subdomains": True,
          "frame_deny": True, "content_type_nosniff": True, "browser_xss_filter": True,
          "content_security_policy": "default-src 'self'; script-src $NONCE",
          "referrer_policy": "no-referrer", "hpkp_public_key": "pin-sha256=\"x\""}

HTTPS = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}


def _config(bport: int, section: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "extra_config": {"security/http": section}, "endpoints": [
        {"endpoint": "/users", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                            "url_pattern": "/echo"}]}]}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with backend() as bport:
        cfg = tmp_path_factory.mktemp("secure") / "krakend.json"
        write_config(cfg, _config(bport, SECURE))
        gport = free_port()
        with gateway(str(cfg), gport):
            yield gport


def test_headers_on_a_proxied_answer_and_on_a_404(port: int) -> None:
    for path, status in (("/users", 200), ("/nowhere", 404)):
        got, headers, _ = exchange(port, "GET", path, HTTPS)
        assert got == status
        assert values(headers, "strict-transport-security") == [
            "max-age=31536000; includeSubDomains"]
        assert values(headers, "x-frame-options") == ["DENY"]
        assert values(headers, "x-content-type-options") == ["nosniff"]
        assert values(headers, "x-xss-protection") == ["1; mode=block"]
        assert values(headers, "referrer-policy") == ["no-referrer"]
        assert not values(headers, "public-key-pins")  # accepted, not applied (KrakenD CE)
    csp = [values(exchange(port, "GET", "/users", HTTPS)[1], "content-security-policy")[0]
           for _ in range(2)]
    assert all(c.startswith("default-src 'self'; script-src 'nonce-") for c in csp)
    assert csp[0] != csp[1]  # a fresh nonce per answer


def test_a_host_not_allowed_gets_500_bad_host(port: int) -> None:
    status, headers, body = exchange(port, "GET", "/users", {**HTTPS, "Host": "evil.test"})
    assert (status, body) == (500, b"Bad Host\n")
    assert values(headers, "content-type") == ["text/plain; charset=utf-8"]
    # a proxy header naming an allowed host is enough
    assert exchange(port, "GET", "/users", {**HTTPS, "Host": "10.0.0.1",
                                            "X-Forwarded-Host": "api.example.com"})[0] == 200


def test_plain_http_is_redirected_and_health_is_left_alone(port: int) -> None:
    status, headers, body = exchange(port, "GET", "/users?page=2", {"Host": "api.example.com"})
    assert status == 301
    assert values(headers, "location") == ["https://secure.example.com/users?page=2"]
    assert body == b'<a href="https://secure.example.com/users?page=2">Moved Permanently</a>.\n\n'
    assert not values(headers, "strict-transport-security")
    status, headers, _ = exchange(port, "GET", "/__health", {"Host": "evil.test"})
    assert status == 200 and not values(headers, "x-frame-options")


def test_is_development_turns_off_hosts_redirect_and_sts(tmp_path_factory: pytest.TempPathFactory
                                                         ) -> None:
    with backend() as bport:
        cfg = tmp_path_factory.mktemp("dev") / "krakend.json"
        write_config(cfg, _config(bport, {**SECURE, "is_development": True}))
        gport = free_port()
        with gateway(str(cfg), gport):
            status, headers, _ = exchange(gport, "GET", "/users", {"Host": "evil.test"})
            assert status == 200
            assert not values(headers, "strict-transport-security")
            assert values(headers, "x-frame-options") == ["DENY"]


def test_a_tls_listener_gets_sts_and_no_redirect(tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    from tests.tls_support import Authority, client_context, tls_connect

    folder = tmp_path_factory.mktemp("tls")
    ca = Authority(folder)
    leaf = ca.issue("server")
    section = {"ssl_redirect": True, "sts_seconds": 600}
    with backend() as bport:
        cfg = folder / "krakend.json"
        write_config(cfg, {**_config(bport, section), "tls": {
            "keys": [{"public_key": str(leaf.cert), "private_key": str(leaf.key)}]}})
        gport = free_port()
        with gateway(str(cfg), gport), tls_connect(gport, client_context(ca.path)) as sock:
            sock.sendall(b"GET /users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 200 ")
    assert "Strict-Transport-Security: max-age=600\r\n" in head + "\r\n"
