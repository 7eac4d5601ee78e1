"""`telemetry/gelf` with Graylog stood in for by the test: UDP (zlib, a chunked message
reassembled) and TCP (NUL-terminated, reconnecting to a Graylog that comes late); the access log
goes there instead of stdout."""

from __future__ import annotations

import json
import os
import socket
import threading
import zlib
from pathlib import Path
from typing import Any

from tests.support import backend, free_port, gateway, request, write_config
from tidegate.telemetry.gelf import CHUNK_SIZE, chunks


def config(tmp: Path, backend_port: int, gelf: dict[str, Any]) -> Path:
    data = {"version": 3, "extra_config": {
        "telemetry/gelf": gelf,
        "telemetry/logging": {"level": "DEBUG", "stdout": True}},
        "endpoints": [{"endpoint": "/users/{id}", "backend": [{
            "host": [f"http://127.0.0.1:{backend_port}"], "url_pattern": "/x"}]}]}
    path = tmp / "krakend.json"
    write_config(path, data)
    return path


def receive_udp(sock: socket.socket, wanted: str) -> dict[str, Any]:
    """GELF messages from the socket until one whose short message has `wanted`; chunked
    ones reassembled by message id."""
    parts: dict[bytes, dict[int, bytes]] = {}
    while True:
        data = sock.recv(65536)
        if data[:2] == b"\x1e\x0f":
            msg_id, seq, count = data[2:10], data[10], data[11]
            parts.setdefault(msg_id, {})[seq] = data[12:]
            if len(parts[msg_id]) < count:
                continue
            got = parts.pop(msg_id)
            data = b"".join(got[i] for i in range(count))
            chunked = True
        else:
            chunked = False
        msg = json.loads(zlib.decompress(data))
        msg["chunked"] = chunked
        if wanted in msg["short_message"]:
            return msg


def test_udp_access_and_app_logs_chunked(tmp_path: Path) -> None:
    graylog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    graylog.bind(("127.0.0.1", 0))
    graylog.settimeout(20)
    try:
        with backend() as bport:
            port = free_port()
            path = config(tmp_path, bport, {"address": f"127.0.0.1:{graylog.getsockname()[1]}",
                                            "enable_tcp": False})
            with gateway(str(path), port) as gw:
                long_id = os.urandom(2000).hex()  # incompressible: several datagrams
                assert request(port, "GET", f"/users/{long_id}")[0] == 200
                msg = receive_udp(graylog, long_id)
                assert msg["chunked"]
                assert msg["short_message"].startswith("[GIN] ")
                assert msg["version"] == "1.1" and msg["host"] == socket.gethostname()
                assert request(port, "GET", "/users/short")[0] == 200
                short = receive_udp(graylog, "/users/short")
                assert not short["chunked"]
                # As KrakenD: the access log goes to Graylog instead of stdout.
                assert not [x for x in gw.log if "/users/short" in x]
                # Application logs go there too (and still to stdout).
                gw.proc.send_signal(1)  # SIGHUP: "configuration unchanged" at DEBUG
                app = receive_udp(graylog, "configuration unchanged")
                assert app["level"] == 7
                assert app["short_message"].startswith("SIGHUP: configuration unchanged")
                gw.wait_for("configuration unchanged")
    finally:
        graylog.close()


def test_chunks_reassemble() -> None:
    payload = zlib.compress(os.urandom(5000))
    grams = chunks(payload, b"12345678")
    assert len(grams) == -(-len(payload) // (CHUNK_SIZE - 12))
    assert all(len(g) <= CHUNK_SIZE for g in grams)
    assert b"".join(g[12:] for g in grams) == payload
    assert chunks(os.urandom(200 * CHUNK_SIZE), b"12345678") == []  # past 128 chunks: dropped


def test_tcp_graylog_late_then_reconnects(tmp_path: Path) -> None:
    """Graylog is down at start: requests are answered all the same; once it listens, the
    sender connects and the messages arrive NUL-terminated."""
    gport = free_port()
    received: list[bytes] = []
    got = threading.Event()
    with backend() as bport:
        port = free_port()
        path = config(tmp_path, bport, {"address": f"127.0.0.1:{gport}", "enable_tcp": True})
        with gateway(str(path), port):
            for i in range(50):  # Graylog down: nothing waits on it
                assert request(port, "GET", f"/users/down{i}")[0] == 200
            server = socket.create_server(("127.0.0.1", gport))
            server.settimeout(20)

            def accept() -> None:
                conn, _ = server.accept()
                conn.settimeout(20)
                buf = b""
                with conn:
                    while b"/users/up" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                received.append(buf)
                got.set()

            thread = threading.Thread(target=accept, daemon=True)
            thread.start()
            try:
                assert request(port, "GET", "/users/up")[0] == 200
                assert got.wait(30)
            finally:
                thread.join(5)
                server.close()
    messages = [json.loads(m) for m in received[0].split(b"\0") if m]
    assert any("/users/up" in m["short_message"] for m in messages)
    assert all(m["version"] == "1.1" for m in messages)
