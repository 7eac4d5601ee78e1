"""Each request gets its own HTTP version, however the bytes arrive.

The protocol reads " HTTP/1.1" at the end of a chunk's first line instead of asking the
parser, but only for the request that chunk starts: a later request in the same chunk, or a
chunk that continues a head or a body, is read by the parser. In process, with a transport
double: the chunks are exactly the ones given.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tidegate.config.model import DEFAULT_EDGE
from tidegate.messages import Request, Response
from tidegate.server.protocol import HttpProtocol


class Generation:
    """Answers at once and remembers each request's version."""

    def __init__(self, expected: int) -> None:
        self.inflight = 0
        self.access_log = None
        self.versions: list[str] = []
        self.expected = expected
        self.all_in = asyncio.Event()

    def leave(self) -> None:
        self.inflight -= 1

    async def handle(self, request: Request) -> Response:
        self.versions.append(request.version)
        if len(self.versions) == self.expected:
            self.all_in.set()
        return Response(200, [("Content-Type", "text/plain")], b"ok")


class State:
    def __init__(self, expected: int) -> None:
        self.current = Generation(expected)
        self.connections: set[Any] = set()
        self.draining = False
        self.limits = DEFAULT_EDGE

    def all_closed(self) -> None:
        pass


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def serve(chunks: list[bytes], expected: int) -> tuple[list[str], list[bytes]]:
    """The versions the handler saw and what was written, for `chunks` read in turn."""
    async def scenario() -> tuple[list[str], list[bytes]]:
        state = State(expected)
        transport = Transport()
        proto = HttpProtocol(state)  # type: ignore[arg-type]
        proto.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            proto.data_received(chunk)
        await asyncio.wait_for(state.current.all_in.wait(), 5)
        return state.current.versions, transport.written

    return asyncio.run(scenario())


@pytest.mark.parametrize(("chunks", "versions"), [
    # Pipelined in one chunk: only the first request is the chunk's.
    ([b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\n\r\n"], ["1.1", "1.0"]),
    ([b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"],
     ["1.0", "1.1"]),
    # A chunk that goes on with a head whose next line ends in " HTTP/1.1".
    ([b"GET /a HTTP/1.0\r\n", b"X-Note: a HTTP/1.1\r\n\r\n"], ["1.0"]),
    # A chunk that goes on with a body that looks like a request line, then a request.
    ([b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 14\r\n\r\n",
      b"abc HTTP/1.1\r\nGET /b HTTP/1.0\r\n\r\n"], ["1.0", "1.0"]),
    # A request line split across chunks, then one whole.
    ([b"GET /a HT", b"TP/1.0\r\nConnection: keep-alive\r\n\r\n",
      b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"], ["1.0", "1.1"]),
])
def test_each_request_has_its_own_version(chunks: list[bytes], versions: list[str]) -> None:
    seen, written = serve(chunks, len(versions))
    assert seen == versions
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in written)


def test_an_http10_request_after_a_keepalive_one_needs_no_host() -> None:
    # Read as 1.1, the second request would be refused for its missing Host.
    _, written = serve([b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"], 2)
    assert [w.split(b"\r\n", 1)[0] for w in written] == [b"HTTP/1.1 200 OK"] * 2
    assert b"Connection: keep-alive\r\n" in written[1]  # HTTP/1.0 keep-alive is said so
