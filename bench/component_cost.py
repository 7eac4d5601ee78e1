"""What a component costs on the proxied request: one endpoint with it, the same without it.

    python bench/component_cost.py [--seconds 6] [--rounds 3] [--pin] [--only NAME,...]

One gateway (one worker; with --pin alone on core 0, nginx upstream and wrk on core 1) serves
`/plain` and, for every variant, `/v/<name>`: the same backend with the component on. Each
variant is compared with `/plain` (or `/plain-post`) sent the very same request, its headers
and body included, so that the ratio is what the component adds, not what parsing a longer
request costs. Each round runs every variant right next to its plain run (plain first in even
rounds, the variant first in odd ones), so the machine's drift between two runs seconds apart
hits both alike: the ratio is the median over rounds of these adjacent pairs' ratios, printed
with its 95 % confidence interval (`common.median_interval`; an interval that straddles a
target says: more rounds) and its range. `--report FILE` adds the pairs to a JSON file
(bench/targets.py). Add a variant to VARIANTS
to measure a new component (its endpoint extra_config, backend extra_config, request headers,
and whether a non-2xx answer is expected, e.g. a cache that must hit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    children,
    cpu_seconds,
    free_port,
    median_interval,
    nginx,
    tidegate,
    write_report,
    wrk,
)


@dataclass
class Variant:
    endpoint_extra: dict[str, Any] = field(default_factory=dict)
    backend_extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # The root extra_config (given the upstream's port: an OTLP collector there, say).
    root_extra: Callable[[int], dict[str, Any]] = lambda upstream: {}
    # The access log's own cost: only this variant's endpoint writes a line (see below).
    access_log: bool = False
    body: str = ""  # sent as a POST (both the plain endpoint and the variant's)


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
        # No component: what the request headers of the cors and security-http variants cost
        # by themselves (the protocol parses them, the request builder skips them).
        "headers-only": lambda: Variant(headers={"Origin": "https://app.example.com",
                                                 "X-Forwarded-Proto": "https"}),
        # A realistic ~1 KiB order body, validated against a schema that checks a few fields,
        # their types and formats; /plain gets the same POST body without the validation.
        "jsonschema-1k": lambda: Variant(endpoint_extra={"validation/json-schema": ORDER_SCHEMA},
                                         headers={"Content-Type": "application/json"},
                                         body=ORDER_BODY),
        # telemetry/opentelemetry: Prometheus metrics and traces at trace_sample_rate 0.1
        # (server, proxy, backend and client spans, traceparent to the backend) for every
        # endpoint but /plain, which skip_paths leaves uninstrumented (off). Spans go over
        # OTLP/HTTP to nginx, which answers 200 to the exports as a collector would.
        "otel-traces": lambda: Variant(root_extra=lambda upstream: {
            "telemetry/opentelemetry": {
                "trace_sample_rate": 0.1, "skip_paths": ["/plain"],
                "exporters": {
                    "otlp": [{"name": "collector", "host": "127.0.0.1", "port": upstream,
                              "use_http": True}],
                    "prometheus": [{"name": "local", "listen_ip": "127.0.0.1",
                                    "port": free_port()}]}}}),
    }


ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "required": ["id", "customer", "items", "total"],
    "properties": {
        "id": {"type": "string", "minLength": 8},
        "customer": {"type": "object", "required": ["email", "name"],
                     "properties": {"email": {"type": "string"},
                                    "name": {"type": "string", "maxLength": 200}}},
        "items": {"type": "array", "minItems": 1,
                  "items": {"type": "object", "required": ["sku", "qty", "price"],
                            "properties": {"sku": {"type": "string"},
                                           "qty": {"type": "integer", "minimum": 1},
                                           "price": {"type": "number", "minimum": 0}}}},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
    },
}


def _order_body() -> str:
    items = [{"sku": f"SKU-{n:05d}", "name": f"Widget number {n}", "qty": n % 3 + 1,
              "price": round(9.99 + n, 2)} for n in range(10)]
    order = {"id": "ord-2026-000123", "currency": "EUR", "total": 123.45, "items": items,
             "customer": {"email": "jane.doe@example.com", "name": "Jane Doe",
                          "address": {"street": "1 Main Street", "city": "Springfield",
                                      "zip": "12345", "country": "US"}},
             "notes": "Leave at the door, ring twice. If nobody answers, leave it with "
                      "the neighbours at number 3, or at the shop on the corner."}
    return json.dumps(order, separators=(",", ":"))


ORDER_BODY = _order_body()


VARIANTS = _variants()


def gateway_config(upstream: int, names: list[str]) -> dict[str, Any]:
    def endpoint(path: str, variant: Variant | None, post: bool = False) -> dict[str, Any]:
        backend: dict[str, Any] = {"host": [f"http://127.0.0.1:{upstream}"],
                                   "url_pattern": "/cacheable" if path.endswith("cache-hit")
                                   else "/data"}
        out: dict[str, Any] = {"endpoint": path, "backend": [backend]}
        if post:
            out["method"] = "POST"
        if variant is not None:
            if variant.backend_extra:
                backend["extra_config"] = variant.backend_extra
            if variant.endpoint_extra:
                out["extra_config"] = variant.endpoint_extra
        return out

    root: dict[str, Any] = {}
    for name in names:
        root.update(VARIANTS[name]().root_extra(upstream))
    if any(VARIANTS[n]().access_log for n in names):
        # The access log is on by default: off (skipped) everywhere but on its variant.
        root["router"] = {"logger_skip_paths": ["/plain", "/plain-post", *(
            f"/v/{n}" for n in names if not VARIANTS[n]().access_log)]}
    posts = [endpoint("/plain-post", None, True)] if any(VARIANTS[n]().body for n in names) else []
    return {"version": 3, "timeout": "3s", "extra_config": root,
            "endpoints": [endpoint("/plain", None), *posts,
                          *(endpoint(f"/v/{n}", VARIANTS[n](), bool(VARIANTS[n]().body))
                            for n in names)]}


def base_name(variant: Variant) -> str:
    """The plain run a variant is compared with: ``plain``, ``plain-post``, plus the request
    headers they share (``plain+Origin,X-Forwarded-Proto``)."""
    name = "plain-post" if variant.body else "plain"
    return f"{name}+{','.join(sorted(variant.headers))}" if variant.headers else name


def post_script(body: str) -> Path:
    """A wrk script that sends `body` as a POST (wrk's own method/body settings)."""
    path = Path(tempfile.mkdtemp(prefix="tidegate-bench-wrk-")) / "post.lua"
    path.write_text(f"wrk.method = \"POST\"\nwrk.body = {json.dumps(body)}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--report", help="JSON file to add the paired ratios to")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream, port = free_port(), free_port()
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    # Each variant is compared with the plain endpoint sent the same request (headers, body).
    bodies = {n: VARIANTS[n]().body for n in names}
    base_of = {n: base_name(VARIANTS[n]()) for n in names}
    bases = list(dict.fromkeys(["plain", *base_of.values()]))
    base_request = {"plain": ({}, False)}
    for n in names:
        base_request.setdefault(base_of[n], (VARIANTS[n]().headers, bool(bodies[n])))
    runs: dict[str, list[float]] = {n: [] for n in [*bases, *names]}
    cpu: dict[str, list[float]] = {n: [] for n in [*bases, *names]}  # us per request
    errors: dict[str, int] = {}
    pairs: dict[str, list[tuple[float, float]]] = {n: [] for n in names}  # (req/s, CPU) ratios
    script = post_script(next(b for b in bodies.values() if b)) if any(bodies.values()) else None
    with nginx(upstream, cpus=other_cpus), tidegate(gateway_config(upstream, names), port,
                                                    cpus=gw_cpus) as gw:
        worker = children(gw.pid)[0]
        wrk(f"http://127.0.0.1:{port}/plain", seconds=2, cpus=other_cpus)

        def run(name: str) -> tuple[float, float]:
            if name in bases:
                headers, post = base_request[name]
                path = "/plain-post" if post else "/plain"
            else:
                headers, post = VARIANTS[name]().headers, bool(bodies[name])
                path = f"/v/{name}"
            before = cpu_seconds(worker)
            r = wrk(f"http://127.0.0.1:{port}{path}", headers=headers,
                    script=script if post else None, **load)
            used = (cpu_seconds(worker) - before) / max(r["requests"], 1) * 1e6
            runs[name].append(r["rps"])
            cpu[name].append(used)
            errors[name] = errors.get(name, 0) + int(r["errors"])
            return r["rps"], used

        for round_no in range(args.rounds):
            if "plain" not in base_of.values():
                run("plain")  # the reference line printed first
            for name in names:
                pair = (base_of[name], name) if round_no % 2 == 0 else (name, base_of[name])
                measured = dict(zip(pair, (run(pair[0]), run(pair[1])), strict=True))
                (base_rps, base_cpu), (rps, used) = measured[base_of[name]], measured[name]
                pairs[name].append((rps / base_rps, base_cpu / used))
    for base in bases:
        print(f"{base:40s} {statistics.median(runs[base]):10.0f} req/s  errors {errors[base]}  "
              f"worker CPU {statistics.median(cpu[base]):.1f} us/request")
    for name in names:
        rps, used = statistics.median(runs[name]), statistics.median(cpu[name])
        ratios = [r for r, _ in pairs[name]]
        cpu_ratios = [c for _, c in pairs[name]]
        median, low, high = median_interval(ratios)
        print(f"{name:40s} {rps:10.0f} req/s  ratio {median:.3f} [95 % {low:.3f}-{high:.3f}] "
              f"(range {min(ratios):.3f}-{max(ratios):.3f})  errors {errors[name]}  "
              f"worker CPU {used:.1f} us/request (ratio {statistics.median(cpu_ratios):.3f})")
    write_report(args.report, {name: [r for r, _ in pairs[name]] for name in names})
    print(f"(one worker, pinned={args.pin}, c={args.connections}, {args.rounds}x{args.seconds}s)")


if __name__ == "__main__":
    main()
