"""What a component's stage adds per request, in-process, free of network noise.

    python bench/stage_cost.py [--iterations 200000] [--only NAME,...] [--profile NAME]

Each stage wraps an inner stage that answers at once; the coroutine is driven by hand (no
event loop), over a request like component_cost.py's (wrk's headers, an allowed Origin,
X-Forwarded-Proto: https; a ~1 KiB JSON body for the JSON Schema stage). The best of 5 runs of
each is compared with the bare inner stage of the same level. Divided into the worker's CPU
time per proxied request (component_cost.py prints it), it is the ratio component_cost.py
estimates with wrk on a quiet machine. ``--profile NAME`` prints cProfile's top functions of
that stage over the iterations instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from component_cost import ORDER_BODY, ORDER_SCHEMA, VARIANTS

from tidegate.components import cel, cors, jsonschema_body, secure_headers
from tidegate.components.lua import component as lua
from tidegate.components.lua.config import parse as lua_parse
from tidegate.components.seam import Level
from tidegate.messages import ProxyRequest, ProxyResponse, Request, Response

HEADERS = [("host", "127.0.0.1:8080"), ("user-agent", "wrk"), ("accept", "*/*"),
           ("origin", "https://app.example.com"), ("x-forwarded-proto", "https")]
ANSWER = Response(200, [("X-Krakend", "Version 2.13"), ("X-Krakend-Completed", "true"),
                        ("Content-Type", "application/json")], b"{}")
PROXY_ANSWER = ProxyResponse({"a": 1}, True, 200)


def _section(variant: str, namespace: str) -> Any:
    return VARIANTS[variant]().endpoint_extra[namespace]


def client_request() -> Request:
    return Request("GET", "/bench", "/bench", "", list(HEADERS), b"", "127.0.0.1", "1.1")


def proxy_request(body: bytes = b"") -> ProxyRequest:
    return ProxyRequest("POST" if body else "GET", "/data", {},
                        {"User-Agent": ["KrakenD Version 2.13"], "X-Forwarded-For": ["127.0.0.1"],
                         "X-Forwarded-Host": ["127.0.0.1:8080"],
                         **({"Content-Type": ["application/json"]} if body else {})},
                        [], body)


async def _service_inner(req: Request) -> Response:
    return ANSWER


async def _router_inner(req: Request, params: dict[str, str]) -> Response:
    return ANSWER


async def _proxy_inner(req: ProxyRequest) -> tuple[ProxyResponse | None, None]:
    return PROXY_ANSWER, None


def _lua_router(section: dict[str, Any]) -> Any:
    ctx = SimpleNamespace(config=lua_parse(section, ("extra_config",)), level=Level.ROUTER,
                          endpoint=SimpleNamespace(endpoint="/bench"))
    return lua.build_endpoint(ctx, _router_inner)  # type: ignore[arg-type]


# name: (level, stage factory, request factory)
Stage = tuple[str, Callable[[], Any], Callable[[], Any]]
BODY = ORDER_BODY.encode()
STAGES: dict[str, Stage] = {
    "cors": ("service", lambda: cors.service_stage(
        cors.Policy(cors.parse(_section("cors", "security/cors"), ())), _service_inner),
        client_request),
    "security-http-headers": ("service", lambda: secure_headers.service_stage(
        secure_headers.Secure(secure_headers.parse(
            _section("security-http-headers", "security/http"), ())), _service_inner),
        client_request),
    "security-http": ("service", lambda: secure_headers.service_stage(
        secure_headers.Secure(secure_headers.parse(
            _section("security-http", "security/http"), ())), _service_inner),
        client_request),
    "cors-endpoint": ("router", lambda: cors.endpoint_stage(
        cors.Policy(cors.parse(_section("cors", "security/cors"), ()), cors._ENDPOINT_VARY),
        _router_inner), client_request),
    "security-http-endpoint": ("router", lambda: secure_headers.endpoint_stage(
        secure_headers.Secure(secure_headers.parse(
            _section("security-http", "security/http"), ())), _router_inner), client_request),
    "cel": ("proxy", lambda: cel._proxy(cel.parse(_section("cel", "validation/cel"), ()),
                                        "[bench]", _proxy_inner), proxy_request),
    "lua-endpoint-header": ("router", lambda: _lua_router(
        _section("lua-endpoint-header", "modifier/lua-endpoint")), client_request),
    "jsonschema-1k": ("proxy", lambda: jsonschema_body.build(
        SimpleNamespace(config=jsonschema_body.parse(ORDER_SCHEMA, ())),  # type: ignore[arg-type]
        _proxy_inner), lambda: proxy_request(BODY)),
}
BARE = {"service": _service_inner, "router": _router_inner, "proxy": _proxy_inner}


def run(stage: Any, level: str, reqs: list[Any]) -> None:
    """Drive each request through `stage` by hand (no loop: every inner stage answers at
    once)."""
    for req in reqs:
        coro = stage(req, {}) if level == "router" else stage(req)
        try:
            coro.send(None)
        except StopIteration:  # the stage answered (a with-block would cost more)
            continue
        raise RuntimeError("a stage waited")


def best_of(stage: Any, level: str, make: Callable[[], Any], iterations: int,
            runs: int = 5) -> float:
    """Best µs per call of `stage` over `runs` runs."""
    out = []
    for _ in range(runs):
        reqs = [make() for _ in range(iterations)]
        start = time.perf_counter()
        run(stage, level, reqs)
        out.append((time.perf_counter() - start) / iterations * 1e6)
    return min(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--only", default="", help="comma-separated stage names")
    parser.add_argument("--profile", default="", help="a stage to profile instead")
    args = parser.parse_args()
    if args.profile:
        level, factory, make = STAGES[args.profile]
        stage = factory()
        reqs = [make() for _ in range(args.iterations)]
        profile = cProfile.Profile()
        profile.runcall(run, stage, level, reqs)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    names = [n for n in args.only.split(",") if n] or list(STAGES)
    bare: dict[tuple[str, Callable[[], Any]], float] = {}
    for name in names:
        level, factory, make = STAGES[name]
        if (level, make) not in bare:
            bare[(level, make)] = best_of(BARE[level], level, make, args.iterations)
        cost = best_of(factory(), level, make, args.iterations)
        print(f"{name:24s} +{cost - bare[(level, make)]:6.2f} µs per request")


if __name__ == "__main__":
    main()
