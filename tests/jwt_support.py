"""Test helpers for auth/validator: keys and tokens made here, a real JWKS server that counts
its downloads, and a throw-away CA for the https key server."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import JWSRegistry

ISSUER = "https://issuer.test"
AUDIENCE = "https://api.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def claims(**extra: Any) -> dict[str, Any]:
    """Valid registered claims for ISSUER/AUDIENCE, one hour left; `extra` adds or replaces."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now,
                            "exp": now + 3600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: RSAKey | OctKey | ECKey, payload: dict[str, Any], alg: str = "RS256",
         kid: str | None = None, **header: Any) -> str:
    """A compact JWS signed by joserfc."""
    hdr = {"alg": alg, "kid": kid if kid is not None else key.kid, **header}
    return jws.serialize_compact(hdr, json.dumps(payload).encode(), key, algorithms=[alg])


def sign_raw(key: RSAKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """RS256 over any header (joserfc itself refuses to sign some, e.g. an unknown ``crit``)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(sig)}"


def forge_hmac(secret: bytes, payload: dict[str, Any], alg: str = "HS256",
               kid: str = "k1") -> str:
    """An HMAC token made by hand (any secret, any alg header): the attacker's tool."""
    head = b64(json.dumps({"alg": alg, "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64(sig)}"


def unsigned(payload: dict[str, Any], kid: str = "k1") -> str:
    """``alg: none``."""
    head = b64(json.dumps({"alg": "none", "kid": kid}).encode())
    return f"{head}.{b64(json.dumps(payload).encode())}."


class JwksServer:
    """Serves ``/jwks`` (a key set that tests change) and counts the downloads."""

    def __init__(self, keys: list[dict[str, Any]], cache_control: str | None = None,
                 content_type: str = "application/json") -> None:
        self.keys = keys
        self.cache_control = cache_control
        self.content_type = content_type
        self.fetches = 0
        self.hold: threading.Event | None = None  # set: answers wait until it is set
        self.arrived = threading.Event()
        self._lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with owner._lock:
                    owner.fetches += 1
                owner.arrived.set()
                if owner.hold is not None:
                    owner.hold.wait(10)
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", owner.content_type)
                if owner.cache_control:
                    self.send_header("Cache-Control", owner.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def jwks_server(server: JwksServer, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Run `server` on 127.0.0.1 (https with `tls`); yields the port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler())
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()


def make_ca(directory: Path) -> tuple[Path, ssl.SSLContext, bytes]:
    """A CA file, a server context for 127.0.0.1 signed by it, and the server key's SPKI
    SHA-256 (what ``jwk_fingerprints`` pins)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidegate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return ca_file, ctx, hashlib.sha256(spki).digest()
