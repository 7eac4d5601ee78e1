"""What Prometheus metrics cost on the proxied request: one gateway with them, one without.

    python bench/metrics_cost.py [--seconds 5] [--rounds 5] [--pin] [--only metrics,...]

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

Each round runs every variant right next to a `plain` run (plain first in even rounds, the
variant first in odd ones); a variant's ratio is the median of these pairs' ratios, with its
95 % confidence interval (`common.median_interval`). `--only` picks variants, `--report FILE`
adds the pairs to a JSON file (bench/targets.py). Each variant's worker CPU per request is
also split into user and system time, and the threads other than the event loop's (the OTLP
export thread).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
from pathlib import Path
from typing import Any

from common import (
    children,
    free_port,
    median_interval,
    nginx,
    tidegate,
    write_report,
    wrk,
)


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


def cpu_split(pid: int) -> tuple[float, float, float]:
    """(user, system, other threads' user + system) CPU seconds a worker has used so far:
    the event loop's thread is the one whose id is the process's."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that just ended
            continue
        u, s = int(fields[11]) / tick, int(fields[12]) / tick
        user, system = user + u, system + s
        if task.name != str(pid):
            others += u + s
    return user, system, others


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
    parser.add_argument("--only", default="", help="comma-separated variants besides plain")
    parser.add_argument("--report", help="JSON file to add the paired ratios to")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or [n for n in VARIANTS if n != "plain"]
    if unknown := set(names) - set(VARIANTS):
        parser.error(f"unknown variants: {sorted(unknown)}")
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream = free_port()
    load = {"seconds": args.seconds, "connections": args.connections, "cpus": other_cpus}
    runs: dict[str, list[float]] = {n: [] for n in ["plain", *names]}
    cpu: dict[str, list[float]] = {n: [] for n in ["plain", *names]}  # worker us per request
    errors: dict[str, int] = dict.fromkeys(["plain", *names], 0)
    # (user, system, other threads) us per request
    split: dict[str, list[tuple[float, float, float]]] = {n: [] for n in ["plain", *names]}
    pairs: dict[str, list[tuple[float, float]]] = {n: [] for n in names}  # (req/s, CPU) ratios
    with nginx(upstream, cpus=other_cpus), contextlib.ExitStack() as stack:
        gateways: dict[str, tuple[int, int]] = {}  # name -> (port, worker pid)
        for name in ["plain", *names]:
            port = free_port()
            proc = stack.enter_context(tidegate(config(upstream, VARIANTS[name]), port,
                                                cpus=gw_cpus))
            gateways[name] = (port, children(proc.pid)[0])
            wrk(f"http://127.0.0.1:{port}/v", seconds=2, cpus=other_cpus)

        def run(name: str) -> tuple[float, float]:
            port, pid = gateways[name]
            before = cpu_split(pid)
            r = wrk(f"http://127.0.0.1:{port}/v", **load)
            count = max(r["requests"], 1)
            user, system, others = ((b - a) / count * 1e6
                                    for a, b in zip(before, cpu_split(pid), strict=True))
            split[name].append((user, system, others))
            used = user + system
            runs[name].append(r["rps"])
            cpu[name].append(used)
            errors[name] += int(r["errors"])
            return r["rps"], used

        for round_no in range(args.rounds):
            for name in names:  # each variant right next to a plain run, order alternating
                order = ("plain", name) if round_no % 2 == 0 else (name, "plain")
                measured = dict(zip(order, (run(order[0]), run(order[1])), strict=True))
                (base_rps, base_cpu), (rps, used) = measured["plain"], measured[name]
                pairs[name].append((rps / base_rps, base_cpu / used))
    def parts(name: str) -> str:
        user, system, others = (statistics.median(x[i] for x in split[name]) for i in range(3))
        return f"user {user:.1f}, system {system:.1f}, other threads {others:.1f}"

    print(f"{'plain':20s} {statistics.median(runs['plain']):10.0f} req/s  errors "
          f"{errors['plain']}  worker CPU {statistics.median(cpu['plain']):.1f} us/request "
          f"({parts('plain')})")
    for name in names:
        ratios = [r for r, _ in pairs[name]]
        median, low, high = median_interval(ratios)
        print(f"{name:20s} {statistics.median(runs[name]):10.0f} req/s  ratio {median:.3f} "
              f"[95 % {low:.3f}-{high:.3f}] (range {min(ratios):.3f}-{max(ratios):.3f})  "
              f"errors {errors[name]}  worker CPU {statistics.median(cpu[name]):.1f} us/request "
              f"(ratio {statistics.median(c for _, c in pairs[name]):.3f}; {parts(name)})")
    write_report(args.report, {name: [r for r, _ in pairs[name]] for name in names})
    print(f"(one worker each, pinned={args.pin}, c={args.connections}, "
          f"{args.rounds} rounds of {args.seconds}s pairs)")


if __name__ == "__main__":
    main()
