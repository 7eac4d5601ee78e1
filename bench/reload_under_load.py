"""Hot reload under load: 0 failed requests while the config is rewritten every 100 ms.

    python bench/reload_under_load.py [--seconds 20] [--interval 0.1] [--workers 1]
                                      [--broken-every 0] [--kill-every 0]

wrk (-c64; wrk never retries) hammers a route present in every version of the config, first
for `--seconds` with the watcher on and no writes (baseline), then for `--seconds` while a writer
rewrites the config atomically (temp file + rename) every `--interval` with a real change: a
route added and an old one removed, and `cache_ttl` alternating. For each write, a probe on its
own keep-alive connection measures the delay until the new route answers. With
`--broken-every N`, every Nth write is a broken file: it must change nothing that serves, show on
`/__health`, and the next good write must recover. With `--kill-every S`, one worker (in turn)
is killed with SIGKILL every S seconds during the storm: only the requests that worker held may
fail (at most one per connection it had), it comes back on the current generation, and the
reload storm goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import children, cpu_seconds, free_port, nginx, tidegate, wrk

KEEP = 5  # each config keeps the last KEEP marker routes: every write adds one and drops one


def config(upstream: int, version: int) -> dict:
    host = [f"http://127.0.0.1:{upstream}"]
    endpoints = [{"endpoint": "/bench", "backend": [{"host": host, "url_pattern": "/data"}]}]
    for v in range(max(0, version - KEEP + 1), version + 1):
        endpoints.append({"endpoint": f"/v{v}", "backend": [{"host": host,
                                                            "url_pattern": "/data"}]})
    return {"version": 3, "timeout": "3s", "cache_ttl": f"{version % 2 * 60}s",
            "endpoints": endpoints}


def atomic_write(path: Path, text: str) -> float:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return time.monotonic()


def probe(port: int, path: str, since: float, limit: float) -> float | None:
    """Seconds from `since` until GET `path` answers 200 (None if not within `limit`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        while time.monotonic() - since < limit:
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):  # its worker was killed: reconnect
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                continue
            if resp.status == 200:
                return time.monotonic() - since
            time.sleep(0.02)  # light polling (20 ms resolution): the probe must not steal CPU
    finally:
        conn.close()
    return None


def workers_cpu(pid: int) -> float:
    """CPU seconds of the workers alive now (a killed worker's time is lost with it)."""
    total = 0.0
    for w in children(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(w)
    return total


def killer(pid: int, every: float, stop: threading.Event, kills: list[int]) -> None:
    """SIGKILL one worker every `every` seconds, in turn, until `stop`."""
    while not stop.wait(every):
        workers = children(pid)
        if workers:
            victim = workers[len(kills) % len(workers)]
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass


def health(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/__health")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=22)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--broken-every", type=int, default=0)
    parser.add_argument("--kill-every", type=float, default=0.0,
                        help="SIGKILL a worker every S seconds during the storm (0: never)")
    parser.add_argument("--writes", type=int, default=210, help="config writes (at most)")
    parser.add_argument("--pin", action="store_true",
                        help="gateway (supervisor and workers) on core 0, the rest on core 1")
    parser.add_argument("--pairs", type=int, default=8,
                        help="interleaved quiet/storm window pairs for the throughput ratio")
    parser.add_argument("--window", type=int, default=3, help="seconds per interleaved window")
    args = parser.parse_args()
    upstream, port = free_port(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="tidegate-reload-bench-"))
    path = folder / "krakend.json"
    delays: list[float] = []
    missed: list[int] = []
    broken_seen: list[bool] = []
    writes = 0
    gw_cpus, other = ("0", "1") if args.pin else (None, None)
    if args.pin:
        os.sched_setaffinity(0, {1})  # the writer and the probes stay off the gateway's core
    with nginx(upstream, cpus=other), tidegate(
            config(upstream, 0), port, workers=args.workers, watch=True, config_path=path,
            log=folder / "gateway.log", cpus=gw_cpus) as gateway:
        url = f"http://127.0.0.1:{port}/bench"
        wrk(url, seconds=2, cpus=other)
        cpu0 = cpu_seconds(gateway.pid), workers_cpu(gateway.pid)
        baseline = wrk(url, seconds=args.seconds, connections=args.connections, cpus=other)
        cpu1 = cpu_seconds(gateway.pid), workers_cpu(gateway.pid)
        kills: list[int] = []

        stop = threading.Event()
        probes: list[threading.Thread] = []

        def writer() -> None:
            nonlocal writes
            version = 0
            start = time.monotonic()
            while not stop.is_set() and (time.monotonic() - start < args.seconds
                                         and writes < args.writes):
                version += 1
                writes += 1
                if args.broken_every and version % args.broken_every == 0:
                    atomic_write(path, '{"version": 3, "endpoints": [ {"endpoint": "/x",}')
                    time.sleep(args.interval)
                    broken_seen.append(health(port)["last_reload_error"] is not None)
                    continue
                t0 = atomic_write(path, json.dumps(config(upstream, version)))

                def run_probe(v: int = version, t: float = t0) -> None:
                    d = probe(port, f"/v{v}", t, args.interval * KEEP)
                    if d is None:
                        missed.append(v)
                    else:
                        delays.append(d)

                th = threading.Thread(target=run_probe)
                th.start()
                probes.append(th)
                time.sleep(max(0.0, t0 + args.interval - time.monotonic()))

        w = threading.Thread(target=writer)
        w.start()
        k = None
        if args.kill_every:
            k = threading.Thread(target=killer, args=(gateway.pid, args.kill_every, stop, kills))
            k.start()
        storm = wrk(url, seconds=args.seconds, connections=args.connections, cpus=other)
        cpu2 = cpu_seconds(gateway.pid), workers_cpu(gateway.pid)
        stop.set()
        w.join()
        if k is not None:
            k.join()
        alive = children(gateway.pid)
        for th in probes:
            th.join()
        final = health(port)
        # Throughput ratio again, in short interleaved windows (quiet, storm, storm, quiet,
        # ...) so that the machine's drift over a minute weighs on both sides equally.
        quiet_total = storm_total = 0
        next_version = [10_000]

        def silent_writer(until: float) -> None:
            while time.monotonic() < until:
                next_version[0] += 1
                t0 = atomic_write(path, json.dumps(config(upstream, next_version[0])))
                time.sleep(max(0.0, t0 + args.interval - time.monotonic()))

        for i in range(args.pairs):
            for storming in ((False, True) if i % 2 == 0 else (True, False)):
                th = None
                if storming:
                    th = threading.Thread(target=silent_writer,
                                          args=(time.monotonic() + args.window,))
                    th.start()
                r = wrk(url, seconds=args.window, connections=args.connections, cpus=other)
                if th is not None:
                    th.join()
                    storm_total += r["requests"]
                else:
                    quiet_total += r["requests"]
    log_text = (folder / "gateway.log").read_text()
    delays.sort()
    p50 = statistics.median(delays) if delays else float("nan")
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else float("nan")
    print(f"baseline (watch on, no writes): {baseline['rps']:.0f} req/s, "
          f"errors {baseline['errors']}")
    print(f"reload storm: {storm['rps']:.0f} req/s, errors {storm['errors']}, "
          f"requests {storm['requests']}")
    print(f"throughput during storm / baseline: {storm['rps'] / baseline['rps']:.3f}")
    if args.pairs:
        print(f"interleaved {args.pairs} x ({args.window}s quiet + {args.window}s storm): "
              f"storm / quiet = {storm_total / quiet_total:.3f}")
    for label, (a, b) in (("baseline", (cpu0, cpu1)), ("storm", (cpu1, cpu2))):
        workers_cpu_text = ("n/a (killed workers take theirs along)"
                            if args.kill_every and label == "storm" else f"{b[1] - a[1]:.2f} s")
        print(f"CPU during {label}: supervisor (watcher, builds) {b[0] - a[0]:.2f} s, "
              f"workers {workers_cpu_text}, over {args.seconds} s")
    print(f"config writes: {writes}; good writes probed: {len(delays) + len(missed)}, "
          f"applied: {len(delays)}, not applied in time: {len(missed)}")
    print(f"write -> live delay: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {max(delays) * 1000 if delays else float('nan'):.0f} ms")
    if args.kill_every:
        per_kill = storm["errors"] / max(1, len(kills))
        socket_errors = re.search(r"Socket errors:.*", storm["raw"])
        print(f"workers killed (SIGKILL every {args.kill_every:g} s): {len(kills)}; failed "
              f"requests in the storm: {storm['errors']} ({per_kill:.1f} per kill, "
              f"{args.connections} connections over {args.workers} workers; "
              f"{socket_errors.group(0) if socket_errors else 'no socket errors'}); "
              f"workers alive at the end: {len(alive)}")
    if args.broken_every:
        print(f"broken writes shown on /__health: {sum(broken_seen)}/{len(broken_seen)}")
    print(f"final generation {final['generation']['id']}, "
          f"last_reload_error {final['last_reload_error'] is not None}")
    print(f"gateway log: {log_text.count('ERROR')} error lines, "
          f"{log_text.count('Traceback')} tracebacks")


if __name__ == "__main__":
    main()
