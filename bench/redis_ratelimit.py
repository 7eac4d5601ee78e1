"""Cost of a Redis rate limit on the proxied request (target: >= 0.50x the same endpoint without).

    python bench/redis_ratelimit.py [--pin] [--rounds 3] [--seconds 6]

One gateway (one worker), two endpoints to the same nginx upstream: ``/plain`` and
``/limited`` (``qos/ratelimit/router/redis`` with a limit far above the load, so every request
runs the bucket script and passes). Rounds alternate the two under the same wrk load, in the
same run; the medians are compared. ``--pin``: the gateway alone on core 0; nginx, wrk and
redis-server on core 1. Also reported: the Redis round trip of one take (the script), measured
from this process with the gateway's own client, sequentially, against the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    children,
    cpu_seconds,
    free_port,
    nginx,
    stop,
    taskset,
    tidegate,
    wait_port,
    wrk,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tidegate.state.redisbuckets import PoolSettings, RedisBuckets


def redis_server(port: int, cpus: str | None) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed: apt-get install redis-server")
    folder = tempfile.mkdtemp(prefix="tidegate-bench-redis-")
    proc = subprocess.Popen([*taskset(cpus), binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc


async def round_trips(port: int, n: int) -> list[float]:
    """Seconds per take (one EVALSHA of the bucket script), sequential."""
    buckets = RedisBuckets(PoolSettings("bench", "127.0.0.1", port))
    await buckets.open()
    out = []
    try:
        await buckets.take_chain([("tidegate:bench:{rtt}", 1e9, 1e9)])
        for _ in range(n):
            t = time.perf_counter()
            await buckets.take_chain([("tidegate:bench:{rtt}", 1e9, 1e9)])
            out.append(time.perf_counter() - t)
    finally:
        await buckets.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    gw_cpus, other = ("0", "1") if args.pin else (None, None)
    upstream, rport, port = free_port(), free_port(), free_port()
    backend = [{"host": [f"http://127.0.0.1:{upstream}"], "url_pattern": "/data"}]
    cfg = {"version": 3,
           "extra_config": {"redis": {"connection_pools": [
               {"name": "bench", "address": f"127.0.0.1:{rport}"}]}},
           "endpoints": [
               {"endpoint": "/plain", "backend": backend},
               {"endpoint": "/limited", "backend": backend, "extra_config": {
                   "qos/ratelimit/router/redis": {"connection_pool": "bench",
                                                  "max_rate": 1e9, "capacity": 1e9}}}]}
    results: dict[str, list[float]] = {"/plain": [], "/limited": []}
    p99: dict[str, list[float]] = {"/plain": [], "/limited": []}
    cpu: dict[str, list[float]] = {"/plain": [], "/limited": []}  # worker us per request
    redis = redis_server(rport, other)
    try:
        rtt = asyncio.run(round_trips(rport, 5000))
        with nginx(upstream, cpus=other), tidegate(cfg, port, cpus=gw_cpus) as gw:
            worker = children(gw.pid)[0]
            for path in results:
                wrk(f"http://127.0.0.1:{port}{path}", seconds=2, cpus=other)  # warm up
            for r in range(args.rounds):
                order = list(results) if r % 2 == 0 else list(reversed(results))
                for path in order:
                    before = cpu_seconds(worker)
                    got = wrk(f"http://127.0.0.1:{port}{path}", seconds=args.seconds,
                              cpus=other)
                    if got["errors"]:
                        sys.exit(f"{path}: {got['errors']} errors (limit hit or failure)")
                    results[path].append(got["rps"])
                    cpu[path].append((cpu_seconds(worker) - before) / got["requests"] * 1e6)
                    p99[path].append(got["p99_ms"])
    finally:
        stop(redis, 15, 10)
    plain, limited = (statistics.median(results[p]) for p in ("/plain", "/limited"))
    rtt.sort()
    print(f"plain:   {plain:.0f} req/s {[round(x) for x in results['/plain']]}, "
          f"p99 {statistics.median(p99['/plain']):.2f} ms")
    print(f"limited: {limited:.0f} req/s {[round(x) for x in results['/limited']]}, "
          f"p99 {statistics.median(p99['/limited']):.2f} ms")
    print(f"ratio: {limited / plain:.2f}x (target >= 0.50x)")
    cpu_plain, cpu_limited = (statistics.median(cpu[p]) for p in ("/plain", "/limited"))
    print(f"worker CPU per request: plain {cpu_plain:.1f} us, limited {cpu_limited:.1f} us: "
          f"{cpu_plain / cpu_limited:.2f}x the throughput a saturated worker would give")
    print(f"redis round trip of one take: p50 {rtt[len(rtt) // 2] * 1e6:.0f} us, "
          f"p99 {rtt[int(len(rtt) * 0.99)] * 1e6:.0f} us (sequential, {len(rtt)} takes)")


if __name__ == "__main__":
    main()
