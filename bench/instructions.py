"""Instructions a worker executes per proxied request, counted by valgrind: A/B on a busy machine.

    python bench/instructions.py [--other ../tidegate-main] [--requests 2000] [--stack ...]
                                 [--header 'Origin: https://app.example.com']
                                 [--trace-rate R]

Throughput and even CPU time move with whatever else the machine runs; the number of
instructions a request costs does not. The worker runs under callgrind (about 50 times slower,
so this measures cost, never speed): after a warm-up its counters are zeroed, `--requests`
requests go through 8 keep-alive connections, and the instructions counted meanwhile are divided
by the request count. With `--other`, the other checkout is measured the same way and the two
are compared. The config is bench/proxy_vs_nginx.py's (`--backends`, `--stack` as there).
Needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import free_port, nginx, stop
from proxy_vs_nginx import add_stack, gateway_config

HERE = Path(__file__).resolve().parents[1]

# Runs the supervisor of `checkout` with its worker command prefixed by callgrind.
DRIVER = """
import sys
from tidegate.server import workers
plain = workers.worker_command
workers.READY_TIMEOUT = 300.0
out = sys.argv.pop(1)
def under_callgrind(*args):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
            "--dump-instr=no", "--compress-strings=no", *plain(*args)]
workers.worker_command = under_callgrind
from tidegate.cli import main
sys.exit(main(sys.argv[1:]))
"""


def wait_answer(port: int, path: str, headers: dict[str, str], timeout: float) -> None:
    """Until the gateway answers `path` with 200 (the worker starts slowly under valgrind)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if send(port, path, headers, 1) == 1:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"no 200 from 127.0.0.1:{port}{path} within {timeout:.0f} s")


def send(port: int, path: str, headers: dict[str, str], count: int, connections: int = 8,
         *, method: str = "GET", body: str = "") -> int:
    """`count` requests over `connections` keep-alive connections, round robin; the 200s.
    The Host carries the port, as wrk's does (security/http's allowed hosts match it)."""
    data = body.encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items())
    if data:
        head += f"Content-Length: {len(data)}\r\n"
    message = (head + "\r\n").encode() + data
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60)
             for _ in range(min(connections, count))]
    ok = 0
    try:
        for i in range(count):
            s = socks[i % len(socks)]
            s.sendall(message)
            ok += read_answer(s)
    finally:
        for s in socks:
            s.close()
    return ok


def read_answer(s: socket.socket) -> int:
    """Read one answer with a Content-Length body; 1 if its status is 200."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += s.recv(65536)
    return 1 if head.startswith(b"HTTP/1.1 200") else 0


def measure(checkout: Path, upstream: int, args: argparse.Namespace) -> float:
    """Instructions per request of `checkout`'s worker."""
    folder = Path(tempfile.mkdtemp(prefix="tidegate-instr-"))
    cfg = gateway_config(upstream, args.backends)
    headers, key_server = add_stack(cfg, [s for s in args.stack.split(",") if s])
    for line in args.header:  # the same request without the stack's components
        name, _, value = line.partition(":")
        headers.setdefault(name.strip(), value.strip())
    if args.trace_rate is not None:  # the traces' sampling, instead of the stack's 0.1
        cfg["extra_config"]["telemetry/opentelemetry"]["trace_sample_rate"] = args.trace_rate
    (folder / "krakend.json").write_text(json.dumps(cfg))
    out = folder / "callgrind.out"
    port = free_port()
    log = open(folder / "gateway.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(out), "run", "-c", str(folder / "krakend.json"),
         "-p", str(port), "--workers", "1"], cwd=checkout, stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PYTHONPATH": str(checkout),
             "TIDEGATE_LOG_LEVEL": "WARNING", "HOME": str(folder), "PYTHONHASHSEED": "0"})
    try:
        wait_answer(port, "/bench", headers, 300)
        send(port, "/bench", headers, args.warmup)
        if "traces" in args.stack:
            # The first export opens the collector connection, whose name resolution loads
            # the resolver's modules (millions of instructions, once): before counting.
            time.sleep(2.0)
        subprocess.run(["callgrind_control", "--zero", str(proc_worker(proc.pid))],
                       check=True, capture_output=True, timeout=60)
        ok = send(port, "/bench", headers, args.requests)
        subprocess.run(["callgrind_control", "--dump", str(proc_worker(proc.pid))],
                       check=True, capture_output=True, timeout=60)
        if ok != args.requests:
            raise RuntimeError(f"{args.requests - ok} requests were not answered 200")
        if args.keep is not None:
            for dump in folder.glob("callgrind.out.*"):
                shutil.copy(dump, args.keep / f"{checkout.name}.{dump.name}")
        return total_instructions(folder) / args.requests
    finally:
        stop(proc, signal.SIGTERM, 60)
        log.close()
        if key_server is not None:
            key_server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def proc_worker(supervisor: int) -> int:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0])


def total_instructions(folder: Path) -> int:
    """Ir of the dump made by `callgrind_control --dump` (the file with a ``.1`` part)."""
    dumps = sorted(p for p in folder.glob("callgrind.out*") if p.name != "callgrind.out")
    for path in dumps:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no callgrind dump in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", type=Path, help="checkout A (the base) to compare with")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--backends", type=int, default=1)
    parser.add_argument("--stack", default="")
    parser.add_argument("--header", action="append", default=[], metavar="NAME: VALUE",
                        help="a request header more (e.g. the Origin `--stack cors` sends, "
                        "to measure the request without the component)")
    parser.add_argument("--trace-rate", type=float, help="trace_sample_rate of `--stack "
                        "...,traces` (default 0.1; 1.0 and 1e-9 give a sampled and an "
                        "unsampled request's cost)")
    parser.add_argument("--keep", type=Path, help="copy the callgrind dumps here "
                        "(read them with callgrind_annotate)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    upstream = free_port()
    with nginx(upstream):
        results = {}
        if args.other is not None:
            results["A"] = (args.other, measure(args.other.resolve(), upstream, args))
        results["B"] = (HERE, measure(HERE, upstream, args))
    for name, (where, per) in results.items():
        print(f"{name} {where}: {per:,.0f} instructions/request")
    if "A" in results:
        a, b = results["A"][1], results["B"][1]
        print(f"B vs A: {100 * (b - a) / a:+.1f} % instructions per request")


if __name__ == "__main__":
    main()
