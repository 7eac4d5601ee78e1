"""Worker memory at rest and after a million proxied requests (growth must stay under 5 %).

    python bench/memory.py [--requests 1000000] [--workers 1]

RSS is read from /proc for every worker process of the gateway; wrk runs in bounded slices
until the request count is reached.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from common import free_port, nginx, tidegate, wrk


def worker_pids(supervisor: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--slice", type=int, default=15, help="seconds per wrk run")
    args = parser.parse_args()
    upstream, port = free_port(), free_port()
    cfg = {"version": 3, "endpoints": [{"endpoint": "/bench", "backend": [
        {"host": [f"http://127.0.0.1:{upstream}"], "url_pattern": "/data"}]}]}
    with nginx(upstream), tidegate(cfg, port, workers=args.workers) as proc:
        pids = worker_pids(proc.pid)
        url = f"http://127.0.0.1:{port}/bench"
        wrk(url, seconds=2)  # warm the pools and code paths before "at rest"
        rest = {pid: rss_kib(pid) for pid in pids}
        done = 0
        errors = 0
        while done < args.requests:
            r = wrk(url, seconds=args.slice)
            done += r["requests"]
            errors += r["errors"]
        after = {pid: rss_kib(pid) for pid in pids}
    for pid in pids:
        growth = (after[pid] - rest[pid]) / rest[pid] * 100
        print(f"worker {pid}: RSS at rest {rest[pid] / 1024:.1f} MiB, after {done} requests "
              f"{after[pid] / 1024:.1f} MiB ({growth:+.1f} %)")
    print(f"requests {done}, errors {errors}")


if __name__ == "__main__":
    main()
