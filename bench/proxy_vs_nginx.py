"""Requests/s through tidegate vs nginx `proxy_pass`, same upstream, same load generator.

    python bench/proxy_vs_nginx.py [--seconds 10] [--workers 1] [--pin] [--backends 1]

With --pin (the issue's reference setup) each gateway runs alone on core 0 and the upstream and
wrk share core 1. Prints one line per target and the ratio tidegate/nginx.
"""

from __future__ import annotations

import argparse
import json

from common import free_port, nginx, tidegate, wrk


def gateway_config(upstream_port: int, backends: int) -> dict:
    host = [f"http://127.0.0.1:{upstream_port}"]
    if backends == 1:
        backend = [{"host": host, "url_pattern": "/data"}]
    else:
        backend = [{"host": host, "url_pattern": f"/data{i}", "group": f"b{i}"}
                   for i in range(backends)]
    return {"version": 3, "timeout": "3s",
            "endpoints": [{"endpoint": "/bench", "backend": backend}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backends", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    args = parser.parse_args()
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream, nginx_proxy, gateway_port = free_port(), free_port(), free_port()
    results = {}
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    with nginx(upstream, cpus=other_cpus):
        results["direct"] = wrk(f"http://127.0.0.1:{upstream}/", **load)
        with nginx(nginx_proxy, proxy_to=upstream, cpus=gw_cpus):
            wrk(f"http://127.0.0.1:{nginx_proxy}/data", seconds=2, cpus=other_cpus)
            results["nginx"] = wrk(f"http://127.0.0.1:{nginx_proxy}/data", **load)
        cfg = gateway_config(upstream, args.backends)
        with tidegate(cfg, gateway_port, workers=args.workers, cpus=gw_cpus):
            wrk(f"http://127.0.0.1:{gateway_port}/bench", seconds=2, cpus=other_cpus)
            results["tidegate"] = wrk(f"http://127.0.0.1:{gateway_port}/bench", **load)
    for name, r in results.items():
        print(f"{name:9s} {r['rps']:10.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}")
    ratio = results["tidegate"]["rps"] / results["nginx"]["rps"]
    print(f"ratio tidegate/nginx: {ratio:.3f}  (workers={args.workers}, backends={args.backends},"
          f" pinned={args.pin}, c={args.connections}, {args.seconds}s)")
    print(json.dumps({k: {m: v for m, v in r.items() if m != "raw"} for k, r in results.items()}))


if __name__ == "__main__":
    main()
