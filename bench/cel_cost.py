"""What a `validation/cel` stage adds per request, in-process, free of network noise.

    python bench/cel_cost.py [--iterations 100000]

The endpoint (proxy-level) and backend stages wrap an inner stage that answers at once; the
coroutine is driven by hand (no event loop), over a request like the ones component_cost.py
sends. The best of 5 runs of each is compared with the bare inner stage. Divided into the
worker's CPU time per proxied request (component_cost.py prints it), it is the ratio
component_cost.py estimates with wrk on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tidegate.components import cel
from tidegate.messages import ProxyRequest, ProxyResponse

CHECKS = {
    "endpoint: req_method == 'GET' && !('debug' in req_querystring)": (
        "proxy", ["req_method == 'GET' && !('debug' in req_querystring)"]),
    "endpoint: int(req_params.Id) % 2 == 0": ("proxy", ["int(req_params.Id) % 2 == 0"]),
    "endpoint: 'yes' in req_headers['X-Token']": ("proxy", ["'yes' in req_headers['X-Token']"]),
    "backend: req_path.startsWith('/data'), resp_completed && status == 200": (
        "backend", ["req_path.startsWith('/data')",
                    "resp_completed && resp_metadata_status == 200"]),
}


def request() -> ProxyRequest:
    return ProxyRequest("GET", "/data", {"Id": "30"},
                        {"X-Token": ["yes"], "User-Agent": ["wrk"],
                         "X-Forwarded-For": ["127.0.0.1"], "X-Forwarded-Host": ["127.0.0.1"]},
                        [], b"")


def best_of(stage: Any, iterations: int, runs: int = 5) -> float:
    """Best µs per call of `stage` over `runs` runs."""
    out = []
    for _ in range(runs):
        reqs = [request() for _ in range(iterations)]
        start = time.perf_counter()
        for req in reqs:
            coro = stage(req)
            try:
                coro.send(None)
            except StopIteration:
                continue
        out.append((time.perf_counter() - start) / iterations * 1e6)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    args = parser.parse_args()
    answer = ProxyResponse({"a": 1}, True, 200)

    async def proxy_inner(req: ProxyRequest) -> tuple[ProxyResponse | None, None]:
        return answer, None

    async def backend_inner(req: ProxyRequest) -> ProxyResponse:
        return answer

    bare = {"proxy": best_of(proxy_inner, args.iterations),
            "backend": best_of(backend_inner, args.iterations)}
    print(f"{'bare proxy stage':70s} {bare['proxy']:6.2f} µs")
    for name, (level, exprs) in CHECKS.items():
        config = cel.parse([{"check_expr": e} for e in exprs], ("extra_config", cel.NAMESPACE))
        stage = cel._proxy(config, "[bench]", proxy_inner) if level == "proxy" \
            else cel._backend(config, "[bench]", backend_inner)
        cost = best_of(stage, args.iterations)
        print(f"{name:70s} {cost:6.2f} µs  (+{cost - bare[level]:.2f})")


if __name__ == "__main__":
    main()
