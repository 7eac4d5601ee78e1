"""Build time of a generation for a large configuration (default 1,000 endpoints).

    python bench/build_generation.py [--endpoints 1000] [--repeat 5]

Measures what a reload costs off the hot path: in the supervisor, `build_candidate` (read +
parse + overrides + typed model + trial compile + hash), and in each worker, the compile of the
generation it swaps in. Prints the best and median CPU time of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import free_port

from tidegate.config.model import build_service
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.reload.builder import build_candidate
from tidegate.reload.collector import collector_paused


def big_config(n: int) -> dict:
    endpoints = []
    for i in range(n):
        endpoints.append({
            "endpoint": f"/api/v1/resource{i}/{{id}}",
            "method": "GET" if i % 3 else "POST",
            "input_headers": ["Authorization", "Content-Type"],
            "backend": [
                {"host": [f"http://service{i % 10}:8000"], "url_pattern": f"/r{i}/{{id}}",
                 "allow": ["id", "name", "items.price"], "group": "main"},
                {"host": ["http://details:8000"], "url_pattern": f"/d/{{id}}?v={i}",
                 "mapping": {"a": "b"}, "target": "data"},
            ],
        })
    return {"version": 3, "timeout": "3s", "cache_ttl": "60s", "endpoints": endpoints}


def startup_seconds(path: Path) -> float:
    """Wall time from starting `tidegate run` to its first successful /__health."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tidegate", "run", "-c", str(path), "-p",
                             str(port), "--workers", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/__health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("the gateway did not start within 60 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def timed(fn, repeat: int) -> tuple[float, float]:
    """(best, median) CPU milliseconds of the calling thread: steadier than wall time on a
    shared machine, and a build is pure CPU work."""
    times = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return min(times) * 1000, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = big_config(args.endpoints)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "krakend.json"
        path.write_text(json.dumps(data, indent=2))
        size = path.stat().st_size
        best, median = timed(lambda: build_candidate(str(path), {}, port=None, debug=False),
                             args.repeat)
        print(f"supervisor build_candidate, {args.endpoints} endpoints ({size // 1024} KiB): "
              f"best {best:.1f} ms, median {median:.1f} ms")
        print(f"start-up, {args.endpoints} endpoints: {startup_seconds(path) * 1000:.0f} ms "
              "from exec to the first 200 on /__health (1 worker)")
    status = ServerStatus()
    def worker_compile() -> None:
        with collector_paused():  # as the worker does
            Generation(build_service(data), 1, "h", debug=False, status=status)

    best, median = timed(worker_compile, args.repeat)
    print(f"worker compile (model + generation): best {best:.1f} ms, median {median:.1f} ms")


if __name__ == "__main__":
    main()
