"""The wire around `tidegate.messages`: the bytes of a response head, the parts of a target."""

from __future__ import annotations

from email.utils import formatdate
from http import HTTPStatus
from time import time as _wall_clock
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from tidegate.messages import Response

_REASONS = {s.value: s.phrase for s in HTTPStatus}
# Status lines by code, written once (unknown codes are formatted per response).
_STATUS_LINES: Final = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason.encode())
                 for code, reason in _REASONS.items()}


class _DateCache:
    """The ``Date`` header changes once a second; format it once a second."""

    __slots__ = ("_line", "_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""
        self._line = b""

    def get(self) -> bytes:
        now = int(_wall_clock())
        if now != self._second:
            self._tick(now)
        return self._value

    def line(self) -> bytes:
        """The whole ``Date: ...`` header line."""
        now = int(_wall_clock())
        if now != self._second:
            self._tick(now)
        return self._line

    def _tick(self, now: int) -> None:
        self._second = now
        self._value = formatdate(now, usegmt=True).encode()
        self._line = b"Date: " + self._value + b"\r\n"


# `_wall_clock` is `time.time` imported by name: compiled, `time.time()` is a module attribute
# lookup on every call (~600 instructions), a name imported from the module is not.
DATE: Final = _DateCache()


# The bytes of the header lines a worker sends again and again (the version stamp, the
# component headers of each answer, Content-Type): looked up instead of formatted and encoded
# per response. Bounded in count and line size; forgotten wholesale when full. Keyed and read as
# plain objects: compiled, a `tuple[str, str]` variable is unboxed, and each lookup would build
# a new tuple to hash and compare (most of a line's cost), where the answer's own tuple is
# found by identity.
_LINES: Final[dict[object, bytes]] = {}
_LINES_MAX: Final = 2048
_LINE_MAX: Final = 256


def _line(header: tuple[str, str]) -> bytes:
    name, value = header
    line = f"{name}: {value}\r\n".encode("latin-1", "replace")
    if len(line) <= _LINE_MAX:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[header] = line
    return line


# Content-Length lines by length, as for _LINES (answers of an endpoint often repeat a size).
_LENGTHS: Final[dict[int, bytes]] = {}


def _length_line(length: int) -> bytes:
    line = _LENGTHS.get(length)
    if line is None:
        line = b"Content-Length: %d\r\n" % length
        if len(_LENGTHS) >= _LINES_MAX:
            _LENGTHS.clear()
        _LENGTHS[length] = line
    return line


def serialize(resp: Response, keep_alive: bool, http10: bool, head: bool,
              first: bytes = b"") -> bytes:
    """The bytes of a response on the wire, with Date and Content-Length as Go's server adds.

    For a streamed response, only the head: Content-Length when the length is known, else
    chunked (HTTP/1.0: the caller closes the connection after the body). `first`: header
    lines already on the wire's form (`messages.header_block`) that go before the answer's
    own, as a component that adds the same lines to every answer of an endpoint prepares
    them."""
    status = resp.status
    status_line = _STATUS_LINES.get(status)
    if status_line is None:
        status_line = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "").encode())
    parts = [status_line, first]
    lines = _LINES
    for header in cast("list[object]", resp.headers):
        line = lines.get(header)
        if line is None:
            line = _line(cast("tuple[str, str]", header))
        parts.append(line)
    parts.append(DATE.line())
    body = resp.body
    if status >= 200 and status not in (204, 304):
        stream = resp.stream
        if stream is None:
            parts.append(_length_line(len(body)))
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
