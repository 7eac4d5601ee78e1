"""Build time of a generation for a large configuration (default 1,000 endpoints).

    python bench/build_generation.py [--endpoints 1000] [--repeat 5]

Measures what a reload costs off the hot path: in the supervisor, `build_candidate` (read +
parse + overrides + typed model + trial compile + hash), and in each worker, the compile of the
generation it swaps in. Prints the best and median CPU time of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tidegate.config.model import build_service
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.reload.builder import build_candidate, collector_paused


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
    status = ServerStatus()
    def worker_compile() -> None:
        with collector_paused():  # as the worker does
            Generation(build_service(data), 1, "h", debug=False, status=status)

    best, median = timed(worker_compile, args.repeat)
    print(f"worker compile (model + generation): best {best:.1f} ms, median {median:.1f} ms")


if __name__ == "__main__":
    main()
