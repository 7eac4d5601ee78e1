"""HTTP/1.1 server protocol: httptools parses, the current generation answers.

Connection states (one request at a time; pipelined requests wait their turn):

    idle ──request complete──▶ busy ──response written──▶ idle   (keep-alive)
                                  └──────────────────────▶ closed (Connection: close / draining)

Each request takes ``gen = server.current`` once, when its head is parsed, and uses only that
generation until its response is written; the next request on the same keep-alive connection
picks the newest generation. A malformed request gets 400 and the connection closes; no error of
a handler ever escapes to the event loop (it becomes a 500).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

import httptools

from tidegate.server.messages import Request, Response, serialize

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("tidegate.server")


class Handler(Protocol):
    """What a generation offers the protocol."""

    inflight: int

    def leave(self) -> None: ...

    def handle(self, request: Request) -> Awaitable[Response]: ...


class ServerState(Protocol):
    """What the protocol needs from the server: the current generation and connection book."""

    current: Handler
    connections: set[HttpProtocol]
    draining: bool

    def all_closed(self) -> None:
        """Called when the last connection closes while draining."""


# Go's http.Server default (DefaultMaxHeaderBytes, plus its 4 KiB slack): a request head
# larger than this gets 431 instead of growing the worker's memory without bound.
MAX_HEADER_BYTES = (1 << 20) + 4096
_HEADERS_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                      b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                      b"431 Request Header Fields Too Large")


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading an oversized request head."""


_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\n\r\n400 Bad Request")


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._gen: Handler | None = None
        self._queue: deque[tuple[Request, Handler, bool]] = deque()
        self._busy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._head_size = 0
        self._too_large = False
        self._expect_continue = False

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.state.connections.add(self)
        self._loop = asyncio.get_running_loop()

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if state.draining and not state.connections:
            state.all_closed()
        self._closing = True
        self.transport = None
        if self._gen is not None:  # a request whose body never arrived
            self._gen.leave()
            self._gen = None
        self._drop_queue()
        task = self._task
        if task is not None and not task.done():
            # The client is gone: stop its backend calls, as Go cancels the request context.
            task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject()
        except httptools.HttpParserError:
            self._reject(_HEADERS_TOO_LARGE if self._too_large else _BAD_REQUEST)

    def eof_received(self) -> bool | None:
        # Half-closed by the client: finish what is queued, then close.
        if not self._busy:
            self.close()
        self._closing = True
        return True

    # httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.decode("latin-1").lower()
        self._headers.append((lname, value.decode("latin-1")))
        self._count_head(len(name) + len(value) + 4)
        if lname == "expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def _count_head(self, n: int) -> None:
        self._head_size += n
        if self._head_size > MAX_HEADER_BYTES:
            self._too_large = True
            raise _HeadTooLarge()

    def on_headers_complete(self) -> None:
        self._gen = self.state.current
        self._gen.inflight += 1
        if self._expect_continue:
            # The body is always read, so say so at once (as Go's server does), instead of
            # letting the client wait out its own timeout.
            self._expect_continue = False
            if self.transport is not None and self.parser.get_http_version() == "1.1":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        gen = self._gen
        assert gen is not None
        self._gen = None
        parser = self.parser
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            gen.leave()
            self._reject()
            return
        raw_path = url.path.decode("latin-1") if url.path else "/"
        query = url.query.decode("latin-1") if url.query else ""
        version = parser.get_http_version()
        request = Request(
            parser.get_method().decode("ascii"), self._url.decode("latin-1"), raw_path, query,
            self._headers, b"".join(self._body), self.client_ip, version)
        keep_alive = parser.should_keep_alive()
        if self._busy:
            self._queue.append((request, gen, keep_alive))
            return
        self._busy = True
        self._task = self._loop.create_task(self._serve(request, gen, keep_alive))

    # serving -----------------------------------------------------------------------------
    async def _serve(self, request: Request, gen: Handler, keep_alive: bool) -> None:
        while True:
            try:
                response = await gen.handle(request)
            except Exception:  # a bug must never take the connection or the worker down
                log.exception("unhandled error serving %s %s", request.method, request.path)
                response = Response.text(500, "500 Internal Server Error",
                                         "text/plain; charset=utf-8")
            finally:
                gen.leave()
            if self._closing and self.transport is None:
                return
            keep_alive = keep_alive and not self.state.draining and not self._closing
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            transport.write(serialize(response, keep_alive, request.version == "1.0",
                                      request.method == "HEAD"))
            if not keep_alive:
                self._drop_queue()
                transport.close()
                return
            if not self._queue:
                self._busy = False
                return
            request, gen, keep_alive = self._queue.popleft()

    def _drop_queue(self) -> None:
        while self._queue:
            _, gen, _ = self._queue.popleft()
            gen.leave()

    def _reject(self, answer: bytes = _BAD_REQUEST) -> None:
        if self._gen is not None:
            self._gen.leave()
            self._gen = None
        if self.transport is not None and not self.transport.is_closing():
            if not self._busy:
                self.transport.write(answer)
            self.transport.close()
        self._closing = True

    # life cycle --------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No request being served or queued."""
        return not self._busy

    def close(self) -> None:
        """Close now (idle connection while draining, or end of stream)."""
        self._closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def protocol_factory(state: ServerState) -> Callable[[], HttpProtocol]:
    """A factory for loop.create_server."""
    return lambda: HttpProtocol(state)
