"""Every throughput target of the issues, measured the same way, with a verdict each.

    python bench/targets.py [--rounds 12] [--seconds 3] [--only NAME,...] [--report FILE]

Runs the benches that measure the targets (one worker pinned to core 0, nginx and wrk on core
1), each as paired rounds: the variant right next to its reference, order alternating. On a VM
whose speed drifts by a third within minutes, one run's ratio proves nothing; the median of many
short pairs and its 95 % confidence interval (`common.median_interval`) do. A target is `met`
when the interval's low end clears it, `missed` when its high end is below it, and `undecided`
otherwise (more rounds would settle it). The pairs go to `--report` (JSON), the table to stdout
as Markdown, for a closing note. Runs given the same `--report` pool their pairs: an undecided
target can be given more rounds with `--only NAME`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    issue: int
    name: str        # the key the bench writes in the report
    what: str
    minimum: float   # the ratio to reach
    bench: str       # which script measures it (the key of BENCHES)
    p99_ms: float | None = None  # a latency bound as well (tidegate's median p99)


TARGETS = (
    Target(13, "cors", "CORS (endpoint section) / same endpoint without", 0.95, "components"),
    Target(13, "security-http", "`security/http` / same endpoint without", 0.95, "components"),
    Target(13, "jwt", "JWT RS256, cached JWK / same endpoint without", 0.80, "jwt"),
    Target(13, "tls", "TLS termination / plain HTTP", 0.70, "tls"),
    Target(16, "cel", "CEL check / same endpoint without", 0.85, "components"),
    Target(16, "lua-endpoint-header", "Lua endpoint script setting a header", 0.70,
           "components"),
    Target(16, "jsonschema-1k", "JSON Schema of a 1 KiB body", 0.80, "components"),
    Target(17, "metrics", "Prometheus metrics / telemetry off", 0.92, "metrics"),
    Target(17, "metrics-traces", "metrics + traces at 0.1 / telemetry off", 0.85, "metrics"),
    Target(17, "access-log", "access log on / off", 0.90, "components"),
    Target(18, "plain", "plain proxied request / nginx", 0.40, "plain", p99_ms=5.0),
    Target(18, "backends-3", "3-backend aggregation / nginx's single request", 0.20,
           "backends-3"),
    Target(18, "stack", "jwt,cors,ratelimit,metrics / nginx", 0.30, "stack"),
)


def bench_commands(names: set[str], rounds: int, seconds: int, report: Path
                   ) -> dict[str, list[str]]:
    """The command of each bench that measures one of `names`."""
    common = ["--pin", "--rounds", str(rounds), "--seconds", str(seconds), "--report",
              str(report)]
    components = [t.name for t in TARGETS if t.bench == "components" and t.name in names]
    metrics = [t.name for t in TARGETS if t.bench == "metrics" and t.name in names]
    proxy = [sys.executable, str(HERE / "proxy_vs_nginx.py"), *common]
    commands = {
        "components": [sys.executable, str(HERE / "component_cost.py"), *common, "--only",
                       ",".join(components)] if components else [],
        "metrics": [sys.executable, str(HERE / "metrics_cost.py"), *common, "--only",
                    ",".join(metrics)] if metrics else [],
        "jwt": [sys.executable, str(HERE / "jwt_cost.py"), *common],
        "tls": [sys.executable, str(HERE / "tls_termination.py"), *common],
        "plain": [*proxy, "--name", "plain"],
        "backends-3": [*proxy, "--backends", "3", "--name", "backends-3"],
        "stack": [*proxy, "--stack", "jwt,cors,ratelimit,metrics", "--name", "stack"],
    }
    wanted = {t.bench for t in TARGETS if t.name in names}
    return {bench: cmd for bench, cmd in commands.items() if bench in wanted and cmd}


def verdict(target: Target, result: dict[str, float]) -> str:
    if target.p99_ms is not None and result.get("p99_ms", 0.0) > target.p99_ms:
        return "missed (p99)"
    if result["low"] >= target.minimum:
        return "met"
    if result["high"] < target.minimum:
        return "missed"
    return "undecided"


def table(report: dict[str, dict[str, float]], names: set[str]) -> str:
    lines = ["| issue | target | minimum | median | 95 % interval | pairs | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for t in TARGETS:
        if t.name not in names or t.name not in report:
            continue
        r = report[t.name]
        minimum = f"{t.minimum:.2f}" + (f", p99 <= {t.p99_ms:g} ms" if t.p99_ms else "")
        median = f"{r['median']:.3f}" + (f" (p99 {r['p99_ms']:.2f} ms)" if "p99_ms" in r else "")
        lines.append(f"| {t.issue} | {t.what} | {minimum} | {median} | "
                     f"{r['low']:.3f}-{r['high']:.3f} | {len(r['pairs'])} | {verdict(t, r)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--report", help="JSON file for the pairs (default: a temporary one)")
    args = parser.parse_args()
    names = {n for n in args.only.split(",") if n} or {t.name for t in TARGETS}
    if unknown := names - {t.name for t in TARGETS}:
        parser.error(f"unknown targets: {sorted(unknown)}")
    report = Path(args.report or Path(tempfile.mkdtemp(prefix="tidegate-targets-")) /
                  "report.json")
    for bench, command in bench_commands(names, args.rounds, args.seconds, report).items():
        print(f"== {bench}: {' '.join(Path(c).name if c.startswith('/') else c for c in command)}",
              flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        print(done.stdout.rstrip(), flush=True)
        if done.returncode:
            print(done.stderr.rstrip(), file=sys.stderr)
            sys.exit(f"{bench} failed (exit {done.returncode})")
    print()
    print(table(json.loads(report.read_text()), names))
    print(f"\n(pairs in {report}; {args.rounds} rounds of {args.seconds}s pairs, one worker "
          "pinned to core 0, nginx and wrk on core 1)")


if __name__ == "__main__":
    main()
