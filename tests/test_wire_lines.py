"""The response head's header lines: the same bytes whether a line is formatted or reused."""

from __future__ import annotations

from tidegate.messages import Response
from tidegate.server import wire


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
