"""The edge, tried as a hostile or broken client would: every phase of a connection is bounded
(head size and time, body time, response time, idle time) and malformed request shapes get
Go's answers. Raw sockets on 127.0.0.1; every wait is bounded by a socket timeout.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import backend, free_port, gateway, request, write_config

pytestmark = pytest.mark.slow


def _config(bport: int, **root: Any) -> dict[str, Any]:
    return {"version": 3, "timeout": "5s", "echo_endpoint": True, **root, "endpoints": [
        {"endpoint": "/slow", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                           "url_pattern": "/slow/x?ms=1500"}]}]}


@pytest.fixture
def edge(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """A gateway with the root settings the test is parametrised with (or none); its port."""
    root = getattr(request, "param", {})
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, _config(bport, **root))
        port = free_port()
        with gateway(str(config), port):
            yield port


def _connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (bounded by the socket timeout)."""
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def _exchange(port: int, raw: bytes) -> bytes:
    with _connect(port) as sock:
        sock.sendall(raw)
        return _read_all(sock)


def _healthy(port: int) -> bool:
    return request(port, "GET", "/__health")[0] == 200


# --- the head: size and time --------------------------------------------------------------


def test_a_header_that_never_ends_gets_431_without_stalling_others(edge: int) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"GET /__health HTTP/1.1\r\nHost: a\r\nX-Long: ")
        started = time.monotonic()
        answer = b""
        try:
            for _ in range(64):  # up to 4 MiB, far past the 1 MiB + 4 KiB limit
                sock.sendall(b"a" * 65536)
                assert _healthy(edge)  # another client is served meanwhile
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(ConnectionResetError):
            answer = _read_all(sock)
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n") or answer == b""
    assert _healthy(edge)


@pytest.mark.parametrize("edge", [{"max_header_bytes": 4096}], indirect=True)
def test_max_header_bytes_is_honoured(edge: int) -> None:
    big = b"GET /__health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
    assert _exchange(edge, big).startswith(b"HTTP/1.1 431 ")
    small = b"GET /__health HTTP/1.1\r\nHost: a\r\nX-Small: " + b"b" * 2000 + b"\r\n\r\n"
    with _connect(edge) as sock:
        sock.sendall(small)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("edge", [{"read_header_timeout": "300ms"}], indirect=True)
def test_slowloris_heads_are_closed_at_the_header_timeout(edge: int) -> None:
    slow = [_connect(edge) for _ in range(200)]
    silent = [_connect(edge) for _ in range(20)]
    try:
        started = time.monotonic()
        for sock in slow:
            sock.sendall(b"GET /__health HTTP/1.1\r\nHost: a\r\nX-A: ")
        answers = [_read_all(sock) for sock in slow]
        elapsed = time.monotonic() - started
        assert all(a.startswith(b"HTTP/1.1 408 Request Timeout\r\n") for a in answers)
        assert [_read_all(sock) for sock in silent] == [b""] * len(silent)  # closed quietly
        assert elapsed < 3
        assert _healthy(edge)
    finally:
        for sock in slow + silent:
            sock.close()


@pytest.mark.parametrize("edge", [{"read_timeout": "400ms"}], indirect=True)
def test_a_body_that_stops_coming_is_cut_at_the_read_timeout(edge: int) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
        started = time.monotonic()
        assert _read_all(sock).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("edge", [{"idle_timeout": "300ms"}], indirect=True)
def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(edge: int) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"GET /__health HTTP/1.1\r\nHost: a\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        started = time.monotonic()
        assert _read_all(sock) == b""  # closed, without an answer
        assert 0.2 < time.monotonic() - started < 3


@pytest.mark.parametrize("edge", [{"write_timeout": "500ms"}], indirect=True)
def test_a_response_later_than_the_write_timeout_is_never_written(edge: int) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        started = time.monotonic()
        try:
            answer = _read_all(sock)
        except ConnectionResetError:
            answer = b""
        assert answer == b""
        assert time.monotonic() - started < 1.4  # the backend answers after 1.5 s
    assert _healthy(edge)


@pytest.mark.parametrize("edge", [{"disable_keep_alives": True}], indirect=True)
def test_disable_keep_alives_closes_after_each_response(edge: int) -> None:
    answer = _exchange(edge, b"GET /__health HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in answer


# --- request shapes -------------------------------------------------------------------------


def test_http11_without_host_or_with_two_hosts_gets_400(edge: int) -> None:
    assert _exchange(edge, b"GET /__health HTTP/1.1\r\n\r\n").endswith(
        b"\r\n\r\n400 Bad Request: missing required Host header")
    assert _exchange(edge, b"GET /__health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").endswith(
        b"\r\n\r\n400 Bad Request: too many Host headers")
    # HTTP/1.0 needs no Host.
    assert _exchange(edge, b"GET /__health HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")


def test_http2_on_an_http1_connection_gets_505(edge: int) -> None:
    assert _exchange(edge, b"GET /__health HTTP/2.0\r\nHost: a\r\n\r\n").startswith(
        b"HTTP/1.1 505 HTTP Version Not Supported\r\n")


def test_an_http09_request_line_gets_400_at_once(edge: int) -> None:
    with _connect(edge, timeout=3) as sock:
        sock.sendall(b"GET /__health\r\n")  # no blank line: the answer must not wait for one
        assert _read_all(sock).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_a_malformed_request_after_a_pipelined_one_is_answered_after_it(edge: int) -> None:
    answer = _exchange(edge, b"GET /__health HTTP/1.1\r\nHost: a\r\n\r\n"
                             b"GET /__health HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 400 Bad Request\r\n" in answer


def test_a_100_kib_target_is_served_as_go_serves_it(edge: int) -> None:
    status, _, _ = request(edge, "GET", "/__health?x=" + "a" * 100 * 1024)
    assert status == 200


def test_an_absolute_form_target_takes_its_authority_as_the_host(edge: int) -> None:
    answer = _exchange(edge, b"GET http://api.example:81/__echo/x?a=1 HTTP/1.1\r\n"
                             b"Host: other\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"host":"api.example:81"' in answer and b'"path":"/__echo/x"' in answer


@pytest.mark.parametrize("upgrade", [b"h2c", b"websocket"])
def test_an_upgrade_request_is_answered_in_http1_and_the_connection_goes_on(
        edge: int, upgrade: bytes) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"GET /__health HTTP/1.1\r\nHost: a\r\n"
                     b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: " + upgrade + b"\r\n"
                     b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
                     b"GET /__health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        answer = _read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2


# --- what reaches the backend ---------------------------------------------------------------


def test_decoded_path_parameters_cannot_change_the_backend_url(tmp_path: Path) -> None:
    """`%2e%2e`, `%3F`, `%23`, `%25` arrive decoded; put back verbatim they would climb a
    segment, start a query or a fragment, or be decoded twice: they are encoded again."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, {"version": 3, "endpoints": [
            {"endpoint": "/p/{id}", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                                 "url_pattern": "/echo/{id}?x={id}"}]}]})
        port = free_port()
        with gateway(str(config), port):
            def seen(path: str) -> tuple[str, str]:
                status, _, body = request(port, "GET", path)
                assert status == 200
                data = json.loads(body)
                return data["path"], data["query"]

            assert seen("/p/%2e%2e") == ("/echo/%2E%2E", "x=..")
            assert seen("/p/a%3Fadmin=true") == ("/echo/a%3Fadmin=true", "x=a?admin=true")
            assert seen("/p/a%23frag") == ("/echo/a%23frag", "x=a%23frag")
            assert seen("/p/a%2541") == ("/echo/a%2541", "x=a%2541")
            assert seen("/p/a%26b=1") == ("/echo/a&b=1", "x=a%26b=1")
            assert seen("/p/plain") == ("/echo/plain", "x=plain")
