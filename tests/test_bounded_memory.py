"""Memory per connection is bounded by a buffer, not by the size of a body.

Each test drives one large transfer through a fresh one-worker gateway and asserts that the
worker's peak RSS (VmHWM) stays within `BUDGET` of its idle RSS, and that a probe on another
connection kept being answered meanwhile. Sizes are a few times the budget, so holding the
body whole (as tidegate did) fails; `bench/bounded_memory.py` runs the 1 GiB versions.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import MiB, Probe, bulk_backend, status_kib, worker_pid
from tests.support import free_port, gateway, read_head, request, write_config

pytestmark = pytest.mark.slow

BUDGET = 64 * MiB
# What another client may wait during a transfer on this shared machine (the bench measures
# the real figure; a body inflated or copied whole in the loop takes far longer).
PROBE_LIMIT = 0.5


def _config(bport: int, **root: Any) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "timeout": "60s", **root, "endpoints": [
        {"endpoint": "/upload", "method": "POST",
         "backend": [{"host": host, "url_pattern": "/sink"}]},
        {"endpoint": "/upload-twice", "method": "POST",
         "extra_config": {"proxy": {"max_payload": 1 * MiB}},
         "backend": [{"host": host, "url_pattern": "/sink", "group": "a"},
                     {"host": host, "url_pattern": "/sink", "group": "b"}]},
        {"endpoint": "/upload-small", "method": "POST",
         "extra_config": {"proxy": {"max_payload": 1000}},
         "backend": [{"host": host, "url_pattern": "/sink"}]},
        {"endpoint": "/download", "output_encoding": "no-op", "input_query_strings": ["size"],
         "backend": [{"host": host, "url_pattern": "/blob", "encoding": "no-op"}]},
        {"endpoint": "/bomb", "input_query_strings": ["size"],
         "backend": [{"host": host, "url_pattern": "/bomb"}]},
        {"endpoint": "/json", "backend": [{"host": host, "url_pattern": "/json"}]},
    ]}


@contextmanager
def _measured(tmp_path: Path, **root: Any) -> Iterator[tuple[int, int, int]]:
    """(gateway port, worker pid, idle RSS in bytes) of a fresh one-worker gateway."""
    with bulk_backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, _config(bport, **root))
        port = free_port()
        with gateway(str(config), port) as gw:
            pid = worker_pid(gw.proc.pid)
            for _ in range(20):  # warm the code paths and the pool before "idle"
                assert request(port, "GET", "/json")[0] == 200
            yield port, pid, status_kib(pid, "VmRSS") * 1024


def _peak_above(pid: int, idle: int) -> int:
    return status_kib(pid, "VmHWM") * 1024 - idle


def test_a_large_upload_streams_to_its_backend(tmp_path: Path) -> None:
    size = 256 * MiB
    with _measured(tmp_path) as (port, pid, idle), Probe(port) as probe:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n" % size)
            piece = b"u" * MiB
            for _ in range(size // MiB):
                sock.sendall(piece)
            head, body = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            while not body.endswith(b"}"):
                body += sock.recv(65536)
        assert json.loads(body) == {"received": size}
        peak = _peak_above(pid, idle)
    assert peak <= BUDGET, f"worker peak {peak / MiB:.0f} MiB above idle"
    assert probe.worst < PROBE_LIMIT, probe.worst


def test_a_body_several_backends_need_is_held_up_to_max_payload(tmp_path: Path) -> None:
    with _measured(tmp_path) as (port, _, _):
        status, _, body = request(port, "POST", "/upload-twice", b"a" * 1000)
        assert status == 200 and json.loads(body) == {"a": {"received": 1000},
                                                       "b": {"received": 1000}}
        status, _, _ = request(port, "POST", "/upload-twice", b"a" * (MiB + 1))
        assert status == 413
        # A small body (it came with its head) is bounded by an endpoint's max_payload too.
        assert request(port, "POST", "/upload-small", b"a" * 1000)[0] == 200
        assert request(port, "POST", "/upload-small", b"a" * 1001)[0] == 413
    # A streamed body (one backend) is bounded by the root max_payload too.
    with _measured(tmp_path, extra_config={"router": {"max_payload": 2 * MiB,
                                                      "return_error_msg": True}}) as (
            port, _, _):
        status, _, body = request(port, "POST", "/upload", b"a" * (3 * MiB))
        assert (status, body) == (413, b"http: request body too large")
        assert request(port, "POST", "/upload", b"a" * MiB)[0] == 200


def test_a_large_no_op_answer_streams_to_the_client(tmp_path: Path) -> None:
    size = 256 * MiB
    with _measured(tmp_path) as (port, pid, idle), Probe(port) as probe:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"GET /download?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
            head, body = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"\r\nContent-Length: %d\r\n" % size in head + b"\r\n", head
            received = len(body)
            while received < size:
                chunk = sock.recv(1 << 20)
                assert chunk, received
                received += len(chunk)
        assert received == size
        peak = _peak_above(pid, idle)
    assert peak <= BUDGET, f"worker peak {peak / MiB:.0f} MiB above idle"
    assert probe.worst < PROBE_LIMIT, probe.worst


def test_slow_readers_of_a_no_op_answer_hold_a_buffer_each(tmp_path: Path) -> None:
    size, readers = 32 * MiB, 10
    with _measured(tmp_path) as (port, pid, idle), Probe(port) as probe:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=60)
                 for _ in range(readers)]
        try:
            for sock in socks:
                sock.sendall(b"GET /download?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
            left = {sock: size - len(read_head(sock)[1]) for sock in socks}
            # Each reader takes 16 KiB in turn: all of them far slower than the backend.
            while left:
                ready, _, _ = select.select(list(left), [], [], 30)
                assert ready, "no reader progressed in 30 s"
                for sock in ready:
                    chunk = sock.recv(16384)
                    assert chunk
                    left[sock] -= len(chunk)
                    if left[sock] <= 0:
                        del left[sock]
        finally:
            for sock in socks:
                sock.close()
        peak = _peak_above(pid, idle)
    assert peak <= BUDGET, f"worker peak {peak / MiB:.0f} MiB above idle"
    assert probe.worst < PROBE_LIMIT, probe.worst


def test_a_gzip_bomb_fails_its_backend_without_inflating_whole(tmp_path: Path) -> None:
    size = 256 * MiB  # 256 KiB of gzip
    root = {"extra_config": {"router": {"return_error_msg": True}}}
    with _measured(tmp_path, **root) as (port, pid, idle), Probe(port) as probe:
        status, _, body = request(port, "GET", f"/bomb?size={size}")
        peak = _peak_above(pid, idle)
    assert peak <= BUDGET, f"worker peak {peak / MiB:.0f} MiB above idle"
    assert status == 500
    assert b"gzip: decoded body exceeds 33554432 bytes" in body, body
    assert probe.worst < PROBE_LIMIT, probe.worst


def test_a_worker_at_rest_holds_at_most_40_mib(tmp_path: Path) -> None:
    """A worker that served a few requests and rests: what `ps` shows per worker (issue 18).
    Components the configuration does not use are not even imported."""
    with _measured(tmp_path) as (_port, _pid, idle):
        assert idle <= 40 * MiB, f"worker at rest holds {idle / MiB:.1f} MiB"
