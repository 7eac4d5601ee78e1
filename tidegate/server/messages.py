"""The request and response values that flow between the protocol and the pipeline."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Request:
    """One parsed client request. Header names are kept lower-cased for lookups."""

    __slots__ = ("body", "client_ip", "headers", "host", "method", "path", "query", "raw_target",
                 "version")

    def __init__(self, method: str, raw_target: str, path: str, query: str,
                 headers: list[tuple[str, str]], body: bytes, client_ip: str,
                 version: str) -> None:
        self.method = method
        self.raw_target = raw_target
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_ip = client_ip
        self.version = version
        self.host = self.header("host") or ""

    def header(self, lname: str) -> str | None:
        """First value of a header (name given lower-case)."""
        for k, v in self.headers:
            if k == lname:
                return v
        return None

    def header_values(self, lname: str) -> list[str]:
        """Every value of a header (name given lower-case)."""
        return [v for k, v in self.headers if k == lname]


class Response:
    """What the pipeline answers: status, headers in order, body bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"") -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body

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
    """The bytes of a response on the wire, with Date and Content-Length as Go's server adds."""
    status = resp.status
    reason = _REASONS.get(status, "")
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())]
    for name, value in resp.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    parts.append(b"Date: " + DATE.get() + b"\r\n")
    body = resp.body
    if status >= 200 and status not in (204, 304):
        parts.append(b"Content-Length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif http10:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    if not head and body and status not in (204, 304):
        parts.append(body)
    return b"".join(parts)
