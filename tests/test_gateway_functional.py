"""The gateway as a user runs it: a real `tidegate run` process and a real backend on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import SLOW_ARRIVED, backend, free_port, gateway, health, request, write_config

pytestmark = pytest.mark.slow


def config(backend_port: int, **root: Any) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{backend_port}"]
    data: dict[str, Any] = {
        "version": 3, "name": "functional", "cache_ttl": "300s", "timeout": "1s",
        "endpoints": [
            {"endpoint": "/users/{id}", "input_headers": ["X-Token"],
             "input_query_strings": ["page"],
             "backend": [{"host": host, "url_pattern": "/u/{id}?v=1"}]},
            {"endpoint": "/agg", "backend": [
                {"host": host, "url_pattern": "/a", "group": "first"},
                {"host": host, "url_pattern": "/b", "group": "second"}]},
            {"endpoint": "/partial", "timeout": "300ms", "backend": [
                {"host": host, "url_pattern": "/fast", "group": "fast"},
                {"host": host, "url_pattern": "/slow/x?ms=2000", "group": "slow"}]},
            {"endpoint": "/broken", "backend": [{"host": host, "url_pattern": "/status/404"}]},
            {"endpoint": "/post", "method": "POST",
             "backend": [{"host": host, "url_pattern": "/p"}]},
            {"endpoint": "/raw", "output_encoding": "no-op",
             "backend": [{"host": host, "url_pattern": "/r", "encoding": "no-op"}]},
            {"endpoint": "/down", "backend": [
                {"host": [f"http://127.0.0.1:{free_port()}"], "url_pattern": "/"}]},
        ],
    }
    data.update(root)
    return data


@pytest.fixture
def running(tmp_path: Path):
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport))
        port = free_port()
        with gateway(str(cfg), port) as gw:
            yield port, bport, gw


def test_proxy_filters_headers_and_query_and_adds_forwarding_headers(running) -> None:
    port, _, _ = running
    status, headers, body = request(port, "GET", "/users/42?page=2&secret=x",
                                    headers={"X-Token": "t", "X-Other": "o"})
    assert status == 200
    data = json.loads(body)
    assert data["path"] == "/u/42"
    assert data["query"] == "v=1&page=2"
    assert data["headers"]["X-Token"] == "t"
    assert "X-Other" not in data["headers"]
    assert data["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert data["headers"]["X-Forwarded-Host"] == f"127.0.0.1:{port}"
    assert data["headers"]["User-Agent"] == "KrakenD Version 2.13.8"  # as KrakenD's
    assert headers["x-krakend"] == "Version 2.13.8"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["x-krakend-completed"] == "true"


def test_two_backends_are_merged(running) -> None:
    port, _, _ = running
    status, headers, body = request(port, "GET", "/agg")
    data = json.loads(body)
    assert status == 200 and set(data) == {"first", "second"}
    assert data["first"]["path"] == "/a" and data["second"]["path"] == "/b"
    assert headers["x-krakend-completed"] == "true"


def test_endpoint_timeout_gives_partial_result(running) -> None:
    port, _, _ = running
    status, headers, body = request(port, "GET", "/partial")
    assert status == 200
    assert set(json.loads(body)) == {"fast"}
    assert headers["x-krakend-completed"] == "false"
    assert "cache-control" not in headers


def test_backend_error_status_is_500_without_body(running) -> None:
    port, _, _ = running
    status, headers, body = request(port, "GET", "/broken")
    assert (status, body) == (500, b"")
    assert headers["x-krakend-completed"] == "false"


def test_unreachable_backend_is_500_and_gateway_keeps_serving(running) -> None:
    port, _, _ = running
    assert request(port, "GET", "/down")[0] == 500
    assert request(port, "GET", "/agg")[0] == 200


def test_request_body_is_forwarded(running) -> None:
    port, _, _ = running
    status, _, body = request(port, "POST", "/post", body=b'{"a":1}',
                              headers={"Content-Type": "application/json"})
    data = json.loads(body)
    assert status == 200 and data["body"] == '{"a":1}' and data["method"] == "POST"
    assert data["headers"]["Content-Type"] == "application/json"


def test_no_op_passes_backend_answer_through(running) -> None:
    port, _, _ = running
    status, headers, body = request(port, "GET", "/raw")
    assert status == 200 and headers["set-cookie"] == "a=1"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["path"] == "/r"


def test_router_answers_like_krakend(running) -> None:
    port, _, _ = running
    assert request(port, "GET", "/nope")[::2] == (404, b"404 page not found")
    status, headers, body = request(port, "DELETE", "/agg")
    assert (status, body, headers["content-type"]) == (405, b"405 method not allowed",
                                                        "text/plain")
    status, headers, _ = request(port, "GET", "/AGG")
    assert (status, headers["location"]) == (301, "/agg")


def test_health_shows_generation_and_hash(running) -> None:
    port, _, _ = running
    info = health(port)
    assert info["status"] == "ok" and info["agents"] == {}
    assert info["generation"]["id"] == 1 and len(info["generation"]["config_hash"]) == 16
    assert info["last_reload_error"] is None


def test_keep_alive_connection_serves_many_requests(running) -> None:
    port, _, _ = running
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(20):
        assert request(port, "GET", "/agg", conn=conn)[0] == 200
    conn.close()


def test_malformed_request_gets_400_and_worker_survives(running) -> None:
    import socket

    port, _, _ = running
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GARBAGE\x00 / HTTP/9\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert request(port, "GET", "/agg")[0] == 200


def test_sigterm_lets_in_flight_request_finish(tmp_path: Path) -> None:
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        data = config(bport)
        data["endpoints"].append({"endpoint": "/slow", "timeout": "5s", "backend": [
            {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/slow/s?ms=800"}]})
        write_config(cfg, data)
        port = free_port()
        with gateway(str(cfg), port) as gw:
            result: dict[str, Any] = {}

            def slow() -> None:
                result["resp"] = request(port, "GET", "/slow")

            SLOW_ARRIVED.clear()
            t = threading.Thread(target=slow)
            t.start()
            assert SLOW_ARRIVED.wait(10), "the slow request never reached the backend"
            gw.proc.send_signal(signal.SIGTERM)
            t.join(10)
            assert result["resp"][0] == 200
            assert json.loads(result["resp"][2])["path"] == "/slow/s"


def test_default_config_serves_the_demo() -> None:
    port = free_port()
    with gateway(None, port):
        status, headers, body = request(port, "GET", "/demo")
        assert status == 200
        assert json.loads(body) == {"first": {"message": "pong"}, "second": {"message": "pong"}}
        assert headers["x-krakend-completed"] == "true"


def test_echo_endpoint_reflects_the_request(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    write_config(cfg, {"version": 3, "echo_endpoint": True, "endpoints": []})
    port = free_port()
    with gateway(str(cfg), port):
        status, _, body = request(port, "POST", "/__echo/x?a=1&a=2", body=b"hi",
                                  headers={"x-thing": "v"})
    data = json.loads(body)
    assert status == 200
    assert data["req_uri"] == "/__echo/x?a=1&a=2" and data["req_method"] == "POST"
    assert data["req_querystring"] == {"a": ["1", "2"]} and data["req_body"] == "hi"
    assert data["req_headers"]["X-Thing"] == ["v"]
    assert data["req_uri_details"]["path"] == "/__echo/x"


def test_run_warns_once_about_an_unknown_attribute(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    write_config(cfg, {"version": 3, "endpoints": [{"endpoint": "/a", "backend": [
        {"host": ["http://127.0.0.1:9"], "url_patern": "/x", "url_pattern": "/"}]}]})
    port = free_port()
    with gateway(str(cfg), port) as gw:
        warnings = [line for line in gw.log if "url_patern" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert "endpoints[0].backend[0].url_patern: unknown attribute `url_patern`, did you mean " \
        "`url_pattern`?" in warnings[0]


def test_expect_100_continue_is_answered_before_the_body(running) -> None:
    import socket

    port, _, _ = running
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
                  b"Content-Type: application/json\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b'{"a":1}')
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_client_gone_mid_request_cancels_cleanly(tmp_path: Path) -> None:
    import socket

    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, {"version": 3, "timeout": "5s", "endpoints": [
            {"endpoint": "/slow", "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/slow/s?ms=1500"}]},
            {"endpoint": "/fast", "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/f"}]}]})
        port = free_port()
        with gateway(str(cfg), port) as gw:
            SLOW_ARRIVED.clear()
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                assert SLOW_ARRIVED.wait(10)
            # The client left while its backend call was running: nothing breaks.
            assert request(port, "GET", "/fast")[0] == 200
            assert health(port)["status"] == "ok"
    assert not [line for line in gw.log if "Traceback" in line or "ERROR" in line]


def test_oversized_request_head_gets_431_and_worker_survives(running) -> None:
    import socket

    port, _, _ = running
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /agg HTTP/1.1\r\nHost: x\r\n")
        line = b"X-Filler: " + b"a" * 8000 + b"\r\n"
        try:
            for _ in range(200):  # 1.6 MB of headers, more than Go's 1 MiB limit
                s.sendall(line)
        except OSError:
            pass  # the gateway may close while we are still sending
        answer = s.recv(200)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert request(port, "GET", "/agg")[0] == 200


@pytest.mark.parametrize("raw", [
    b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /agg HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /agg HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /a\x00g HTTP/1.1\r\n\r\n",
])
def test_malformed_framing_gets_400(running, raw: bytes) -> None:
    import socket

    port, _, _ = running
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        assert s.recv(100).startswith(b"HTTP/1.1 400 Bad Request")
    assert request(port, "GET", "/agg")[0] == 200


def test_version_header_can_be_hidden_and_user_agent_set(tmp_path: Path) -> None:
    """router.hide_version_header obfuscates X-Krakend as lura does; TIDEGATE_USER_AGENT
    replaces the User-Agent (and X-Forwarded-Via) backends see."""
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        data = config(bport)
        data.setdefault("extra_config", {}).setdefault("router", {})["hide_version_header"] = True
        write_config(cfg, data)
        port = free_port()
        with gateway(str(cfg), port, env={"TIDEGATE_USER_AGENT": "gateway/1"}):
            status, headers, body = request(port, "GET", "/users/42")
    assert status == 200 and headers["x-krakend"] == "Version undefined"
    assert json.loads(body)["headers"]["User-Agent"] == "gateway/1"
