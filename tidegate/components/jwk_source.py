"""Where a JWK set comes from: a URL fetched as krakend-jose's client does, or a local file.

krakend-jose builds one ``http.Client`` per signer/validator: TLS 1.2 at least, the system CAs
plus ``jwk_local_ca``, the ``cipher_suites`` given (Go's numeric ids), certificate checks off
with ``disable_jwk_security``, and with ``jwk_fingerprints`` the SHA-256 of a certificate's
public key (SubjectPublicKeyInfo) must be one of them. A fetch here is one bounded
``GET`` with ``Connection: close``; the body is parsed by httptools (chunked or not).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tidegate import KRAKEND_COMPAT_VERSION

__all__ = ["GO_CIPHER_SUITES", "JWKFetchError", "JWKSource", "decode_fingerprints"]

USER_AGENT = f"KrakenD Version {KRAKEND_COMPAT_VERSION}"
FETCH_TIMEOUT = 10.0
MAX_JWK_SET = 1 << 20

# Go's crypto/tls ids of the TLS 1.2 suites OpenSSL can be asked for by name. TLS 1.3 suites
# (4865-4867) are always enabled, as in Go, where cipher_suites does not restrict them either.
GO_CIPHER_SUITES: dict[int, str] = {
    0x002F: "AES128-SHA", 0x0035: "AES256-SHA", 0x009C: "AES128-GCM-SHA256",
    0x009D: "AES256-GCM-SHA384", 0xC009: "ECDHE-ECDSA-AES128-SHA",
    0xC00A: "ECDHE-ECDSA-AES256-SHA", 0xC013: "ECDHE-RSA-AES128-SHA",
    0xC014: "ECDHE-RSA-AES256-SHA", 0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384", 0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0x1301: "", 0x1302: "", 0x1303: "",
}


class JWKFetchError(Exception):
    """The JWK set could not be obtained (network, TLS, status, pin, JSON)."""


def decode_fingerprints(values: list[str]) -> tuple[bytes, ...]:
    """``jwk_fingerprints`` as Go decodes them (base64.URLEncoding, padded); ValueError with
    the index of the bad one."""
    out = []
    for i, text in enumerate(values):
        try:
            out.append(base64.b64decode(text.encode(), altchars=b"-_", validate=True))
        except ValueError as exc:
            raise ValueError(f"decoding fingerprint #{i}: {exc}") from None
    return tuple(out)


@dataclass(frozen=True)
class JWKSource:
    """A JWK set's origin and how to reach it (a frozen part of a component's config)."""

    url: str = ""
    local_path: str = ""
    insecure: bool = False
    local_ca: str = ""
    fingerprints: tuple[bytes, ...] = ()
    cipher_suites: tuple[int, ...] = ()

    async def load(self) -> Any:
        """The JWK set's JSON value: the local file when one is named, else the URL's body."""
        if self.local_path:
            try:
                raw = await asyncio.to_thread(Path(self.local_path).read_bytes)
            except OSError as exc:
                raise JWKFetchError(f"reading {self.local_path}: {exc.strerror}") from None
        else:
            raw = await asyncio.wait_for(self._fetch(), FETCH_TIMEOUT)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise JWKFetchError(f"the JWK set is not JSON: {exc}") from None

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS settings krakend-jose's transport uses."""
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.local_ca:
            try:
                ctx.load_verify_locations(cafile=self.local_ca)
            except (OSError, ssl.SSLError) as exc:
                raise JWKFetchError(f"failed to append {self.local_ca!r} to RootCAs: "
                                    f"{exc}") from None
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        names = [GO_CIPHER_SUITES[c] for c in self.cipher_suites if GO_CIPHER_SUITES.get(c)]
        if names:
            ctx.set_ciphers(":".join(names))
        return ctx

    async def _fetch(self) -> bytes:
        parts = urlsplit(self.url)
        secure = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self.tls_context() if secure else None,
                server_hostname=host if secure else None)
        except (OSError, ssl.SSLError) as exc:
            raise JWKFetchError(f'Get "{self.url}": {exc}') from None
        try:
            if secure and self.fingerprints:
                self._check_pin(writer)
            host_header = parts.netloc.rsplit("@", 1)[-1]
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n"
                         f"User-Agent: {USER_AGENT}\r\nAccept-Encoding: identity\r\n"
                         "Connection: close\r\n\r\n".encode())
            return await _read_response(reader, self.url)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _check_pin(self, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        if not der:
            raise JWKFetchError("JWK client did not find a pinned key")
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if hashlib.sha256(spki).digest() not in self.fingerprints:
            raise JWKFetchError("JWK client did not find a pinned key")


class _Collector:
    """httptools callbacks: the status and the body, bounded."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > MAX_JWK_SET:
            raise JWKFetchError(f"the JWK set is larger than {MAX_JWK_SET} bytes")

    def on_message_complete(self) -> None:
        self.done = True


async def _read_response(reader: asyncio.StreamReader, url: str) -> bytes:
    sink = _Collector()
    parser = httptools.HttpResponseParser(sink)
    try:
        while not sink.done:
            data = await reader.read(65536)
            if not data:
                break
            parser.feed_data(data)
    except httptools.HttpParserError as exc:
        raise JWKFetchError(f'Get "{url}": malformed HTTP response: {exc}') from None
    except httptools.HttpParserCallbackError as exc:
        raise JWKFetchError(str(exc.__context__ or exc)) from None
    # Not complete at the end of the connection: a body delimited by it (or cut short, which
    # the JSON decoding then reports).
    status = parser.get_status_code()
    if not 200 <= status < 300:
        raise JWKFetchError(f'Get "{url}": status {status}')
    return bytes(sink.body)
