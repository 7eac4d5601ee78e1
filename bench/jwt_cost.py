"""What ``auth/validator`` costs on the proxied request: the same endpoint with and without it.

    python bench/jwt_cost.py [--pin] [--rounds 6] [--seconds 6]

One gateway (one worker; ``--pin`` puts it alone on core 0, nginx, the key server and wrk on
core 1) serves ``/plain`` and ``/jwt``, both proxied to the same nginx upstream; ``/jwt``
validates an RS256 token (2048-bit key) against a JWK set fetched once from a local key
server (``cache: true``). Rounds alternate plain/jwt so the machine's drift hits both; the
medians of req/s and of the worker's CPU time per request are compared. ``--fresh N`` sends
N distinct tokens in turn (N above the validator's memory of verified tokens), so every request
pays the RSA verification: the cost of a token seen for the first time. Issue target: jwt ≥
0.80 times plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from joserfc import jws
from joserfc.jwk import RSAKey

ISSUER, AUDIENCE = "https://issuer.bench", "https://api.bench"


def key_server(jwks: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        fetches = 0

        def do_GET(self) -> None:
            Handler.fetches += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def claims() -> dict[str, Any]:
    """What every bench token says (valid for two hours)."""
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "roles": ["user"],
            "exp": int(time.time()) + 7200}


def signed_setup() -> tuple[RSAKey, ThreadingHTTPServer, str, dict[str, Any]]:
    """An RS256 key (2048 bits), a local key server publishing it, a valid token signed with
    it, and the `auth/validator` section that accepts the token (JWK set cached)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "bench", "use": "sig"})
    server = key_server(json.dumps({"keys": [key.as_dict(private=False)]}).encode())
    token = jws.serialize_compact({"alg": "RS256", "kid": "bench", "typ": "JWT"},
                                  json.dumps(claims()).encode(), key, algorithms=["RS256"])
    validator = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{server.server_port}/jwks",
                 "disable_jwk_security": True, "cache": True, "issuer": ISSUER,
                 "audience": [AUDIENCE], "roles": ["user"]}
    return key, server, token, validator


def fetches(server: ThreadingHTTPServer) -> int:
    return int(getattr(server.RequestHandlerClass, "fetches", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="gateway on core 0, rest on core 1")
    parser.add_argument("--fresh", type=int, default=0, metavar="N",
                        help="cycle through N distinct tokens (e.g. 5000: never remembered)")
    parser.add_argument("--report", help="JSON file to add the rounds' jwt/plain ratios to")
    args = parser.parse_args()
    gw_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    key, server, token, validator = signed_setup()
    upstream, port = free_port(), free_port()
    host = [f"http://127.0.0.1:{upstream}"]
    cfg = {"version": 3, "timeout": "3s", "endpoints": [
        {"endpoint": "/plain", "backend": [{"host": host, "url_pattern": "/data"}]},
        {"endpoint": "/jwt", "backend": [{"host": host, "url_pattern": "/data"}],
         "extra_config": {"auth/validator": validator}}]}
    auth = {"Authorization": f"Bearer {token}"}
    script = None
    if args.fresh:
        tokens = [jws.serialize_compact({"alg": "RS256", "kid": "bench"},
                                        json.dumps({**claims(), "jti": str(i)}).encode(), key,
                                        algorithms=["RS256"]) for i in range(args.fresh)]
        script = Path(tempfile.mkdtemp(prefix="tidegate-jwt-")) / "tokens.lua"
        script.write_text("local tokens = {" + ",".join(f'"{t}"' for t in tokens) + "}\n"
                          "local i = 0\n"
                          "request = function()\n  i = i % #tokens + 1\n"
                          "  return wrk.format(nil, nil, "
                          "{Authorization = \"Bearer \" .. tokens[i]})\nend\n")
    rps: dict[str, list[float]] = {"plain": [], "jwt": []}
    cpu: dict[str, list[float]] = {"plain": [], "jwt": []}
    with nginx(upstream, cpus=other_cpus), tidegate(cfg, port, cpus=gw_cpus) as proc:
        worker = children(proc.pid)[0]
        base = f"http://127.0.0.1:{port}"
        for side in ("plain", "jwt"):  # warm-up, and the JWT one must really pass
            r = wrk(f"{base}/{side}", seconds=2, cpus=other_cpus, headers=auth)
            if r["errors"]:
                raise SystemExit(f"/{side} answers errors: {r['raw']}")
        for i in range(args.rounds):
            for side in ("plain", "jwt") if i % 2 == 0 else ("jwt", "plain"):
                before = cpu_seconds(worker)
                r = wrk(f"{base}/{side}", seconds=args.seconds, connections=args.connections,
                        cpus=other_cpus, headers=auth, script=script if side == "jwt" else None)
                per_request = (cpu_seconds(worker) - before) / r["requests"] * 1e6
                rps[side].append(r["rps"])
                cpu[side].append(per_request)
                print(f"round {i + 1} {side:5}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms,"
                      f" worker CPU {per_request:.1f} µs/request, errors {r['errors']:.0f}",
                      flush=True)
    plain, jwt = statistics.median(rps["plain"]), statistics.median(rps["jwt"])
    cp, cj = statistics.median(cpu["plain"]), statistics.median(cpu["jwt"])
    print(f"plain: median {plain:.0f} req/s, {cp:.1f} µs CPU/request")
    print(f"jwt:   median {jwt:.0f} req/s, {cj:.1f} µs CPU/request")
    print(f"jwt / plain: throughput {jwt / plain:.3f}x, CPU per request +{cj - cp:.1f} µs "
          f"({cp / cj:.3f}x); key set downloads: {fetches(server)}")
    ratios = [j / p for p, j in zip(rps["plain"], rps["jwt"], strict=True)]
    median, low, high = median_interval(ratios)
    print(f"paired rounds: jwt / plain {median:.3f} [95 % {low:.3f}-{high:.3f}]")
    write_report(args.report, {"jwt": ratios})


if __name__ == "__main__":
    main()
