"""The plain proxied request, this checkout (B) against another one (A), in alternating rounds.

    python bench/ab_proxy.py --other ../tidegate-main [--rounds 6] [--seconds 6] [--pin]

Each round runs A then B (then B then A on the next round) against the same nginx upstream,
with the same wrk load; the medians are compared, so the machine's drift hits both sides.
Besides req/s, the worker's CPU time per request (utime + stime from /proc over the measured
run) is compared: on a shared machine it moves far less than throughput does. The target for
a change off the hot path: B within 3 % of A.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import free_port, nginx, stop, taskset, wait_port, wrk

HERE = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_of(supervisor: int, timeout: float = 20.0) -> int:
    """The pid of the gateway's only worker (the port is bound before it starts)."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    while time.monotonic() < deadline:
        found = children.read_text().split()
        if found:
            return int(found[0])
        time.sleep(0.05)
    raise RuntimeError(f"no worker under {supervisor}")


@contextmanager
def gateway_in(checkout: Path, cfg: dict, port: int, cpus: str | None) -> Iterator[int]:
    """`python -m tidegate run` with the code of `checkout` (its folder is the cwd)."""
    folder = Path(tempfile.mkdtemp(prefix="tidegate-ab-"))
    path = folder / "krakend.json"
    path.write_text(json.dumps(cfg))
    with open(folder / "gateway.log", "wb") as out:
        proc = subprocess.Popen(
            [*taskset(cpus), sys.executable, "-m", "tidegate", "run", "-c", str(path), "-p",
             str(port), "--workers", "1"], cwd=checkout, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "TIDEGATE_LOG_LEVEL": "WARNING"})
        try:
            wait_port(port)
            yield worker_of(proc.pid)
        finally:
            stop(proc, signal.SIGTERM, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", required=True, type=Path, help="checkout A (the base)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    args = parser.parse_args()
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream = free_port()
    cfg = {"version": 3, "timeout": "3s", "endpoints": [{"endpoint": "/bench", "backend": [
        {"host": [f"http://127.0.0.1:{upstream}"], "url_pattern": "/data"}]}]}
    sides = {"A": args.other.resolve(), "B": HERE}
    rps: dict[str, list[float]] = {"A": [], "B": []}
    p99: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    with nginx(upstream, cpus=other_cpus):
        for i in range(args.rounds):
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                port = free_port()
                with gateway_in(sides[side], cfg, port, gw_cpus) as worker:
                    url = f"http://127.0.0.1:{port}/bench"
                    wrk(url, seconds=2, cpus=other_cpus)
                    before = cpu_seconds(worker)
                    r = wrk(url, seconds=args.seconds, connections=args.connections,
                            cpus=other_cpus)
                    per_request = (cpu_seconds(worker) - before) / r["requests"] * 1e6
                rps[side].append(r["rps"])
                p99[side].append(r["p99_ms"])
                cpu[side].append(per_request)
                print(f"round {i + 1} {side}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms, "
                      f"worker CPU {per_request:.1f} µs/request", flush=True)
    a, b = statistics.median(rps["A"]), statistics.median(rps["B"])
    ca, cb = statistics.median(cpu["A"]), statistics.median(cpu["B"])
    for side, r_med, c_med in (("A", a, ca), ("B", b, cb)):
        print(f"{side} {sides[side]}: median {r_med:.0f} req/s, "
              f"p99 {statistics.median(p99[side]):.2f} ms, CPU {c_med:.1f} µs/request")
    print(f"B vs A: throughput {(b - a) / a * 100:+.1f} %, "
          f"CPU per request {(cb - ca) / ca * 100:+.1f} %")


if __name__ == "__main__":
    main()
