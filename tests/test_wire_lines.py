"""The response head's header lines: the same bytes whether a line is formatted or reused."""

from __future__ import annotations

import re

from tidegate.messages import Response, header_block
from tidegate.server import wire


def _undated(raw: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", raw)  # the second may turn between two calls


def _head(headers: list[tuple[str, str]]) -> bytes:
    raw = wire.serialize(Response(200, headers, b"{}"), True, False, False)
    return raw.split(b"\r\nDate: ")[0]


def test_reused_lines_are_the_formatted_bytes() -> None:
    headers = [("X-A", "1"), ("Content-Type", "application/json"), ("X-Name", "caf\u00e9 \u2603")]
    first = _head(headers)
    assert first == (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: application/json\r\n"
                     b"X-Name: caf\xe9 ?")  # latin-1, and "?" for what it cannot encode
    assert _head([(k, v) for k, v in headers]) == first  # equal tuples, the remembered lines


def test_the_line_cache_is_bounded() -> None:
    big = "x" * 1000
    assert _head([("X-Big", big)]).endswith(b"X-Big: " + big.encode())
    assert ("X-Big", big) not in wire._LINES  # long lines are not kept
    for i in range(wire._LINES_MAX * 2):
        _head([("X-Request-Id", str(i))])
    assert len(wire._LINES) <= wire._LINES_MAX
    assert _head([("X-Request-Id", "7")]).endswith(b"X-Request-Id: 7")


def test_prepared_lines_are_written_as_the_answers_own_would_be() -> None:
    # `security/http` hands its lines to the server prepared (`messages.header_block`): the
    # same head as the same headers in front of the answer's own.
    section = [("X-Frame-Options", "DENY"), ("Content-Security-Policy", "caf\u00e9 \u2603")]
    own = [("X-Krakend", "Version 2.x"), ("Content-Type", "application/json")]
    for status, body in ((200, b"{}"), (204, b""), (500, b"oops")):
        for keep_alive, http10, head in ((True, False, False), (False, True, True)):
            whole = wire.serialize(Response(status, section + own, body), keep_alive, http10, head)
            split = wire.serialize(Response(status, list(own), body), keep_alive, http10, head,
                                   header_block(section))
            assert _undated(split) == _undated(whole)
    assert header_block([]) == b""
