"""The access log over a real gateway: one line per request on stdout, in gin's format by
default, JSON or logfmt on request; skip paths, the disable flag, the generation id across a
reload, and a stdout nobody reads."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support import (
    ROOT,
    backend,
    checkout_env,
    free_port,
    gateway,
    health,
    request,
    write_config,
)

F_SETPIPE_SZ = 1031
GIN = re.compile(r'^\[GIN\] \d{4}/\d\d/\d\d - \d\d:\d\d:\d\d \| (\d{3}) \| ([ 0-9.µmns]{8,}) \| '
                 r'( *127\.0\.0\.1) \| (\S+ *)  (".*")$')


def config(tmp: Path, backend_port: int, router: dict[str, Any] | None = None,
           logging: dict[str, Any] | None = None, endpoint: str = "/users/{id}") -> Path:
    extra: dict[str, Any] = {}
    if router is not None:
        extra["router"] = router
    if logging is not None:
        extra["telemetry/logging"] = logging
    data = {"version": 3, "extra_config": extra, "endpoints": [{
        "endpoint": endpoint, "backend": [{"host": [f"http://127.0.0.1:{backend_port}"],
                                           "url_pattern": "/x"}]}]}
    path = tmp / "krakend.json"
    write_config(path, data)
    return path


def access_lines(log: list[str], marker: str) -> list[str]:
    return [line.rstrip("\n") for line in log if marker in line]


def test_gin_line_per_request(tmp_path: Path) -> None:
    with backend() as bport:
        port = free_port()
        with gateway(str(config(tmp_path, bport)), port) as gw:
            assert request(port, "GET", "/users/7?a=b")[0] == 200
            line = gw.wait_for('"/users/7?a=b"').rstrip("\n")
            assert request(port, "POST", "/nowhere")[0] == 404
            missing = gw.wait_for('"/nowhere"').rstrip("\n")
            m = GIN.match(line)
            assert m, line
            assert m.group(1) == "200"
            assert len(m.group(3)) == 15  # gin's %15s
            assert m.group(4) == "GET    "  # gin's %-7s
            assert m.group(5) == '"/users/7?a=b"'
            m404 = GIN.match(missing)
            assert m404 and m404.group(1) == "404" and m404.group(4) == "POST   "
            assert len([x for x in gw.log if '"/users/7?a=b"' in x]) == 1


def test_json_and_logfmt_and_generation_after_reload(tmp_path: Path) -> None:
    with backend() as bport:
        port = free_port()
        path = config(tmp_path, bport, logging={"level": "INFO", "stdout": True,
                                                "access_log_format": "json"})
        with gateway(str(path), port, "--watch") as gw:
            gen = health(port)["generation"]["id"]
            assert request(port, "GET", "/users/42")[0] == 200
            record = json.loads(gw.wait_for('"/users/42"'))
            assert record["route"] == "/users/{id}"
            assert record["method"] == "GET" and record["status"] == 200
            assert record["path"] == "/users/42"
            assert record["bytes"] > 0 and record["latency_ms"] >= 0
            assert record["client_ip"] == "127.0.0.1"
            assert record["generation"] == gen
            assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", record["time"])
            config(tmp_path, bport, logging={"level": "INFO", "stdout": True,
                                             "access_log_format": "logfmt"})
            gw.wait_for(f"generation {gen + 1} active")
            assert health(port)["generation"]["id"] == gen + 1
            assert request(port, "GET", "/users/43")[0] == 200
            line = gw.wait_for("path=/users/43").strip()
            fields = dict(part.split("=", 1) for part in line.split(" "))
            assert fields["route"] == "/users/{id}" and fields["method"] == "GET"
            assert fields["status"] == "200" and fields["client_ip"] == "127.0.0.1"
            assert fields["generation"] == str(gen + 1)
            assert int(fields["bytes"]) > 0 and float(fields["latency_ms"]) >= 0


def test_skip_paths_and_disable(tmp_path: Path) -> None:
    with backend() as bport:
        port = free_port()
        path = config(tmp_path, bport, router={"logger_skip_paths": ["/users/1"]})
        with gateway(str(path), port, "--watch") as gw:
            gen = health(port)["generation"]["id"]
            request(port, "GET", "/users/1")
            request(port, "GET", "/users/2")
            gw.wait_for('"/users/2"')
            assert not [x for x in gw.log if '"/users/1"' in x]
            config(tmp_path, bport, router={"disable_access_log": True})
            gw.wait_for(f"generation {gen + 1} active")
            request(port, "GET", "/users/3")
            request(port, "GET", "/__health")  # answered after /users/3 on one worker
            config(tmp_path, bport)
            gw.wait_for(f"generation {gen + 2} active")
            request(port, "GET", "/users/4")
            gw.wait_for('"/users/4"')
            assert not [x for x in gw.log if '"/users/3"' in x]


def test_unread_stdout_never_stalls_the_worker(tmp_path: Path) -> None:
    """A stdout pipe nobody reads: requests are still answered, the lines past the bounded
    buffer are dropped and counted, and the count is reported once stdout moves again."""
    with backend() as bport:
        port = free_port()
        path = config(tmp_path, bport)
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)  # a small pipe, full at once
        env = {**checkout_env(), "TIDEGATE_LOG_BUFFER_BYTES": "8192"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidegate", "run", "-p", str(port), "--workers", "1",
             "-c", str(path)], stdout=write_end, stderr=subprocess.PIPE, text=True, env=env,
            cwd=str(ROOT))
        os.close(write_end)
        errors: queue.Queue[str] = queue.Queue()
        pump = threading.Thread(target=lambda: [errors.put(x) for x in proc.stderr or ()],
                                daemon=True)
        pump.start()
        try:
            _wait_line(errors, "listening on")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for i in range(400):  # ~40 KB of lines: far past the pipe and the buffer
                conn.request("GET", f"/users/{i}")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200
            conn.close()
            # Now read: stdout moves again and the loss is reported (on stderr).
            with os.fdopen(read_end, "rb", buffering=0) as out:
                data = out.read(65536)
                # A request answered after the loss: its line follows what was kept.
                assert request(port, "GET", "/users/last")[0] == 200
                while b'"/users/last"' not in data:
                    data += out.read(65536)
                report = _wait_line(errors, "dropped")
                assert "log line(s) dropped: stdout was not read" in report
                lines = data.decode().splitlines()
                assert all(GIN.match(x) for x in lines if x), lines[:3]
                assert 40 < len(lines) < 400
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            pump.join(5)
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_line(lines: queue.Queue[str], text: str) -> str:
    """The first line with `text` (each line waited for at most 30 s)."""
    while True:
        line = lines.get(timeout=30)
        if text in line:
            return line


def test_gin_latency_as_go_prints_it() -> None:
    from tidegate.telemetry.access_log import gin_latency
    assert gin_latency(45) == "45ns"
    assert gin_latency(158_954) == "158.954µs"
    assert gin_latency(1_234_567) == "1.23ms"  # truncated to 10 µs past 1 ms
    assert gin_latency(1_500_000_000) == "1.5s"
    assert gin_latency(61_234_000_000) == "1m0s"  # to 10 s past a minute


class _BigHandler(BaseHTTPRequestHandler):
    """A backend answering 300,000 bytes: the gateway streams them (no-op, one backend)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"x" * 300_000
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_streamed_body_counts_its_bytes(tmp_path: Path) -> None:
    with backend(_BigHandler) as bport:
        port = free_port()
        data = {"version": 3, "extra_config": {"telemetry/logging": {
            "level": "INFO", "stdout": True, "access_log_format": "json"}},
            "endpoints": [{"endpoint": "/big", "output_encoding": "no-op", "backend": [{
                "host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/b",
                "encoding": "no-op"}]}]}
        path = tmp_path / "krakend.json"
        write_config(path, data)
        with gateway(str(path), port) as gw:
            status, _, body = request(port, "GET", "/big")
            assert status == 200 and len(body) == 300_000
            record = json.loads(gw.wait_for('"/big"'))
            assert record["bytes"] == 300_000 and record["route"] == "/big"
