"""Worker memory and other clients' latency during large transfers (issue: bounded memory).

    python bench/bounded_memory.py [--size-mib 1024] [--readers 10] [--reader-mib 64]

Four scenarios, each on a fresh one-worker gateway: a 1 GiB upload to one backend, a 1 GiB
`no-op` download, 10 slow readers of a 64 MiB `no-op` answer, and a gzip bomb (1 MiB of gzip
that inflates to 1 GiB). For each: the worker's peak RSS (VmHWM) above its idle RSS, and the
latency of a `/__health` probe run alongside on its own connection (worst and p99). The
target: ≤ 64 MiB above idle, no probe over 50 ms. The backend runs in this process.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import free_port, tidegate

from tests.memory_support import MiB, Probe, bulk_backend, status_kib, worker_pid


def config(bport: int) -> dict:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "timeout": "600s", "endpoints": [
        {"endpoint": "/upload", "method": "POST",
         "backend": [{"host": host, "url_pattern": "/sink"}]},
        {"endpoint": "/download", "output_encoding": "no-op", "input_query_strings": ["size"],
         "backend": [{"host": host, "url_pattern": "/blob", "encoding": "no-op"}]},
        {"endpoint": "/bomb", "input_query_strings": ["size"],
         "backend": [{"host": host, "url_pattern": "/bomb"}]},
        {"endpoint": "/json", "backend": [{"host": host, "url_pattern": "/json"}]},
    ]}


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def upload(port: int, size: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % size)
        piece = b"u" * MiB
        for _ in range(size // MiB):
            sock.sendall(piece)
        head, body = read_head(sock)
        while not body.endswith(b"}"):
            body += sock.recv(65536)
    status = head.split(b"\r\n")[0].decode()
    return f"{status}, backend received {json.loads(body)['received']}"


def download(port: int, size: int, pause: float = 0.0) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(b"GET /download?size=%d HTTP/1.1\r\nHost: b\r\n\r\n" % size)
        _, body = read_head(sock)
        received = len(body)
        while received < size:
            chunk = sock.recv(65536 if pause else 1 << 20)
            if not chunk:
                break
            received += len(chunk)
            if pause:
                time.sleep(pause)  # a slow reader
    return received


def slow_readers(port: int, readers: int, size: int) -> str:
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(download(port, size, 0.002)))
               for _ in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return f"{readers} readers received {sorted(set(got))} bytes each"


def bomb(port: int, size: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(b"GET /bomb?size=%d HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
                     % size)
        head, _ = read_head(sock)
    return head.split(b"\r\n")[0].decode()


def measure(name: str, run: Callable[[int], object]) -> None:
    with bulk_backend() as bport:
        port = free_port()
        with tidegate(config(bport), port) as proc:
            pid = worker_pid(proc.pid)
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"GET /json HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    while sock.recv(65536):
                        pass
            idle = status_kib(pid, "VmRSS")
            started = time.perf_counter()
            with Probe(port) as probe:
                outcome = run(port)
            seconds = time.perf_counter() - started
            peak = status_kib(pid, "VmHWM")
    times = sorted(probe.times)
    p99 = times[int(len(times) * 0.99)] if times else 0.0
    print(f"{name}: {outcome}; {seconds:.1f} s; worker idle {idle / 1024:.1f} MiB, peak "
          f"+{(peak - idle) / 1024:.1f} MiB; probe worst {probe.worst * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms over {len(times)} probes ({probe.errors} errors)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--reader-mib", type=int, default=64)
    parser.add_argument("--only", choices=("upload", "download", "readers", "bomb"))
    args = parser.parse_args()
    size = args.size_mib * MiB
    scenarios: dict[str, tuple[str, Callable[[int], object]]] = {
        "upload": (f"upload {args.size_mib} MiB", lambda p: upload(p, size)),
        "download": (f"no-op download {args.size_mib} MiB",
                     lambda p: f"received {download(p, size)}"),
        "readers": (f"{args.readers} slow readers of {args.reader_mib} MiB",
                    lambda p: slow_readers(p, args.readers, args.reader_mib * MiB)),
        "bomb": (f"gzip bomb to {args.size_mib} MiB", lambda p: bomb(p, size)),
    }
    for key, (name, run) in scenarios.items():
        if args.only in (None, key):
            measure(name, run)


if __name__ == "__main__":
    main()
