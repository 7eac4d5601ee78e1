"""The request and response values that flow between the protocol and the pipeline."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tidegate.bodies import BodyStream

_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Request:
    """One parsed client request. Header names are kept lower-cased for lookups."""

    __slots__ = ("body", "client_ip", "headers", "host", "method", "path", "query", "raw_target",
                 "stream", "version")

    def __init__(self, method: str, raw_target: str, path: str, query: str,
                 headers: list[tuple[str, str]], body: bytes, client_ip: str,
                 version: str, stream: BodyStream | None = None) -> None:
        self.method = method
        self.raw_target = raw_target
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_ip = client_ip
        self.version = version
        self.host = self.header("host") or ""
        # A body too large to arrive with its head flows here instead (``body`` stays b"").
        self.stream = stream

    def header(self, lname: str) -> str | None:
        """First value of a header (name given lower-case)."""
        for k, v in self.headers:
            if k == lname:
                return v
        return None

    def header_values(self, lname: str) -> list[str]:
        """Every value of a header (name given lower-case)."""
        return [v for k, v in self.headers if k == lname]


class ChunkSource(Protocol):
    """A body read in pieces (`tidegate.bodies.BodyStream` or a decoding view of one)."""

    length: int | None

    async def read(self) -> bytes: ...

    def abandon(self) -> None: ...


class Response:
    """What the pipeline answers: status, headers in order, and the body as bytes or, for an
    answer passed through as it arrives, as a `ChunkSource` the server copies out."""

    __slots__ = ("body", "headers", "status", "stream")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"", stream: ChunkSource | None = None) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.stream = stream

    @classmethod
    def text(cls, status: int, body: str, content_type: str = "text/plain") -> Response:
        """A plain-text answer such as gin's ``404 page not found``."""
        return cls(status, [("Content-Type", content_type)], body.encode())


class _DateCache:
    """The ``Date`` header changes once a second; format it once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


DATE = _DateCache()


def serialize(resp: Response, keep_alive: bool, http10: bool, head: bool) -> bytes:
    """The bytes of a response on the wire, with Date and Content-Length as Go's server adds.

    For a streamed response, only the head: Content-Length when the length is known, else
    chunked (HTTP/1.0: the caller closes the connection after the body)."""
    status = resp.status
    reason = _REASONS.get(status, "")
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())]
    for name, value in resp.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    parts.append(b"Date: " + DATE.get() + b"\r\n")
    body = resp.body
    if status >= 200 and status not in (204, 304):
        stream = resp.stream
        if stream is None:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        elif stream.length is not None:
            parts.append(b"Content-Length: %d\r\n" % stream.length)
        elif not http10:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        # else: HTTP/1.0 without a length, the body ends with the connection
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif http10:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    if not head and body and status not in (204, 304):
        parts.append(body)
    return b"".join(parts)


def split_target(target: str) -> tuple[str, str, str | None] | None:
    """(path, query, authority of an absolute-form target) of a request target, or None.

    Done by hand rather than by the URL parser of httptools, which refuses targets over
    64 KiB while Go serves them up to the head limit (1 MiB).
    """
    authority: str | None = None
    if not target.startswith("/"):
        if target == "*":
            return "*", "", None
        scheme, sep, rest = target.partition("://")
        if not sep or not scheme.isalpha():
            return None
        authority, slash, rest = rest.partition("/")
        if not authority:
            return None
        target = slash + rest if slash else "/"
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0]
    return path or "/", query, authority
