"""Requests/s through tidegate vs nginx `proxy_pass`, same upstream, same load generator.

    python bench/proxy_vs_nginx.py [--seconds 10] [--rounds 1] [--workers 1] [--pin]
                                   [--backends 1] [--stack jwt,cors,ratelimit,metrics]

With --pin (the issue's reference setup) each gateway runs alone on core 0 and the upstream and
wrk share core 1. Prints one line per target and the ratio tidegate/nginx. With ``--rounds N``
both gateways stay up and are loaded in turn N times (nginx first in even rounds, tidegate first
in odd ones): the ratio is the median of the N adjacent pairs' ratios, printed with its 95 %
confidence interval (`common.median_interval`) and its range, and each line shows its
gateway's median req/s round with the median p50 and p99. `--report FILE --name N` adds the
pairs (and tidegate's median p99) to a JSON file (bench/targets.py).

``--stack`` turns on, on the same endpoint, the components users turn on most: ``jwt`` (RS256,
a 2048-bit key, JWK set fetched once from a local key server and cached; every request carries
the same valid token), ``cors`` (root section, the request has an allowed Origin), ``ratelimit``
(an endpoint limit far above the load, so every request takes a token) and ``metrics``
(``telemetry/opentelemetry`` with a Prometheus exporter on its own port). Two more measure one
component alone (`instructions.py`): ``ratelimit-client`` (the endpoint's and a client bucket)
``cache-hit`` (``qos/http-cache`` on an answer cacheable for an hour: every request a hit) and
``breaker`` (a closed ``qos/circuit-breaker`` on the backend).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any
from urllib.parse import urlsplit

from common import (
    free_port,
    median_interval,
    nginx,
    reuse,
    tidegate,
    upstream_counts,
    write_report,
    wrk,
)

STACK = ("jwt", "cors", "ratelimit", "metrics", "traces")
ORIGIN = "https://app.example.com"


def gateway_config(upstream_port: int, backends: int) -> dict:
    host = [f"http://127.0.0.1:{upstream_port}"]
    if backends == 1:
        backend = [{"host": host, "url_pattern": "/data"}]
    else:
        backend = [{"host": host, "url_pattern": f"/data{i}", "group": f"b{i}"}
                   for i in range(backends)]
    return {"version": 3, "timeout": "3s",
            "endpoints": [{"endpoint": "/bench", "backend": backend}]}


def add_stack(cfg: dict[str, Any], stack: list[str]) -> tuple[dict[str, str], Any]:
    """Turn the components of `stack` on in `cfg`; (request headers, key server or None)."""
    headers: dict[str, str] = {}
    server = None
    root = cfg.setdefault("extra_config", {})
    endpoint = cfg["endpoints"][0].setdefault("extra_config", {})
    if "jwt" in stack:
        from jwt_cost import signed_setup

        _key, server, token, endpoint["auth/validator"] = signed_setup()
        headers["Authorization"] = f"Bearer {token}"
    if "cors" in stack:
        root["security/cors"] = {"allow_origins": [ORIGIN], "allow_methods": ["GET"],
                                 "allow_headers": ["Authorization"], "max_age": "12h"}
        headers["Origin"] = ORIGIN
    if "ratelimit" in stack:
        endpoint["qos/ratelimit/router"] = {"max_rate": 10_000_000}
    if "ratelimit-client" in stack:  # the endpoint's bucket and one per client address
        endpoint["qos/ratelimit/router"] = {"max_rate": 10_000_000,
                                            "client_max_rate": 10_000_000, "strategy": "ip"}
    if "cache-hit" in stack:  # an answer the upstream allows to cache for an hour
        backend = cfg["endpoints"][0]["backend"][0]
        backend["url_pattern"] = "/cacheable"
        backend["extra_config"] = {"qos/http-cache": {}}
    if "breaker" in stack:  # a closed circuit breaker on the backend
        backend = cfg["endpoints"][0]["backend"][0]
        backend.setdefault("extra_config", {})["qos/circuit-breaker"] = {
            "max_errors": 5, "interval": 60, "timeout": 10}
    if "metrics" in stack:
        root["telemetry/opentelemetry"] = {
            "service_name": "bench",
            "exporters": {"prometheus": [{"name": "local", "port": free_port(),
                                          "listen_ip": "127.0.0.1"}]}}
    if "traces" in stack:
        # Traces at trace_sample_rate 0.1, exported over OTLP/HTTP to the upstream nginx
        # (it answers 200 to the exports as a collector would); no OTLP metrics push.
        otel = root.setdefault("telemetry/opentelemetry", {"service_name": "bench"})
        upstream = urlsplit(cfg["endpoints"][0]["backend"][0]["host"][0])
        otel["trace_sample_rate"] = 0.1
        otel.setdefault("exporters", {})["otlp"] = [{
            "name": "collector", "host": upstream.hostname, "port": upstream.port,
            "use_http": True, "disable_metrics": True}]
    return headers, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backends", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    parser.add_argument("--stack", default="", help=f"components to turn on: {','.join(STACK)}")
    parser.add_argument("--report", help="JSON file to add the paired ratios to, under --name")
    parser.add_argument("--name", default="proxy", help="the measurement's name in --report")
    args = parser.parse_args()
    stack = [s for s in args.stack.split(",") if s]
    if unknown := set(stack) - set(STACK):
        parser.error(f"unknown --stack parts: {sorted(unknown)}")
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream, nginx_proxy, gateway_port = free_port(), free_port(), free_port()
    results = {}
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    rounds: dict[str, list[dict[str, Any]]] = {"nginx": [], "tidegate": []}
    with nginx(upstream, cpus=other_cpus):
        results["direct"] = wrk(f"http://127.0.0.1:{upstream}/", **load)
        cfg = gateway_config(upstream, args.backends)
        headers, key_server = add_stack(cfg, stack)
        try:
            with nginx(nginx_proxy, proxy_to=upstream, cpus=gw_cpus), \
                    tidegate(cfg, gateway_port, workers=args.workers, cpus=gw_cpus):
                urls = {"nginx": (f"http://127.0.0.1:{nginx_proxy}/data", {}),
                        "tidegate": (f"http://127.0.0.1:{gateway_port}/bench", headers)}
                for url, sent in urls.values():
                    wrk(url, seconds=2, cpus=other_cpus, headers=sent)
                for n in range(args.rounds):
                    for name in ("nginx", "tidegate") if n % 2 == 0 else ("tidegate", "nginx"):
                        url, sent = urls[name]
                        before = upstream_counts(upstream)
                        r = wrk(url, **load, headers=sent)
                        r["upstream_reuse"] = reuse(before, upstream_counts(upstream))
                        rounds[name].append(r)
        finally:
            if key_server is not None:
                key_server.shutdown()
    for name, runs in rounds.items():  # each gateway's median round; latencies: their medians
        results[name] = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])
        for m in ("p50_ms", "p99_ms"):
            results[name][m] = statistics.median(r[m] for r in runs)
    ratios = [t["rps"] / g["rps"] for g, t in zip(rounds["nginx"], rounds["tidegate"],
                                                     strict=True)]
    for name, r in results.items():
        reused = (f"  upstream connection reuse {100 * r['upstream_reuse']:.2f} %"
                  if "upstream_reuse" in r else "")
        print(f"{name:9s} {r['rps']:10.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}{reused}")
    median, low, high = median_interval(ratios)
    spread = (f" [95 % {low:.3f}-{high:.3f}] (range {min(ratios):.3f}-{max(ratios):.3f})"
              if len(ratios) > 1 else "")
    write_report(args.report, {args.name: ratios},
                 {args.name: {"p99_ms": results["tidegate"]["p99_ms"],
                              "rps": results["tidegate"]["rps"]}})
    print(f"ratio tidegate/nginx: {median:.3f}{spread}  "
          f"(workers={args.workers}, backends={args.backends},"
          f" pinned={args.pin}, c={args.connections}, {args.rounds}x{args.seconds}s,"
          f" stack={','.join(stack) or 'none'})")
    print(json.dumps({k: {m: v for m, v in r.items() if m != "raw"} for k, r in results.items()}))


if __name__ == "__main__":
    main()
