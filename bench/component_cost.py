"""What a component costs on the proxied request: one endpoint with it, the same without it.

    python bench/component_cost.py [--seconds 6] [--rounds 3] [--pin] [--only NAME,...]

One gateway (one worker; with --pin alone on core 0, nginx upstream and wrk on core 1) serves
`/plain` and, for every variant, `/v/<name>`: the same backend with the component on. Rounds
alternate plain and component runs so drift hits both alike; the ratio is median component
req/s over median plain req/s of the same run. Add a variant to VARIANTS to measure a new
component (its endpoint extra_config, backend extra_config, request headers, and whether a
non-2xx answer is expected, e.g. a cache that must hit).

A `separate` variant is a root-level section that instruments every endpoint (metrics): it
gets its own gateway (same pinning, same single endpoint shape, loaded in turn with the plain
one), and its `/v/<name>` is compared with the plain gateway's `/plain`.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common import children, cpu_seconds, free_port, nginx, tidegate, wrk


@dataclass
class Variant:
    endpoint_extra: dict[str, Any] = field(default_factory=dict)
    backend_extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    root_extra: dict[str, Any] = field(default_factory=dict)
    # The access log's own cost: only this variant's endpoint writes a line (see below).
    access_log: bool = False
    separate: bool = False  # root-level: its own gateway (see the module docstring)


def _variants() -> dict[str, Callable[[], Variant]]:
    return {
        # A limit never reached: the cost of taking a token from the node's shared table.
        "ratelimit": lambda: Variant(endpoint_extra={"qos/ratelimit/router": {
            "max_rate": 10_000_000, "client_max_rate": 10_000_000, "strategy": "ip"}}),
        "ratelimit-endpoint": lambda: Variant(endpoint_extra={"qos/ratelimit/router": {
            "max_rate": 10_000_000}}),
        "breaker": lambda: Variant(backend_extra={"qos/circuit-breaker": {
            "max_errors": 5, "interval": 60, "timeout": 10}}),
        # nginx's upstream answer has no Cache-Control: the cache is asked to keep it by a
        # backend the bench configures to send max-age (see nginx(..., cache_control)).
        "cache-hit": lambda: Variant(backend_extra={"qos/http-cache": {}}),
        # CORS and security/http wrap the whole service at the root; their endpoint sections
        # (KrakenD EE) run the same compiled policy on one endpoint, so the same gateway
        # measures them against /plain. The request carries an allowed Origin (the answer gets
        # Vary, Access-Control-Allow-Origin, the exposed headers); security/http checks the
        # host, reads X-Forwarded-Proto for STS and sets five headers.
        "cors": lambda: Variant(endpoint_extra={"security/cors": {
            "allow_origins": ["https://app.example.com", "https://*.example.org"],
            "allow_methods": ["GET", "POST"], "allow_headers": ["Authorization"],
            "expose_headers": ["Content-Length"], "max_age": "12h"}},
            headers={"Origin": "https://app.example.com"}),
        # The usual policy: response headers only (no host check, no HTTPS detection).
        "security-http-headers": lambda: Variant(endpoint_extra={"security/http": {
            "frame_deny": True, "content_type_nosniff": True, "browser_xss_filter": True,
            "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"}}),
        "security-http": lambda: Variant(endpoint_extra={"security/http": {
            "allowed_hosts_are_regex": True, "allowed_hosts": [r"127\.0\.0\.1:\d+"],
            "ssl_proxy_headers": {"X-Forwarded-Proto": "https"}, "sts_seconds": 31536000,
            "frame_deny": True, "content_type_nosniff": True, "browser_xss_filter": True,
            "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"}},
            headers={"X-Forwarded-Proto": "https"}),
        # The Lua yardstick: an endpoint script that sets a header (fresh environment,
        # one ctx object, one setter) and a proxy script touching the response.
        "lua-endpoint-header": lambda: Variant(endpoint_extra={"modifier/lua-endpoint": {
            "pre": "local r = ctx.load(); r:headers('X-Lua', 'yes')"}}),
        "lua-proxy-post": lambda: Variant(endpoint_extra={"modifier/lua-proxy": {
            "post": "local r = response.load(); r:data():set('lua', true)"}}),
        # CEL checks that pass: one on the request at endpoint level; one on the request and
        # one on the response at backend level.
        "cel": lambda: Variant(endpoint_extra={"validation/cel": [
            {"check_expr": "req_method == 'GET' && !('debug' in req_querystring)"}]}),
        "cel-backend": lambda: Variant(backend_extra={"validation/cel": [
            {"check_expr": "req_path.startsWith('/data')"},
            {"check_expr": "resp_completed && resp_metadata_status == 200"}]}),
        # One access-log line per request (gin's format, to the gateway's log file).
        "access-log": lambda: Variant(access_log=True),
        # Prometheus metrics of telemetry/opentelemetry (server, proxy, backend and client
        # layers recorded; the worker ships its series every second), nobody scraping.
        "metrics": lambda: Variant(separate=True, root_extra={"telemetry/opentelemetry": {
            "exporters": {"prometheus": [{"name": "bench", "listen_ip": "127.0.0.1",
                                          "port": free_port()}]}}}),
        # The same without krakend-otel's round-trip layer (http.client.*).
        "metrics-no-client": lambda: Variant(separate=True, root_extra={
            "telemetry/opentelemetry": {
                "exporters": {"prometheus": [{"name": "bench", "listen_ip": "127.0.0.1",
                                              "port": free_port()}]},
                "layers": {"backend": {"metrics": {"round_trip": False}}}}}),
        # The control of `metrics`: a gateway of its own with nothing on (its ratio is the
        # bias of measuring on another process).
        "separate-plain": lambda: Variant(separate=True),
    }


VARIANTS = _variants()


def gateway_config(upstream: int, names: list[str]) -> dict[str, Any]:
    def endpoint(path: str, variant: Variant | None) -> dict[str, Any]:
        backend: dict[str, Any] = {"host": [f"http://127.0.0.1:{upstream}"],
                                   "url_pattern": "/cacheable" if path.endswith("cache-hit")
                                   else "/data"}
        out: dict[str, Any] = {"endpoint": path, "backend": [backend]}
        if variant is not None:
            if variant.backend_extra:
                backend["extra_config"] = variant.backend_extra
            if variant.endpoint_extra:
                out["extra_config"] = variant.endpoint_extra
        return out

    root: dict[str, Any] = {}
    for name in names:
        if not VARIANTS[name]().separate:
            root.update(VARIANTS[name]().root_extra)
    if any(VARIANTS[n]().access_log for n in names):
        # The access log is on by default: off (skipped) everywhere but on its variant.
        root["router"] = {"logger_skip_paths": ["/plain", *(
            f"/v/{n}" for n in names if not VARIANTS[n]().access_log)]}
    return {"version": 3, "timeout": "3s", "extra_config": root,
            "endpoints": [endpoint("/plain", None),
                          *(endpoint(f"/v/{n}", VARIANTS[n]()) for n in names)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream, port = free_port(), free_port()
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    runs: dict[str, list[float]] = {"plain": [], **{n: [] for n in names}}
    cpu: dict[str, list[float]] = {"plain": [], **{n: [] for n in names}}  # us per request
    errors: dict[str, int] = {}
    shared = [n for n in names if not VARIANTS[n]().separate]
    with nginx(upstream, cpus=other_cpus), tidegate(gateway_config(upstream, shared), port,
                                                    cpus=gw_cpus) as gw, \
            contextlib.ExitStack() as stack:
        worker = children(gw.pid)[0]
        # name -> (port, worker pid) of the variants with a gateway of their own
        own: dict[str, tuple[int, int]] = {}
        for name in names:
            if VARIANTS[name]().separate:
                variant = VARIANTS[name]()
                own_port = free_port()
                config = gateway_config(upstream, [])
                config["extra_config"] = variant.root_extra
                config["endpoints"] = [{**config["endpoints"][0], "endpoint": f"/v/{name}"}]
                proc = stack.enter_context(tidegate(config, own_port, cpus=gw_cpus))
                own[name] = (own_port, children(proc.pid)[0])
                wrk(f"http://127.0.0.1:{own_port}/v/{name}", seconds=2, cpus=other_cpus)
        wrk(f"http://127.0.0.1:{port}/plain", seconds=2, cpus=other_cpus)
        for _ in range(args.rounds):
            for name in ["plain", *names]:
                path = "/plain" if name == "plain" else f"/v/{name}"
                headers = {} if name == "plain" else VARIANTS[name]().headers
                target_port, pid = own.get(name, (port, worker))
                before = cpu_seconds(pid)
                r = wrk(f"http://127.0.0.1:{target_port}{path}", headers=headers, **load)
                runs[name].append(r["rps"])
                cpu[name].append((cpu_seconds(pid) - before) / max(r["requests"], 1) * 1e6)
                errors[name] = errors.get(name, 0) + int(r["errors"])
    plain = statistics.median(runs["plain"])
    plain_cpu = statistics.median(cpu["plain"])
    print(f"{'plain':20s} {plain:10.0f} req/s  errors {errors['plain']}  "
          f"worker CPU {plain_cpu:.1f} us/request")
    for name in names:
        rps = statistics.median(runs[name])
        used = statistics.median(cpu[name])
        print(f"{name:20s} {rps:10.0f} req/s  ratio {rps / plain:.3f}  errors {errors[name]}  "
              f"worker CPU {used:.1f} us/request (ratio {plain_cpu / used:.3f})")
    print(f"(one worker, pinned={args.pin}, c={args.connections}, {args.rounds}x{args.seconds}s)")


if __name__ == "__main__":
    main()
