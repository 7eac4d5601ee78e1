"""What a client sees of streamed bodies: framing, gzip, keep-alive, early answers, aborts.

Bodies over the streaming threshold (256 KiB) take the streamed path. Chunked and gzip framing
differ from the held path (those tests fail on it); the others guard that the streamed path
keeps what the held one gave: keep-alive, early answers, clients that leave. Raw sockets on
127.0.0.1, every wait bounded by a socket timeout.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from tests.memory_support import MiB, bulk_backend, pattern
from tests.support import free_port, gateway, read_head, request, write_config

pytestmark = pytest.mark.slow

SIZE = 3 * MiB + 17


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with bulk_backend() as bport:
        host = [f"http://127.0.0.1:{bport}"]
        no_op = {"output_encoding": "no-op", "input_query_strings": ["size", "gzip"]}
        config = tmp_path_factory.mktemp("streaming") / "krakend.json"
        write_config(config, {"version": 3, "timeout": "10s", "echo_endpoint": True,
                              "endpoints": [
            {"endpoint": "/blob", **no_op,
             "backend": [{"host": host, "url_pattern": "/blob", "encoding": "no-op"}]},
            {"endpoint": "/chunked", **no_op,
             "backend": [{"host": host, "url_pattern": "/chunked", "encoding": "no-op"}]},
            {"endpoint": "/upload", "method": "POST",
             "backend": [{"host": host, "url_pattern": "/sink"}]},
        ]})
        port = free_port()
        with gateway(str(config), port):
            yield port


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response, decoding Content-Length, chunked or close framing."""
    head, rest = read_head(sock)
    lower = head.lower()
    if b"\r\ncontent-length: " in lower:
        length = int(lower.split(b"\r\ncontent-length: ")[1].split(b"\r\n")[0])
        while len(rest) < length:
            chunk = sock.recv(1 << 20)
            assert chunk, len(rest)
            rest += chunk
        return head, rest[:length]
    if b"\r\ntransfer-encoding: chunked" in lower:
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                chunk = sock.recv(1 << 20)
                assert chunk
                rest += chunk
            if size == 0:
                return head, body
            body += rest[:size]
            rest = rest[size + 2:]
    while chunk := sock.recv(1 << 20):  # close-delimited
        rest += chunk
    return head, rest


def _get(port: int, target: str, version: str = "1.1") -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/{version}\r\nHost: t\r\n\r\n".encode())
        return _read_response(sock)


def test_a_chunked_no_op_answer_is_chunked_to_a_client(gw: int) -> None:
    head, body = _get(gw, f"/chunked?size={SIZE}")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head, head
    assert body == pattern(0, SIZE)


def test_an_http10_client_gets_a_close_delimited_stream(gw: int) -> None:
    head, body = _get(gw, f"/chunked?size={SIZE}", version="1.0")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head, head
    assert b"chunked" not in head
    assert body == pattern(0, SIZE)


def test_a_gzipped_no_op_answer_is_inflated_as_it_streams(gw: int) -> None:
    head, body = _get(gw, f"/chunked?size={SIZE}&gzip=1")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"Content-Encoding" not in head and b"Content-Length" not in head, head
    assert body == pattern(0, SIZE)


def test_streamed_answers_follow_each_other_on_one_connection(gw: int) -> None:
    with socket.create_connection(("127.0.0.1", gw), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(f"GET /blob?size={SIZE} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            head, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and body == b"x" * SIZE


def test_an_upload_answered_before_it_is_read_still_gets_its_answer(gw: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gw, timeout=10)
    try:
        conn.request("POST", "/nowhere", body=b"z" * (8 * MiB))
        resp = conn.getresponse()
        assert resp.status == 404
        assert resp.read() == b"404 page not found"
    finally:
        conn.close()
    assert request(gw, "GET", "/__health")[0] == 200


def test_a_streamed_upload_then_the_next_request_on_the_same_connection(gw: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gw, timeout=10)
    try:
        for size in (SIZE, 10, SIZE):
            status, _, body = request(gw, "POST", "/upload", b"p" * size, conn=conn)
            assert status == 200 and json.loads(body) == {"received": size}
        status, _, body = request(gw, "POST", "/__echo/x", b"e" * SIZE, conn=conn)
        assert status == 200 and len(json.loads(body)["req_body"]) == SIZE
    finally:
        conn.close()


def test_a_client_gone_mid_download_leaves_the_gateway_serving(gw: int) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", gw), timeout=10) as sock:
            sock.sendall(f"GET /blob?size={64 * MiB} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    head, body = _get(gw, f"/blob?size={SIZE}")
    assert head.startswith(b"HTTP/1.1 200") and body == b"x" * SIZE


def test_a_client_gone_mid_upload_leaves_the_gateway_serving(gw: int) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", gw), timeout=10) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                         % (64 * MiB))
            sock.sendall(b"q" * MiB)
    status, _, body = request(gw, "POST", "/upload", b"p" * SIZE)
    assert status == 200 and json.loads(body) == {"received": SIZE}
