"""Test helpers: a real tidegate process, a real backend, a plain HTTP client.

Readiness and reloads are learned from events (the supervisor's log lines and the generation id
on `/__health`), never from sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (the supervisor's workers), from /proc."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkout_env() -> dict[str, str]:
    """The environment for a child `python -m tidegate`: this checkout's package first on the
    path, whatever the current folder and whichever copy `pip install -e` last pointed at."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


class Gateway:
    """A `tidegate ARGS` process (or any `command`); its output lines are collected on a
    queue so tests can wait for a log line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: str | None = None, command: list[str] | None = None,
                 tee: Path | None = None) -> None:
        full_env = {**checkout_env(), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "tidegate", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=full_env, cwd=cwd or str(ROOT))
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        # Also append every output line to this file, as `tidegate run > gw.log` would.
        self._tee = tee.open("a", encoding="utf-8") if tee is not None else None
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self._tee is not None:
                self._tee.write(line)
                self._tee.flush()
            self.log.append(line)
            self.lines.put(line)
        if self._tee is not None:
            self._tee.close()
        self.lines.put("")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Block until a log line contains `text`; fail with the log so far."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no log line with {text!r}; log:\n{''.join(self.log)}") from None
            if text in line:
                return line
            if line == "" and self.proc.poll() is not None:
                raise AssertionError(f"gateway exited ({self.proc.returncode}) before {text!r}:"
                                     f"\n{''.join(self.log)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._pump_thread.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@contextmanager
def gateway(config: str | None, port: int, *extra: str, env: dict[str, str] | None = None,
            workers: int = 1, tee: Path | None = None) -> Iterator[Gateway]:
    args = ["run", "-p", str(port), "--workers", str(workers), *extra]
    if config is not None:
        args += ["-c", config]
    gw = Gateway(args, env=env, tee=tee)
    try:
        gw.wait_for("listening on")
        yield gw
    finally:
        code = gw.stop()
        assert code == 0, f"gateway exit status {code}:\n{''.join(gw.log)}"


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None,
            conn: http.client.HTTPConnection | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    """One exchange; header names lower-cased (last value wins)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def exchange(port: int, method: str, path: str, headers: dict[str, str] | None = None
             ) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request; every response header line, names lower-cased, in order."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], resp.read()
    finally:
        conn.close()


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    """Every value of one header (name lower-case) in an `exchange` answer."""
    return [v for k, v in headers if k == name]


def health(port: int) -> dict[str, Any]:
    status, _, body = request(port, "GET", "/__health")
    assert status == 200
    return json.loads(body)


# Set when a `/slow/...` request reaches the backend: tests learn "in flight" from it.
SLOW_ARRIVED = threading.Event()


class EchoHandler(BaseHTTPRequestHandler):
    """Backend: answers JSON describing the request; `/slow/...` waits `?ms=` first."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        if path.startswith("/slow/"):
            SLOW_ARRIVED.set()
            ms = int(dict(p.split("=") for p in query.split("&") if "=" in p).get("ms", "500"))
            time.sleep(ms / 1000)
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            payload = b"status page"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        data = {"path": path, "query": query, "method": self.command,
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"), "server": self.server.server_port}
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@contextmanager
def backend(handler: type[BaseHTTPRequestHandler] = EchoHandler) -> Iterator[int]:
    """A threaded HTTP/1.1 backend on 127.0.0.1 (the echo one unless another `handler` is
    given); yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Atomic write (temp file + rename), as editors and the watch tests do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(status line and headers, the body bytes that arrived with them) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest
