"""What Prometheus metrics cost on the proxied request: one gateway with them, one without.

    python bench/metrics_cost.py [--seconds 5] [--rounds 5] [--pin]

`telemetry/opentelemetry` is a root section that instruments every endpoint, so it cannot be
compared with a plain endpoint of the same gateway (component_cost.py's method): each variant
gets a gateway of its own (one worker; with --pin all of them on core 0, nginx and wrk on core
1), with the same single endpoint, loaded in turn. `plain` is a gateway without telemetry;
`separate-plain` a second one, the control (its ratio is the bias of measuring on another
process); `metrics` has a Prometheus exporter (server, proxy, backend and client layers
recorded; the worker ships its series every second), nobody scraping; `metrics-no-client`
the same without krakend-otel's round-trip layer; `metrics-traces` the metrics and traces at
`trace_sample_rate` 0.1, exported over OTLP/HTTP to the upstream nginx (it answers 200 as a
collector would).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
from typing import Any

from common import children, cpu_seconds, free_port, nginx, tidegate, wrk


def _exporter() -> dict[str, Any]:
    return {"prometheus": [{"name": "bench", "listen_ip": "127.0.0.1", "port": free_port()}]}


def _traced() -> dict[str, Any]:
    """Metrics, and traces at 0.1 sent to the upstream (its port is set by `config`)."""
    collector = {"name": "collector", "host": "127.0.0.1", "port": 0, "use_http": True,
                 "disable_metrics": True}
    return {"telemetry/opentelemetry": {"exporters": {**_exporter(), "otlp": [collector]},
                                        "trace_sample_rate": 0.1}}


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "separate-plain": {},
    "metrics": {"telemetry/opentelemetry": {"exporters": _exporter()}},
    "metrics-no-client": {"telemetry/opentelemetry": {
        "exporters": _exporter(), "layers": {"backend": {"metrics": {"round_trip": False}}}}},
    "metrics-traces": _traced(),
}


def config(upstream: int, root: dict[str, Any]) -> dict[str, Any]:
    root = copy.deepcopy(root)
    for exporter in root.get("telemetry/opentelemetry", {}).get("exporters", {}).get("otlp", []):
        exporter["port"] = upstream
    return {"version": 3, "timeout": "3s", "extra_config": root, "endpoints": [
        {"endpoint": "/v", "backend": [{"host": [f"http://127.0.0.1:{upstream}"],
                                        "url_pattern": "/data"}]}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="gateways on core 0, rest on core 1")
    args = parser.parse_args()
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream = free_port()
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    runs: dict[str, list[float]] = {n: [] for n in VARIANTS}
    cpu: dict[str, list[float]] = {n: [] for n in VARIANTS}  # worker us per request
    errors: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    with nginx(upstream, cpus=other_cpus), contextlib.ExitStack() as stack:
        gateways: dict[str, tuple[int, int]] = {}  # name -> (port, worker pid)
        for name, root in VARIANTS.items():
            port = free_port()
            proc = stack.enter_context(tidegate(config(upstream, root), port, cpus=gw_cpus))
            gateways[name] = (port, children(proc.pid)[0])
            wrk(f"http://127.0.0.1:{port}/v", seconds=2, cpus=other_cpus)
        for _ in range(args.rounds):
            for name, (port, pid) in gateways.items():
                before = cpu_seconds(pid)
                r = wrk(f"http://127.0.0.1:{port}/v", **load)
                runs[name].append(r["rps"])
                cpu[name].append((cpu_seconds(pid) - before) / max(r["requests"], 1) * 1e6)
                errors[name] += int(r["errors"])
    plain, plain_cpu = statistics.median(runs["plain"]), statistics.median(cpu["plain"])
    for name in VARIANTS:
        rps, used = statistics.median(runs[name]), statistics.median(cpu[name])
        print(f"{name:20s} {rps:10.0f} req/s  ratio {rps / plain:.3f}  errors {errors[name]}  "
              f"worker CPU {used:.1f} us/request (ratio {plain_cpu / used:.3f})")
    print(f"(one worker each, pinned={args.pin}, c={args.connections}, "
          f"{args.rounds}x{args.seconds}s)")


if __name__ == "__main__":
    main()
