"""Throughput with `--watch` on vs off, same gateway, same load (target: within 2 %).

    python bench/watch_overhead.py [--seconds 10] [--rounds 3]

Alternates off/on runs and compares the medians, so drift of the machine hits both sides.
"""

from __future__ import annotations

import argparse
import statistics

from common import free_port, nginx, tidegate, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true",
                        help="gateway (supervisor and workers) on core 0, nginx and wrk on 1")
    args = parser.parse_args()
    upstream = free_port()
    cfg = {"version": 3, "endpoints": [{"endpoint": "/bench", "backend": [
        {"host": [f"http://127.0.0.1:{upstream}"], "url_pattern": "/data"}]}]}
    results: dict[bool, list[float]] = {False: [], True: []}
    gw_cpus, other = ("0", "1") if args.pin else (None, None)
    with nginx(upstream, cpus=other):
        for _ in range(args.rounds):
            for watch in (False, True):
                port = free_port()
                with tidegate(cfg, port, workers=args.workers, watch=watch, cpus=gw_cpus):
                    url = f"http://127.0.0.1:{port}/bench"
                    wrk(url, seconds=2, cpus=other)
                    results[watch].append(wrk(url, seconds=args.seconds, cpus=other)["rps"])
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"watch off: {off:.0f} req/s {[round(x) for x in results[False]]}")
    print(f"watch on:  {on:.0f} req/s {[round(x) for x in results[True]]}")
    print(f"difference: {(on - off) / off * 100:+.1f} %")


if __name__ == "__main__":
    main()
