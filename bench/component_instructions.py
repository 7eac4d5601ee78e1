"""What a component costs on the proxied request, in instructions: a measure a busy machine does
not move.

    python bench/component_instructions.py [--requests 1000] [--only NAME,...] [--other DIR]
                                           [--keep DIR]

component_cost.py's gateway (`/plain`, `/plain-post` and `/v/<name>` per variant) with its one
worker under callgrind (instructions.py's driver). For `/plain` and then each variant in turn,
the worker's counters are zeroed, `--requests` requests go through 8 keep-alive connections
and the instructions counted meanwhile are divided by the request count. The ratio is the
plain endpoint's instructions over the variant's: what component_cost.py's CPU ratio
estimates, free of the other processes' load. As there, a variant that sends request headers
is also compared with the plain endpoint sent the same headers (``plain+X-Forwarded-Proto``):
``ratio`` is what the component adds, ``vs bare`` includes parsing the longer request. `--other
DIR` measures another checkout the same way first (an A/B of the same variants).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from common import free_port, nginx, stop
from component_cost import VARIANTS, base_name, gateway_config
from instructions import DRIVER, proc_worker, send

HERE = Path(__file__).resolve().parents[1]
# instructions.py's driver; a worker importing cel-python or lupa under callgrind on a busy
# machine takes longer than the 30 s a worker normally has to load a generation.
CALLGRIND_DRIVER = DRIVER.replace(
    "from tidegate.cli import main",
    "from tidegate.reload import coordinator\ncoordinator.ACK_TIMEOUT = 600.0\n"
    "from tidegate.cli import main")


def _request(name: str) -> tuple[str, str, dict[str, str], str]:
    """(method, path, headers, body) of a measured endpoint; a base name (`base_name`) is the
    plain endpoint sent a variant's request."""
    if name == "plain":
        return "GET", "/plain", {}, ""
    if name == "plain-post":
        body = next(v().body for v in VARIANTS.values() if v().body)
        return "POST", "/plain-post", {"Content-Type": "application/json"}, body
    if name.startswith("plain"):
        v = next(VARIANTS[n]() for n in VARIANTS if base_name(VARIANTS[n]()) == name)
        return ("POST" if v.body else "GET"), ("/plain-post" if v.body else "/plain"), \
            v.headers, v.body
    v = VARIANTS[name]()
    return ("POST" if v.body else "GET"), f"/v/{name}", v.headers, v.body


def _dumps(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("callgrind.out.*")),
                  key=lambda p: int(re.sub(r"\D", "", p.name.rsplit(".", 1)[-1]) or 0))


def _last_dump(folder: Path) -> int:
    for line in _dumps(folder)[-1].read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no callgrind dump in {folder}")


def measure(checkout: Path, upstream: int, names: list[str], args: argparse.Namespace
            ) -> dict[str, float]:
    """Instructions per request of each endpoint in `checkout`'s worker."""
    folder = Path(tempfile.mkdtemp(prefix="tidegate-cinstr-"))
    (folder / "krakend.json").write_text(json.dumps(gateway_config(upstream, names)))
    port = free_port()
    log = open(folder / "gateway.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-c", CALLGRIND_DRIVER, str(folder / "callgrind.out"), "run", "-c",
         str(folder / "krakend.json"), "-p", str(port), "--workers", "1"], cwd=checkout,
        stdout=log, stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PYTHONPATH": str(checkout),
             "TIDEGATE_LOG_LEVEL": "WARNING", "HOME": str(folder)})
    bases = list(dict.fromkeys(["plain", *(["plain-post"] if any(VARIANTS[n]().body for n in names)
                                           else []), *(base_name(VARIANTS[n]()) for n in names)]))
    out: dict[str, float] = {}
    try:
        _wait(port)
        worker = str(proc_worker(proc.pid))
        for name in [*bases, *names]:
            method, path, headers, body = _request(name)
            send(port, path, headers, args.warmup, method=method, body=body)
            subprocess.run(["callgrind_control", "--zero", worker], check=True,
                           capture_output=True, timeout=60)
            ok = send(port, path, headers, args.requests, method=method, body=body)
            subprocess.run(["callgrind_control", "--dump", worker], check=True,
                           capture_output=True, timeout=60)
            if ok != args.requests:
                raise RuntimeError(f"{name}: {args.requests - ok} requests were not 200")
            out[name] = _last_dump(folder) / args.requests
            if args.keep is not None:
                keep = args.keep / checkout.name
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(_dumps(folder)[-1], keep / f"callgrind.out.{name}")
        return out
    finally:
        stop(proc, signal.SIGTERM, 60)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait(port: int) -> None:
    import time
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if send(port, "/plain", {}, 1) == 1:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the gateway did not answer within 600 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--other", type=Path, help="another checkout to measure first")
    parser.add_argument("--keep", type=Path, help="copy each endpoint's callgrind dump here "
                        "(DIR/<checkout>/callgrind.out.<name>, for callgrind_annotate)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    upstream = free_port()
    with nginx(upstream):
        runs = {}
        if args.other is not None:
            runs[str(args.other)] = measure(args.other.resolve(), upstream, names, args)
        runs[str(HERE)] = measure(HERE, upstream, names, args)
    for where, res in runs.items():
        print(where)
        for name, per in res.items():
            ratio = ""
            if not name.startswith("plain"):
                v = VARIANTS[name]()
                bare = res["plain-post" if v.body else "plain"]
                ratio = f"  ratio {res[base_name(v)] / per:.3f}"
                if v.headers:
                    ratio += f" (vs bare {bare / per:.3f})"
            print(f"  {name:32s} {per:12,.0f} instructions/request{ratio}")


if __name__ == "__main__":
    main()
