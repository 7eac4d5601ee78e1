"""Download a JWK set: one bounded HTTP/1.1 GET, with krakend-jose's TLS options.

Why not the backends' `UpstreamClient`: that client belongs to one generation while a key set
outlives generations, and a key server needs its own TLS rules (a local CA added to the system
ones, certificate-key pinning with ``jwk_fingerprints``, verification off with
``disable_jwk_security``, TLS ≥ 1.2 with the configured suites). Everything is bounded: the
whole exchange has a deadline, the answer's head and body have a size limit, redirects are
followed a few times (Go's client follows them) and never from https down to http.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httptools
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tidegate import KRAKEND_COMPAT_VERSION
from tidegate.components.jwt.config import CIPHER_SUITES

FETCH_TIMEOUT = 10.0  # seconds for the whole exchange, redirects included
MAX_BODY = 1 << 20  # a JWK set is a few KiB; 1 MiB is generous
MAX_HEAD = 64 << 10
MAX_REDIRECTS = 5
USER_AGENT = f"KrakenD Version {KRAKEND_COMPAT_VERSION}"


class FetchError(Exception):
    """The key server could not be reached or did not answer a usable document."""


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """krakend-jose's transport settings for the key server."""

    local_ca: str = ""
    insecure: bool = False
    fingerprints: tuple[bytes, ...] = ()
    cipher_suites: tuple[int, ...] = ()

    def context(self) -> ssl.SSLContext:
        """The client context: system CAs plus ``local_ca``, TLS ≥ 1.2 (reads the CA file)."""
        ctx = ssl.create_default_context()
        if self.local_ca:
            ctx.load_verify_locations(cafile=self.local_ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        names = [CIPHER_SUITES[s] for s in self.cipher_suites if CIPHER_SUITES.get(s)]
        if names:
            ctx.set_ciphers(":".join(names))
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass(slots=True)
class Answer:
    """A key server's answer: status, headers (names lower-cased) and the body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False


class _Reader:
    """httptools callbacks filling an `Answer`, refusing oversized heads and bodies."""

    def __init__(self) -> None:
        self.answer = Answer(0)
        self.head = 0
        self._name = ""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head += len(name) + len(value)
        if self.head > MAX_HEAD:
            raise FetchError("the answer's head is too large")
        self.answer.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        if len(self.answer.body) + len(body) > MAX_BODY:
            raise FetchError(f"the answer is larger than {MAX_BODY} bytes")
        self.answer.body += body

    def on_message_complete(self) -> None:
        self.answer.done = True


def spki_sha256(der_cert: bytes) -> bytes:
    """SHA-256 of a certificate's SubjectPublicKeyInfo (what ``jwk_fingerprints`` pins)."""
    cert = x509.load_der_x509_certificate(der_cert)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def _peer_chain(sslobj: ssl.SSLObject) -> list[bytes]:
    chain_of = getattr(sslobj, "get_unverified_chain", None)  # Python ≥ 3.13
    if chain_of is not None:
        chain = chain_of()
        if chain:
            return [c if isinstance(c, bytes) else c.public_bytes() for c in chain]
    leaf = sslobj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


async def _get_once(url: str, tls: TLSOptions, ctx: ssl.SSLContext | None) -> Answer:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"unsupported URL {url!r}")
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    reader, writer = await asyncio.open_connection(
        parts.hostname, port, ssl=ctx if https else None,
        server_hostname=parts.hostname if https else None, limit=MAX_HEAD)
    try:
        if https and tls.fingerprints:
            sslobj = writer.get_extra_info("ssl_object")
            pins = {spki_sha256(der) for der in _peer_chain(sslobj)} if sslobj else set()
            if not pins & set(tls.fingerprints):
                raise FetchError("JWK client did not find a pinned key")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc.rsplit('@', 1)[-1]}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: application/json, application/jwk-set+json"
            "\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n".encode("latin-1"))
        sink = _Reader()
        parser = httptools.HttpResponseParser(sink)
        while not sink.answer.done:
            data = await reader.read(65536)
            if not data:
                break
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, FetchError):
                    raise exc.__context__ from None
                raise FetchError(f"malformed answer: {exc}") from None
        if not sink.answer.done:
            framed = {"content-length", "transfer-encoding"} & sink.answer.headers.keys()
            if parser.get_status_code() and not framed:
                # A close-delimited body: the end of the connection ends it.
                sink.answer.done = True
            else:
                raise FetchError("the connection closed before the answer was complete")
        sink.answer.status = parser.get_status_code()
        return sink.answer
    finally:
        writer.close()
        with contextlib.suppress(Exception):  # the socket is really closed before we return
            await asyncio.wait_for(writer.wait_closed(), 1)


async def get(url: str, tls: TLSOptions, ctx: ssl.SSLContext | None,
              timeout: float = FETCH_TIMEOUT) -> Answer:
    """GET ``url`` following redirects; raises FetchError (timeouts and network errors too)."""
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_REDIRECTS + 1):
                answer = await _get_once(url, tls, ctx)
                location = answer.headers.get("location")
                if answer.status not in (301, 302, 303, 307, 308) or not location:
                    return answer
                nxt = urljoin(url, location)
                if url.startswith("https://") and not nxt.startswith("https://"):
                    raise FetchError(f"refusing a redirect from https to {nxt!r}")
                url = nxt
            raise FetchError(f"stopped after {MAX_REDIRECTS} redirects")
    except TimeoutError:
        raise FetchError(f"no answer within {timeout:g}s") from None
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(str(exc) or type(exc).__name__) from None
