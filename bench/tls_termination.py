"""TLS termination (keep-alive) vs plain HTTP, same endpoint, same upstream, same run
(target: at least 0.70x).

    python bench/tls_termination.py [--pin] [--rounds 3] [--seconds 8]

Alternates a plain and a TLS gateway (one worker; `--pin` puts it alone on core 0, nginx and
wrk on core 1) and compares the medians. wrk keeps its connections alive, so this is the cost
of encrypting and decrypting each request, not of handshakes. The certificate is made here
(ECDSA P-256, as cert-manager's default) and served with KrakenD's TLS defaults (TLS 1.3).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
from pathlib import Path

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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true",
                        help="gateway on core 0, nginx and wrk on core 1")
    parser.add_argument("--report", help="JSON file to add the rounds' tls/plain ratios to")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tidegate-bench-tls-"))
    cert, key = self_signed(folder)
    upstream = free_port()
    plain = {"version": 3, "endpoints": [{"endpoint": "/bench", "backend": [
        {"host": [f"http://127.0.0.1:{upstream}"], "url_pattern": "/data"}]}]}
    tls = {**plain, "tls": {"keys": [{"public_key": str(cert), "private_key": str(key)}]}}
    results: dict[str, list[dict[str, float]]] = {"plain": [], "tls": []}  # wrk + cpu_us
    gw_cpus, other = ("0", "1") if args.pin else (None, None)
    with nginx(upstream, cpus=other):
        for round_no in range(args.rounds):
            sides = (("plain", plain, "http"), ("tls", tls, "https"))
            for label, cfg, scheme in sides if round_no % 2 == 0 else sides[::-1]:
                port = free_port()
                with tidegate(cfg, port, cpus=gw_cpus) as proc:
                    url = f"{scheme}://127.0.0.1:{port}/bench"
                    wrk(url, seconds=2, connections=args.connections, cpus=other)
                    worker = children(proc.pid)[0]
                    before = cpu_seconds(worker)
                    run = wrk(url, seconds=args.seconds, connections=args.connections,
                              cpus=other)
                    run["cpu_us"] = (cpu_seconds(worker) - before) / run["requests"] * 1e6
                    if run["errors"]:
                        raise SystemExit(f"{label}: {run['errors']} errors\n{run['raw']}")
                    results[label].append(run)
    median = {label: {k: statistics.median(r[k] for r in runs)
                      for k in ("rps", "p99_ms", "cpu_us")} for label, runs in results.items()}
    for label, runs in results.items():
        m = median[label]
        print(f"{label:5}: {m['rps']:8.0f} req/s (median of {[round(r['rps']) for r in runs]}), "
              f"p99 {m['p99_ms']:.2f} ms, worker CPU {m['cpu_us']:.1f} us/request "
              f"({[round(r['cpu_us'], 1) for r in runs]})")
    print(f"TLS / plain, req/s: {median['tls']['rps'] / median['plain']['rps']:.3f}x; "
          f"by worker CPU per request (steadier on a shared machine): "
          f"{median['plain']['cpu_us'] / median['tls']['cpu_us']:.3f}x")
    ratios = [t["rps"] / p["rps"] for p, t in zip(results["plain"], results["tls"], strict=True)]
    mid, low, high = median_interval(ratios)
    print(f"paired rounds: tls / plain {mid:.3f} [95 % {low:.3f}-{high:.3f}]")
    write_report(args.report, {"tls": ratios})


if __name__ == "__main__":
    main()
