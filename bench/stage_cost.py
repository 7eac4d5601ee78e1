"""What a service-level component's stage adds per request, in-process, free of network noise.

    python bench/stage_cost.py [--iterations 200000]

Each stage wraps an inner stage that answers at once; the coroutine is driven by hand (no
event loop), over a request like wrk's with an allowed Origin and X-Forwarded-Proto: https.
The best of 5 runs of each is compared with the bare inner stage. Divided into the worker's
CPU time per proxied request (bench/ab_proxy.py prints it), it is the ratio
component_cost.py estimates with wrk on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tidegate.components import cors, secure_headers
from tidegate.messages import Request, Response

CORS = {"allow_origins": ["https://app.example.com", "https://*.example.org"],
        "allow_methods": ["GET", "POST"], "allow_headers": ["Authorization"],
        "expose_headers": ["Content-Length"], "max_age": "12h"}
SECURE = {"allowed_hosts": ["127.0.0.1:8080"], "ssl_proxy_headers": {"X-Forwarded-Proto": "https"},
          "sts_seconds": 31536000, "frame_deny": True, "content_type_nosniff": True,
          "browser_xss_filter": True, "content_security_policy": "default-src 'self'",
          "referrer_policy": "same-origin"}
HEADERS = [("host", "127.0.0.1:8080"), ("user-agent", "wrk"), ("accept", "*/*"),
           ("origin", "https://app.example.com"), ("x-forwarded-proto", "https")]


def best_of(stage: Any, iterations: int, runs: int = 5) -> float:
    """Best µs per call of `stage` over `runs` runs."""
    out = []
    for _ in range(runs):
        reqs = [Request("GET", "/bench", "/bench", "", HEADERS, b"", "127.0.0.1", "1.1")
                for _ in range(iterations)]
        start = time.perf_counter()
        for req in reqs:
            coro = stage(req)
            try:
                coro.send(None)
            except StopIteration:  # the stage answered (a with-block would cost more)
                continue
        out.append((time.perf_counter() - start) / iterations * 1e6)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    answer = Response(200, [("Content-Type", "application/json"), ("X-Krakend", "x")], b"{}")

    async def inner(req: Request) -> Response:
        return answer

    stages = {
        "security/cors": cors.service_stage(cors.Policy(cors.parse(CORS, ())), inner),
        "security/http": secure_headers.service_stage(
            secure_headers.Secure(secure_headers.parse(SECURE, ())), inner),
    }
    plain = best_of(inner, args.iterations)
    for name, stage in stages.items():
        print(f"{name}: +{best_of(stage, args.iterations) - plain:.2f} µs per request")


if __name__ == "__main__":
    main()
