"""Helpers for measuring a gateway worker's memory and a probe's latency during a transfer.

A backend that sinks uploads, serves large bodies and gzip bombs without holding them itself
(so the test process's memory stays out of the measurement), the worker's pid and RSS from
/proc, and a probe thread that times `/__health` while a big transfer runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support import backend

MiB = 1 << 20
_PIECE = b"x" * (64 << 10)
_BOMBS: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of JSON whitespace, gzipped (about 1/1000 of the size)."""
    if size not in _BOMBS:
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = b" " * MiB
        _BOMBS[size] = b"".join([*(comp.compress(block) for _ in range(size // MiB)),
                                 comp.flush()])
    return _BOMBS[size]


def pattern(offset: int, length: int) -> bytes:
    """Bytes offset..offset+length of a body that shows where each byte came from."""
    start = offset % 256
    return (bytes(range(256)) * ((start + length) // 256 + 1))[start:start + length]


class BulkHandler(BaseHTTPRequestHandler):
    """``POST /sink`` counts a body, ``GET /blob?size=N`` sends N bytes as they are written,
    ``GET /bomb?size=N`` sends gzip that inflates to N bytes."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        received = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                left = size
                while left:
                    left -= len(self.rfile.read(min(left, 1 << 20)))
                received += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                left -= len(chunk)
                received += len(chunk)
        self._json({"received": received})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        args = dict(p.split("=") for p in query.split("&") if "=" in p)
        size = int(args.get("size", "0"))
        if path == "/bomb":
            body = gzip_bomb(size)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/json":
            self._json({"ok": True})
            return
        if path == "/chunked":  # `size` bytes in chunks, gzipped when `gzip=1`
            self._chunked(size, args.get("gzip") == "1")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        left = size
        try:
            while left:
                piece = _PIECE if left >= len(_PIECE) else _PIECE[:left]
                self.wfile.write(piece)
                left -= len(piece)
        except OSError:
            pass

    def _chunked(self, size: int, gzipped: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzipped else None
        left = size
        while left:
            piece = pattern(size - left, min(left, 65536))
            left -= len(piece)
            data = comp.compress(piece) if comp is not None else piece
            if comp is not None and not left:
                data += comp.flush()
            if data:
                self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    def _json(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def bulk_backend() -> Iterator[int]:
    """A `BulkHandler` server on 127.0.0.1; yields its port."""
    with backend(BulkHandler) as port:
        yield port


def worker_pid(supervisor: int) -> int:
    """The only worker of a gateway started with ``--workers 1``."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class Probe:
    """Times `GET /__health` on one keep-alive connection, over and over, from a process of
    its own (so that this process's threads do not add their GIL waits), until stopped: the
    longest answer is how long the worker's loop kept other clients waiting."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.times: list[float] = []
        self.errors = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Probe:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE, str(self.port)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline() == "ready\n"  # the first probe was tried
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        assert proc is not None
        out, _ = proc.communicate("", timeout=60)  # closing its stdin stops it
        result = json.loads(out)
        self.times, self.errors = result["times"], result["errors"]

    @property
    def worst(self) -> float:
        """The longest probe, in seconds."""
        return max(self.times, default=0.0)


_PROBE = """
import http.client, json, sys, threading, time
port = int(sys.argv[1])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
times, errors, first = [], 0, True
while not stop.is_set():
    started = time.perf_counter()
    try:
        conn.request("GET", "/__health")
        conn.getresponse().read()
        if not first:
            times.append(time.perf_counter() - started)
    except OSError:
        errors += 1
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if first:
        first = False
        print("ready", flush=True)
    stop.wait(0.005)  # a probe every ~5 ms: the pace, not a synchronisation
print(json.dumps({"times": times, "errors": errors}))
"""
