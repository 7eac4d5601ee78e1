"""HTTP/1.1 server protocol: httptools parses, the current generation answers.

Connection phases (one request served at a time; pipelined requests wait their turn):

    HEAD ──head complete──▶ BODY ──message complete──▶ SERVING ──response written──▶ IDLE
      ▲                                                   │ (Connection: close,
      └───────────────────── first byte ◀──── IDLE ◀──────┘  draining: closed)

Each request takes ``gen = server.current`` once, when its head is parsed, and uses only that
generation until its response is written; the next request on the same keep-alive connection
picks the newest generation. A malformed request gets 400 and the connection closes; no error of
a handler ever escapes to the event loop (it becomes a 500).

A body that does not arrive within `STREAM_AFTER` bytes is not held: the request is served at
once with its body as a `BodyStream` the pipeline reads (or sends on) while it arrives, and the
transport stops reading while the stream is full. A response with a stream is copied out as it
comes, waiting whenever the client's transport asks for a pause: memory per connection is
bounded by these buffers, not by the size of a body.

Every phase is bounded (``EdgeLimits``, Go's http.Server meanings): the head in time and size,
the whole request and the response write in time when configured, an idle keep-alive connection
in time. Deadlines are plain numbers on the connection that one `DeadlineSweeper` per worker
checks a few times per shortest timeout, instead of a timer armed and cancelled per request
(which would cost several per cent of a proxied request).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Final, NoReturn, Protocol

import httptools

from tidegate.bodies import HIGH_WATER, BodyStream
from tidegate.config.model import EdgeLimits
from tidegate.messages import ChunkSource, Request, Response
from tidegate.server.wire import serialize, split_target
from tidegate.telemetry.access_log import AccessLogger
from tidegate.telemetry.recorder import ServerMeter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("tidegate.server")


class Handler(Protocol):
    """What a generation offers the protocol."""

    inflight: int
    access_log: AccessLogger | None

    def leave(self) -> None: ...

    def handle(self, request: Request) -> Awaitable[Response]: ...


class ServerState(Protocol):
    """What the protocol needs from the server: the current generation and connection book."""

    current: Handler
    connections: set[HttpProtocol]
    draining: bool
    limits: EdgeLimits

    def all_closed(self) -> None:
        """Called when the last connection closes while draining."""


def _plain(status: str, detail: str = "") -> bytes:
    """A response Go's server writes itself for a request it cannot serve (then it closes)."""
    body = f"{status}: {detail}" if detail else status
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{body}").encode()


_BAD_REQUEST = _plain("400 Bad Request")
_NO_HOST = _plain("400 Bad Request", "missing required Host header")
_TWO_HOSTS = _plain("400 Bad Request", "too many Host headers")
_HTTP09 = _plain("400 Bad Request", "malformed HTTP request line")
_HEADERS_TOO_LARGE = _plain("431 Request Header Fields Too Large")
_VERSION = _plain("505 HTTP Version Not Supported", "unsupported protocol version")
_TIMEOUT = _plain("408 Request Timeout")

# Parsed requests that may wait behind the one being served before reading pauses (Go reads
# one ahead). One chunk already read is still parsed whole, so the bound is this plus what one
# read of the socket holds.
MAX_PIPELINED = 16

# A newline, looked for as an int (one memchr; `b"\n" in data` first builds a TypeError).
_LF: Final = 0x0A
# The usual methods' names, not decoded per request.
_METHODS: Final = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                           "OPTIONS")}

# Phases of a connection (small ints: compared on every event).
HEAD, BODY, SERVING, IDLE = range(4)
# A body larger than this is not waited for: the request is served with a stream of it.
STREAM_AFTER = HIGH_WATER
# Go's rstAvoidanceDelay: after answering a request whose body was not read, the connection is
# half-closed and the rest of the body discarded this long, so that closing does not reset
# the connection (and lose the answer) while the client is still sending.
LINGER = 0.5


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
        self._body_size = 0
        self._stream: BodyStream | None = None  # the body of a request being received
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._chunked = False  # framing and keep-alive of the streamed response being written
        self._keep_alive = False
        self._discarding = False  # answered and closing: whatever arrives is dropped
        self._gen: Handler | None = None
        self._queue: deque[tuple[Request, Handler, bool]] = deque()
        self._queue_paused = False  # reading paused because too many requests wait their turn
        self._busy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # Set while the connection's task waits for the next request (see `_serve`).
        self._waiter: asyncio.Future[None] | None = None
        self._expect_continue = False
        self._hosts = 0
        self._head_size = 0  # request line and headers, as parsed (exact)
        # Bounds: the phase, bytes of the head so far, and the two deadlines (0: none).
        self._phase = HEAD
        self._head_bytes = 0  # bytes received while a head is incomplete (bounds its growth)
        self._read_deadline = 0.0
        self._write_deadline = 0.0
        self._request_start = 0.0
        self._reject_after: bytes | None = None  # an answer owed once the queue is served
        self._tls = False
        self._sent = 0
        self._version = "1.1"  # of the request being parsed, from its head
        self._chunk_version = ""  # "1.1" when the chunk being parsed starts such a request
        self._known_version = ""  # the same for the request being parsed ("": ask)

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP connection's transport is an asyncio.Transport; asyncio's signature names the
        # base class shared with datagram and pipe transports (no runtime check on this path).
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        # A TLS transport cannot stay half-open: the end of the client's side closes it.
        self._tls = transport.get_extra_info("sslcontext") is not None
        self.state.connections.add(self)
        self._loop = asyncio.get_running_loop()
        # Go: the first request's head deadline runs from the moment the connection is taken.
        self._request_start = now = self._loop.time()
        self._read_deadline = now + self.state.limits.header_timeout

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
        if self._stream is not None:
            self._stream.fail(ConnectionResetError("client closed the connection"))
            self._stream = None
        self._wake_writer()
        self._drop_queue()
        task = self._task
        if task is not None and not task.done():
            # The client is gone: stop its backend calls, as Go cancels the request context.
            task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        phase = self._phase
        if phase >= SERVING or (phase == HEAD and not self._head_bytes and not self._url):
            # The chunk starts a request: when its line ends in " HTTP/1.1" (the parser
            # takes no spaces in a target, so that is the version it reads), the version is
            # known without `get_http_version`, which formats it anew (~2,000 instructions).
            end = data.find(_LF)
            if end >= 10 and data.startswith(b" HTTP/1.1\r", end - 10):
                self._chunk_version = "1.1"
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Go ignores Upgrade (h2c, websocket) on a plain endpoint and answers in HTTP/1.1:
            # the request was parsed; go on with a fresh parser for whatever follows it.
            self.parser = httptools.HttpRequestParser(self)
            rest = data[upgrade.args[0]:] if upgrade.args else b""
            if rest and not self._closing:
                self.data_received(rest)
            return
        except httptools.HttpParserError:
            if not self._closing:  # else a callback refused the request and answered already
                self._reject(_BAD_REQUEST)
            return
        finally:
            self._chunk_version = ""
        if self._phase == HEAD and not self._closing:
            self._head_growing(data)

    def _head_growing(self, data: bytes) -> None:
        """A head still incomplete after this chunk: bound its size (in linear time: the
        count is per chunk, not per header) and refuse an HTTP/0.9 request line at once."""
        self._head_bytes += len(data)
        if self._head_bytes > self.state.limits.max_header_bytes:
            self._reject(_HEADERS_TOO_LARGE)
        elif _LF in data and self.parser.get_http_version() == "0.0":
            self._reject(_HTTP09)  # a request line without "HTTP/x.y"

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool | None:
        # Half-closed by the client: finish what is queued, then close.
        if self._stream is not None:  # in the middle of a body: it will never complete
            self._stream.fail(ConnectionResetError("unexpected EOF in the request body"))
            self._stream = None
        if not self._busy:
            self.close()
        self._closing = True
        return None if self._tls else True

    # httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        # The version seen at the start of the chunk is this request's if it is the
        # chunk's first (`data_received`), of no later one.
        self._known_version = self._chunk_version
        self._chunk_version = ""
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._stream = None
        self._hosts = 0
        self._head_size = 0
        if self._phase == IDLE or not self._read_deadline:
            # A keep-alive (or pipelined) request: its head deadline runs from its first byte.
            self._request_start = now = self._loop.time()
            self._read_deadline = now + self.state.limits.header_timeout
            self._head_bytes = 0
        self._phase = HEAD

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        lname = name.decode("latin-1").lower()
        self._headers.append((lname, value.decode("latin-1")))
        if lname == "host":
            self._hosts += 1
        elif lname == "expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        limits = self.state.limits
        if self._head_size > limits.max_header_bytes:
            self._refuse(_HEADERS_TOO_LARGE)
        # Read once per request: httptools formats it anew on every call.
        version = self._known_version or self.parser.get_http_version()
        self._version = version
        if version != "1.1" and version != "1.0":
            self._refuse(_VERSION if version[0] not in "01" else _HTTP09)
        if version == "1.1" and self._hosts != 1:  # RFC 9112 §3.2, as Go's server
            self._refuse(_NO_HOST if not self._hosts else _TWO_HOSTS)
        self._phase = BODY
        self._read_deadline = (self._request_start + limits.read_timeout
                               if limits.read_timeout else 0.0)
        if limits.write_timeout and not self._busy:
            self._write_deadline = self._loop.time() + limits.write_timeout
        self._gen = self.state.current
        self._gen.inflight += 1
        if self._expect_continue:
            # The body is always read, so say so at once (as Go's server does), instead of
            # letting the client wait out its own timeout.
            self._expect_continue = False
            if self.transport is not None and version == "1.1":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        stream = self._stream
        if stream is not None:
            stream.feed(body)
            return
        self._body.append(body)
        self._body_size += len(body)
        if self._body_size > STREAM_AFTER:
            # Too large to wait for: serve the request now, its body flows as it arrives.
            stream = self._stream = BodyStream(self._pause_reading, self._resume_reading,
                                               _content_length(self._headers))
            for part in self._body:
                stream.feed(part)
            self._body = []
            self._dispatch(b"", stream)

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def on_message_complete(self) -> None:
        self._phase = SERVING
        self._read_deadline = 0.0
        stream = self._stream
        if stream is not None:  # the request is being served already
            self._stream = None
            stream.finish()
            return
        self._dispatch(b"".join(self._body), None)

    def _dispatch(self, body: bytes, stream: BodyStream | None) -> None:
        """Hand the parsed request to its generation (or queue it behind the one served)."""
        gen = self._gen
        assert gen is not None
        self._gen = None
        parser = self.parser
        target = self._url.decode("latin-1")
        if target[:1] == "/" and "#" not in target:  # origin form, nearly every request
            path, _, query = target.partition("?")
            authority = None
        else:
            split = split_target(target)
            if split is None:
                gen.leave()
                self._refuse(_BAD_REQUEST)
            path, query, authority = split
        version = self._version
        method = parser.get_method()
        request = Request(
            _METHODS.get(method) or method.decode("ascii"), target, path, query, self._headers,
            body, self.client_ip, version, stream, self._tls)
        if authority is not None:
            request.host = authority  # RFC 9112 §3.2.2: the target's authority is the host
        keep_alive = parser.should_keep_alive() and self.state.limits.keep_alive
        if self._busy:
            self._queue.append((request, gen, keep_alive))
            if len(self._queue) >= MAX_PIPELINED and not self._queue_paused:
                # A client pipelining faster than it is answered: stop reading until the
                # queue drains, so its requests wait in the socket, not in the worker.
                self._queue_paused = True
                self._pause_reading()
            return
        self._busy = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # The connection's task waits for its next request: hand this one over (a task
            # per request costs ~6,000 instructions more: its creation registers it in
            # asyncio's weak set of all tasks, in the interpreter).
            self._waiter = None
            self._queue.append((request, gen, keep_alive))
            waiter.set_result(None)
            return
        self._task = self._loop.create_task(self._serve(request, gen, keep_alive))

    # serving -----------------------------------------------------------------------------
    async def _serve(self, request: Request, gen: Handler, keep_alive: bool) -> None:
        """Serve requests in turn for as long as the connection lasts: one task per
        connection, waiting between requests for `_dispatch` to hand over the next one."""
        while True:
            started = perf_counter()
            response: Response | None = None
            self._sent = 0  # body bytes written (the access log's size)
            try:
                try:
                    response = await gen.handle(request)
                    meter = request.metrics_route  # the metrics' server layer, if recorded
                    if isinstance(meter, ServerMeter):
                        meter.record(request, response, started)
                except Exception:  # a bug must never take the connection or the worker down
                    log.exception("unhandled error serving %s %s", request.method, request.path)
                    request.head_lines = b""
                    _failed(request, started)
                    response = Response.text(500, "500 Internal Server Error",
                                             "text/plain; charset=utf-8")
                # The generation is left once the response is written: a streamed answer
                # still reads from its pools.
                if response.stream is None and request.stream is None:  # the common case
                    if self._closing and self.transport is None:
                        return
                    # A request refused after this one is still owed its answer here.
                    keep_alive = keep_alive and not self.state.draining and (
                        not self._closing or self._reject_after is not None)
                    transport = self.transport
                    if transport is None or transport.is_closing():
                        return
                    head = request.method == "HEAD"
                    transport.write(serialize(response, keep_alive, request.version == "1.0",
                                              head, request.head_lines))
                    if not head:
                        self._sent = len(response.body)
                    if not keep_alive:
                        self._drop_queue()
                        transport.close()
                        return
                else:
                    streamed = self._respond(request, response, keep_alive)
                    if streamed is None:
                        return
                    if response.stream is not None:
                        streamed = await self._copy_out(request, response.stream, streamed)
                        if streamed is None:
                            return
                    transport = streamed
            finally:
                gen.leave()
                if response is None:  # cancelled: the client left
                    _failed(request, started)
                access = gen.access_log
                if access is not None and response is not None:
                    access.record(request, response.status, self._sent, started)
            if not self._queue:
                self._busy = False
                if self._reject_after is not None:  # a malformed request followed this one
                    self._reject(self._reject_after)
                    return
                if self._phase == SERVING:
                    self._phase = IDLE
                    self._read_deadline = self._loop.time() + self.state.limits.idle_timeout
                if self._write_deadline and not transport.get_write_buffer_size():
                    self._write_deadline = 0.0
                self._waiter = waiter = self._loop.create_future()
                try:
                    await waiter
                except asyncio.CancelledError:
                    # The client left (`connection_lost`), or the task was cancelled by
                    # someone else (a timeout's late cancellation, shutdown): a request
                    # handed over meanwhile is served by a task of its own.
                    if self._waiter is waiter:
                        self._waiter = None
                    if self._queue and self.transport is not None:
                        request, gen, keep_alive = self._queue.popleft()
                        self._task = self._loop.create_task(
                            self._serve(request, gen, keep_alive))
                    raise
                request, gen, keep_alive = self._queue.popleft()
                continue
            if self.state.limits.write_timeout:
                self._write_deadline = self._loop.time() + self.state.limits.write_timeout
            request, gen, keep_alive = self._queue.popleft()
            if self._queue_paused and len(self._queue) <= MAX_PIPELINED // 2:
                self._queue_paused = False
                self._resume_reading()

    def _respond(self, request: Request, response: Response, keep_alive: bool
                 ) -> asyncio.Transport | None:
        """Write a response that has a streamed body or answers a streamed request (the head
        only for a streamed body); the transport while the connection goes on, None when it
        is closed or closing."""
        stream = response.stream
        if self._closing and self.transport is None:
            if stream is not None:
                stream.abandon()
            return None
        # A request refused after this one is still owed its answer on this connection.
        keep_alive = keep_alive and not self.state.draining and (
            not self._closing or self._reject_after is not None)
        http10 = request.version == "1.0"
        if request.stream is not None and not request.stream.done:
            keep_alive = False  # the rest of an unread body is not worth reading (Go: 256 KiB)
        head = request.method == "HEAD"
        if stream is not None:
            if head or response.status in (204, 304) or response.status < 200:
                stream.abandon()
                response.stream = stream = None
            elif stream.length is None and http10:
                keep_alive = False  # the body ends with the connection
        transport = self.transport
        if transport is None or transport.is_closing():
            if stream is not None:
                stream.abandon()
            return None
        transport.write(serialize(response, keep_alive, http10, head, request.head_lines))
        if not head and stream is None:
            self._sent = len(response.body)
        if stream is not None:
            self._chunked = stream.length is None and not http10
            self._keep_alive = keep_alive
            return transport
        if not keep_alive:
            self._end(request, transport)
            return None
        return transport

    def _end(self, request: Request, transport: asyncio.Transport) -> None:
        """Close after an answer; with a request body still arriving, linger first."""
        self._drop_queue()
        body = request.stream
        if body is None or body.done or transport.is_closing():
            transport.close()
            return
        self._discarding = True
        self._closing = True
        self._read_deadline = 0.0
        if self._stream is not None:
            self._stream.fail(ConnectionAbortedError("answered before the body was read"))
            self._stream = None
        transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(LINGER, transport.close)

    async def _copy_out(self, request: Request, stream: ChunkSource,
                        transport: asyncio.Transport) -> asyncio.Transport | None:
        """Copy a streamed body to the client, waiting while its transport is paused: what is
        held is one chunk plus the stream's buffer, whatever the size of the body."""
        chunked = self._chunked
        finished = False
        try:
            while True:
                try:
                    chunk = await stream.read()
                except Exception as exc:  # the backend failed mid-body: the answer is cut
                    log.warning("%s %s: backend answer cut: %s", request.method, request.path,
                                exc)
                    finished = True  # nothing left to abandon
                    self._drop_queue()
                    transport.close()
                    return None
                if self.transport is None:
                    return None
                if not chunk:
                    finished = True
                    if chunked:
                        transport.write(b"0\r\n\r\n")
                    break
                self._sent += len(chunk)
                if chunked:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    transport.write(chunk)
                if self._write_paused:
                    self._drain = waiter = self._loop.create_future()
                    await waiter
                    if self.transport is None:
                        return None
        finally:
            if not finished:
                stream.abandon()
        if not self._keep_alive or transport.is_closing():
            self._end(request, transport)
            return None
        return transport

    def _drop_queue(self) -> None:
        while self._queue:
            _, gen, _ = self._queue.popleft()
            gen.leave()

    def _refuse(self, answer: bytes) -> NoReturn:
        """From a parser callback: answer (after what is queued) and stop parsing."""
        self._reject(answer)
        raise _Refused

    def _reject(self, answer: bytes = _BAD_REQUEST) -> None:
        if self._gen is not None:
            self._gen.leave()
            self._gen = None
        self._closing = True
        self._read_deadline = 0.0
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._busy:
            # Earlier pipelined requests are answered first, then this one (as Go does).
            self._reject_after = answer
            return
        transport.write(answer)
        transport.close()

    # deadlines ---------------------------------------------------------------------------
    def check_deadlines(self, now: float) -> bool:
        """Close the connection if a deadline passed (called by the worker's sweeper);
        True when it did."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if self._write_deadline and now >= self._write_deadline:
            # The response could not be written in time (slow handler or slow reader): Go
            # gives up on the connection; so do we, and stop the request's backend calls.
            transport.abort()
            return True
        if self._read_deadline and now >= self._read_deadline:
            started = self._phase in (HEAD, BODY) and (self._head_bytes or self._url
                                                        or self._headers)
            if started and not self._busy:
                transport.write(_TIMEOUT)  # a request was on its way
            self._closing = True
            transport.close()
            return True
        return False

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


def _failed(request: Request, started: float) -> None:
    """A request that raised or was cancelled, for the metrics' server layer (a 500)."""
    meter = request.metrics_route
    if isinstance(meter, ServerMeter):
        meter.failed(request, started)


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    """The announced body size (httptools checked the header already)."""
    for name, value in headers:
        if name == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was refused."""


# Connections closed in one go by the sweeper (each close costs ~50 us of loop time).
SWEEP_BATCH = 128


class DeadlineSweeper:
    """Checks every connection's deadlines a few times per shortest timeout."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._handle: asyncio.Handle | None = None

    def interval(self) -> float:
        """A quarter of the shortest bound, between 10 ms and 1 s."""
        limits = self.state.limits
        shortest = min(t for t in (limits.header_timeout, limits.idle_timeout,
                                   limits.read_timeout, limits.write_timeout) if t > 0)
        return min(1.0, max(0.01, shortest / 4))

    def start(self) -> None:
        """Sweep until `stop`."""
        self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval(), self._sweep)

    def _sweep(self) -> None:
        connections = self.state.connections
        if connections:
            loop = asyncio.get_running_loop()
            now = loop.time()
            closed = 0
            for conn in list(connections):
                if conn.check_deadlines(now):
                    closed += 1
                    if closed == SWEEP_BATCH:
                        # A wave expiring at once (slowloris): close it in batches, with the
                        # loop serving other clients in between.
                        self._handle = loop.call_soon(self._sweep)
                        return
        self._schedule()

    def stop(self) -> None:
        """No more sweeps."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def protocol_factory(state: ServerState) -> Callable[[], HttpProtocol]:
    """A factory for loop.create_server."""
    return lambda: HttpProtocol(state)
