"""The client's address: router `trusted_proxies`, `forwarded_by_client_ip`, `remote_ip_headers`
with gin's meanings, and nothing trusted by default (a client cannot choose its address)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, free_port, gateway, request, write_config
from tidegate.config.model import build_service
from tidegate.errors import ConfigErrors
from tidegate.messages import Request
from tidegate.pipeline.client_ip import ClientIPRules, client_ip_rules, resolve
from tidegate.pipeline.endpoint import compile_request_builder


def parse_rules(router: dict[str, Any]) -> ClientIPRules | None:
    """The rules the generation compiles from a root ``router`` section."""
    return client_ip_rules(build_service({"version": 3, "extra_config": {"router": router},
                                          "endpoints": []}).router)


def _req(peer: str, *headers: tuple[str, str]) -> Request:
    return Request("GET", "/", "/", "", list(headers), b"", peer, "1.1")


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert parse_rules({}) is None
    assert parse_rules({"forwarded_by_client_ip": True, "remote_ip_headers": ["X-Real-IP"]}) \
        is None
    # trusted proxies, but the operator turned forwarded addresses off (gin: RemoteIP)
    assert parse_rules({"trusted_proxies": ["10.0.0.0/8"], "forwarded_by_client_ip": False}) \
        is None


def test_gin_client_ip_walks_the_list_from_the_right() -> None:
    rules = parse_rules({"trusted_proxies": ["10.0.0.0/8", "192.168.1.7"]})
    assert rules is not None
    # the peer is a trusted proxy: the rightmost address that is not one is the client
    assert resolve(rules, _req("10.1.2.3", ("x-forwarded-for", "203.0.113.7, 10.0.0.1"))) \
        == "203.0.113.7"
    assert resolve(rules, _req("10.1.2.3", ("x-forwarded-for",
                                            "198.51.100.1, 203.0.113.7, 192.168.1.7"))) \
        == "203.0.113.7"
    # every hop trusted: the leftmost
    assert resolve(rules, _req("10.1.2.3", ("x-forwarded-for", "10.9.9.9, 10.0.0.1"))) \
        == "10.9.9.9"
    # a list holding something else is ignored; X-Real-IP is next
    assert resolve(rules, _req("10.1.2.3", ("x-forwarded-for", "203.0.113.7, junk"),
                               ("x-real-ip", "198.51.100.2"))) == "198.51.100.2"
    # the peer is not trusted: its headers are not read
    assert resolve(rules, _req("127.0.0.1", ("x-forwarded-for", "203.0.113.7"))) == "127.0.0.1"
    # an IPv4-mapped peer is the IPv4 one (Go compares them so)
    assert resolve(rules, _req("::ffff:10.0.0.5", ("x-real-ip", "198.51.100.2"))) \
        == "198.51.100.2"


def test_remote_ip_headers_replace_the_default_list() -> None:
    rules = parse_rules({"trusted_proxies": ["127.0.0.1"],
                         "remote_ip_headers": ["CF-Connecting-IP"]})
    assert rules is not None
    req = _req("127.0.0.1", ("x-forwarded-for", "203.0.113.7"),
               ("cf-connecting-ip", "2001:db8::1"))
    assert resolve(rules, req) == "2001:db8::1"


def forwarded_for(req: Request, trusted_proxies: bool) -> str:
    """The ``X-Forwarded-For`` the endpoint's request builder gives a backend."""
    service = build_service({"version": 3, "endpoints": [{
        "endpoint": "/", "backend": [{"host": ["http://127.0.0.1:1"], "url_pattern": "/"}]}]})
    build = compile_request_builder(service.endpoints[0], "tidegate",
                                    trusted_proxies=trusted_proxies)
    (value,) = build(req, {}).headers["X-Forwarded-For"]
    return value


def test_forwarded_for_towards_backends() -> None:
    sent = _req("127.0.0.1", ("x-forwarded-for", "6.6.6.6"))
    assert forwarded_for(sent, trusted_proxies=False) == "6.6.6.6, 127.0.0.1"
    assert forwarded_for(_req("127.0.0.1"), trusted_proxies=False) == "127.0.0.1"
    twice = _req("127.0.0.1", ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "7.7.7.7"))
    assert forwarded_for(twice, trusted_proxies=False) == "6.6.6.6, 7.7.7.7, 127.0.0.1"
    sent.client_ip = "203.0.113.7"
    assert forwarded_for(sent, trusted_proxies=True) == "203.0.113.7"


@pytest.mark.parametrize(("router", "where", "text"), [
    ({"trusted_proxies": ["10.0.0.300"]}, ("trusted_proxies", 0), "not an IP address"),
    ({"trusted_proxies": ["10.0.0.0/33"]}, ("trusted_proxies", 0), "invalid CIDR"),
    ({"trusted_proxies": "10.0.0.1"}, ("trusted_proxies",), "must be a list"),
    ({"trusted_proxies": ["10.0.0.1"], "forwarded_by_client_ip": "yes"},
     ("forwarded_by_client_ip",), "true or false"),
])
def test_bad_router_settings_are_located_errors(router: dict[str, Any], where: tuple[Any, ...],
                                                text: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        parse_rules(router)
    (error,) = err.value.errors
    assert error.path == ("extra_config", "router", *where)
    assert text in str(error)


def _config(port: int, router: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "extra_config": {"router": router}, "endpoints": [{
        "endpoint": "/echo", "backend": [{"host": [f"http://127.0.0.1:{port}"],
                                          "url_pattern": "/echo"}]}]}


@pytest.mark.slow
def test_a_client_cannot_choose_its_address_by_default(tmp_path: Path) -> None:
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, _config(bport, {}))
        port = free_port()
        with gateway(str(cfg), port):
            status, _, body = request(port, "GET", "/echo",
                                      headers={"X-Forwarded-For": "6.6.6.6"})
            assert status == 200
            # the backend sees the spoofed value, then the address tidegate vouches for
            assert json.loads(body)["headers"]["X-Forwarded-For"] == "6.6.6.6, 127.0.0.1"


@pytest.mark.slow
def test_a_trusted_proxy_tells_the_client_address(tmp_path: Path) -> None:
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, _config(bport, {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}))
        port = free_port()
        with gateway(str(cfg), port):
            status, _, body = request(port, "GET", "/echo", headers={
                "X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.0.0.1"})
            assert status == 200
            assert json.loads(body)["headers"]["X-Forwarded-For"] == "203.0.113.7"


def test_check_refuses_a_bad_trusted_proxy(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    cfg.write_text(json.dumps(_config(9, {"trusted_proxies": ["10.0.0.0/8", "nope"]}), indent=1))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1
    assert 'extra_config.router.trusted_proxies[1]' in proc.stdout + proc.stderr
    assert "'nope' is not an IP address" in proc.stdout + proc.stderr
