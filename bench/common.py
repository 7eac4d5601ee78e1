"""Shared pieces of the benchmarks: nginx (upstream and reference proxy), tidegate, wrk.

Everything listens on 127.0.0.1 and every load run is bounded in time. Processes started here
are stopped by PID.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

UPSTREAM_BODY = '{"hello":"world","n":42,"items":[1,2,3]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Stop a process this bench started: `sig` (a graceful stop), SIGKILL after `timeout`."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def taskset(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


@contextmanager
def nginx(listen_port: int, proxy_to: int | None = None, cpus: str | None = None
          ) -> Iterator[None]:
    """nginx on `listen_port`: the upstream (a small JSON) or, with `proxy_to`, a keep-alive
    reverse proxy to that upstream. One worker process, like one tidegate worker."""
    if not shutil.which("nginx"):
        sys.exit("nginx is needed: apt-get install nginx-light")
    prefix = Path(tempfile.mkdtemp(prefix="tidegate-bench-nginx-"))
    (prefix / "logs").mkdir()
    if proxy_to is None:
        location = f"default_type application/json; return 200 '{UPSTREAM_BODY}';"
        # The same answer, cacheable for an hour (for HTTP cache benches).
        location += (" } location /cacheable { add_header Cache-Control max-age=3600; "
                     f"default_type application/json; return 200 '{UPSTREAM_BODY}';")
        # Connections accepted and requests served, to report how well clients reuse them.
        location += " } location = /__upstream_status { stub_status;"
        upstream = ""
    else:
        location = ('proxy_pass http://backend; proxy_http_version 1.1; '
                    'proxy_set_header Connection "";')
        upstream = f"upstream backend {{ server 127.0.0.1:{proxy_to}; keepalive 128; }}"
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  {upstream}
  server {{
    listen 127.0.0.1:{listen_port} backlog=4096;
    location / {{ {location} }}
  }}
}}
""")
    proc = subprocess.Popen([*taskset(cpus), "nginx", "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(listen_port)
        yield
    finally:
        stop(proc, signal.SIGQUIT, 10)
        shutil.rmtree(prefix, ignore_errors=True)


@contextmanager
def tidegate(config: dict[str, Any], port: int, *, workers: int = 1, cpus: str | None = None,
             watch: bool = False, config_path: Path | None = None,
             log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`tidegate run` on a config written to a temp file (or `config_path`)."""
    folder = Path(tempfile.mkdtemp(prefix="tidegate-bench-"))
    path = config_path or folder / "krakend.json"
    path.write_text(json.dumps(config))
    args = [*taskset(cpus), sys.executable, "-m", "tidegate", "run", "-c", str(path), "-p",
            str(port), "--workers", str(workers)]
    if watch:
        args.append("--watch")
    out = open(log or folder / "gateway.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "TIDEGATE_LOG_LEVEL": "WARNING",
                                 # this checkout's package, whatever pip -e points at
                                 "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        wait_port(port)
        yield proc
    finally:
        stop(proc, signal.SIGTERM, 20)
        out.close()
        if config_path is None:
            shutil.rmtree(folder, ignore_errors=True)


def upstream_counts(port: int) -> tuple[int, int]:
    """(connections accepted, requests served) so far by the upstream nginx on `port`
    (its stub_status; the status request itself counts as one of each at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /__upstream_status HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    numbers = data.split(b"\r\n\r\n", 1)[1].splitlines()[2].split()
    return int(numbers[0]), int(numbers[2])


def reuse(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of upstream requests that went on a connection already open: 1 - new/requests."""
    accepts, requests = after[0] - before[0], after[1] - before[1]
    return 1 - accepts / requests if requests else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct child processes (the workers of a supervisor)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, *, seconds: int, connections: int = 64, threads: int = 1,
        cpus: str | None = None, headers: dict[str, str] | None = None,
        script: Path | None = None) -> dict[str, float]:
    """Run wrk with latency; returns rps, p50/p99 in ms, errors (socket + non-2xx).
    `headers` are sent with every request; `script` is a wrk Lua script."""
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    extra = [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
    if script is not None:
        extra += ["-s", str(script)]
    cmd = [*taskset(cpus), "wrk", "--latency", "-t", str(threads), "-c", str(connections),
           "-d", f"{seconds}s", *extra, url]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    # Anchored: "50%" also appears inside other columns (e.g. "98.50%").
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    total = int(re.search(r"(\d+) requests in", text).group(1))
    socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p50_ms": _ms(p50.group(1)) if p50 else float("nan"),
            "p99_ms": _ms(p99.group(1)) if p99 else float("nan"), "requests": total,
            "errors": socket_errors + (int(non2xx.group(1)) if non2xx else 0), "raw": text}


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the median of paired ratios and a distribution-free confidence
    interval for it, from order statistics (the rank bounds come from the binomial law of
    how many samples fall below the true median). On a VM whose speed drifts, single runs
    differ by a third; this interval is what says whether a target is met (its low end clears
    it), missed (its high end is below) or undecided (more rounds)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    tail = (1 - confidence) / 2
    # The largest k with P(Binomial(n, 1/2) < k) <= tail: [x_k, x_(n+1-k)] covers the median.
    k, below = 0, 0.0
    while True:
        below_next = below + math.comb(n, k) / 2 ** n
        if below_next > tail:
            break
        k, below = k + 1, below_next
    if k == 0:  # too few samples (fewer than 6 at 95 %): no interval at all
        return statistics.median(ordered), -math.inf, math.inf
    return statistics.median(ordered), ordered[k - 1], ordered[n - k]


def write_report(path: str | None, results: dict[str, list[float]],
                 details: dict[str, dict[str, float]] | None = None) -> None:
    """Add each measurement's paired ratios, their median interval and its `details` (e.g. a
    p99) to the JSON file at `path` (bench/targets.py reads it). Pairs an earlier run wrote
    there under the same name are kept: runs of the same code pool their pairs."""
    if not path:
        return
    target = Path(path)
    report = json.loads(target.read_text()) if target.exists() else {}
    for name, ratios in results.items():
        pooled = [*report.get(name, {}).get("pairs", []), *ratios]
        median, low, high = median_interval(pooled)
        report[name] = {"median": median, "low": low, "high": high, "pairs": pooled,
                        **(details or {}).get(name, {})}
    target.write_text(json.dumps(report, indent=1))
