"""Slowloris against one worker: N connections send half a request head and stall.

Measures when the gateway closes them (they must all be closed at the configured header
timeout, 408 for those that sent bytes), the latency of a probe client meanwhile (the loop must
keep answering), and the worker's RSS. 127.0.0.1 only; bounded by the timeout plus a margin.

    python bench/slowloris.py --connections 2000 --header-timeout 2s
"""

from __future__ import annotations

import argparse
import multiprocessing
import selectors
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import children, free_port, tidegate


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(port: int, stop: Any, out: Any, t0: float) -> None:
    """One keep-alive client asking /__health in a loop (in its own process, so the
    attacking client's work does not delay it); sends each latency (ms) to `out`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    warm = False  # the first answer waits for the worker to start serving
    try:
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(b"GET /__health HTTP/1.1\r\nHost: probe\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                data += sock.recv(65536)
            latency = (time.perf_counter() - started) * 1000
            out.put(latency)
            if latency > 50 and warm:
                print(f"  probe stalled {latency:.0f} ms at {time.monotonic() - t0:.2f} s",
                      flush=True)
            warm = True
            time.sleep(0.01)
    finally:
        sock.close()
        out.put(None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--header-timeout", default="2s")
    args = parser.parse_args()
    seconds = float(args.header_timeout.rstrip("s"))
    port = free_port()
    config = {"version": 3, "read_header_timeout": args.header_timeout, "endpoints": [
        {"endpoint": "/x", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]}
    with tidegate(config, port) as proc:
        worker = children(proc.pid)[0]
        idle_rss = rss_mib(worker)
        latencies: list[float] = []
        stop, queue = multiprocessing.Event(), multiprocessing.Queue()
        started = time.monotonic()
        prober = multiprocessing.Process(target=probe, args=(port, stop, queue, started))
        prober.start()
        # The probe is an established client before the wave (a connection made during it
        # would wait in the accept queue behind the wave).
        queue.get(timeout=10)  # and its first request (a cold one) is not counted
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Slow-%d: " % i)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        opened = time.monotonic() - started
        peak_rss = rss_mib(worker)
        closed_at: list[float] = []
        answered_408 = 0
        deadline = started + seconds + 10
        while len(closed_at) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(4096)  # type: ignore[union-attr]
                except ConnectionResetError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408 "):
                    answered_408 += 1
                    continue
                if not data:
                    closed_at.append(time.monotonic() - started)
                    sel.unregister(s)
                    s.close()  # type: ignore[union-attr]
        stop.set()
        while (latency := queue.get(timeout=10)) is not None:
            latencies.append(latency)
        prober.join(5)
        for s in socks:
            s.close()
        print(f"connections: {len(socks)} opened in {opened:.2f} s; header timeout {seconds} s")
        print(f"closed by the gateway: {len(closed_at)}, of them answered 408: {answered_408}")
        if closed_at:
            print(f"closed at: first {min(closed_at):.2f} s, median "
                  f"{statistics.median(closed_at):.2f} s, last {max(closed_at):.2f} s "
                  "after the first connection")
        if latencies:
            print(f"probe /__health meanwhile: {len(latencies)} requests, p50 "
                  f"{statistics.median(latencies):.2f} ms, max {max(latencies):.2f} ms")
        print(f"worker RSS: idle {idle_rss:.1f} MiB, with every connection open "
              f"{peak_rss:.1f} MiB (+{peak_rss - idle_rss:.1f})")
        return 0 if len(closed_at) == len(socks) else 1


if __name__ == "__main__":
    sys.exit(main())
