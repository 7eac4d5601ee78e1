"""One keep-alive connection to a backend and the pool of idle ones it returns to.

`Connection` is the asyncio protocol: it writes one request at a time, parses the answer with
httptools, holds or streams its body, and fails the exchange at its deadline with a timer it
keeps from one exchange to the next. `Pool` keeps the idle connections of one address. The
client (`tidegate.upstream.client`) decides what is sent on which connection.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections import deque

import httptools

from tidegate.bodies import BodyStream, InflatingStream

__all__ = ["Connection", "Pool", "Stale", "UpstreamError", "UpstreamResponse",
           "UpstreamTimeout", "go_error_text"]

MAX_IDLE_PER_HOST = 256
# Go's http.Transport default MaxResponseHeaderBytes: a backend head larger than this fails
# the exchange instead of growing the worker's memory until the timeout.
MAX_RESPONSE_HEADER_BYTES = 10 << 20


class UpstreamError(Exception):
    """The backend could not be reached or answered something that is not HTTP."""


_GO_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "broken pipe",
}


def go_error_text(exc: BaseException, op: str) -> str:
    """An OS error as Go's net package words it (``connect: connection refused``), because
    that is the text KrakenD users see with ``return_error_msg`` and search for."""
    if isinstance(exc, socket.gaierror):
        return "no such host"
    if isinstance(exc, OSError) and exc.errno in _GO_ERRNO_TEXT:
        return f"{op}: {_GO_ERRNO_TEXT[exc.errno]}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{op}: {exc.strerror.lower()}"
    return f"{op}: {exc}"


class UpstreamTimeout(UpstreamError):
    """No complete answer before the deadline."""

    def __init__(self) -> None:
        super().__init__("context deadline exceeded")


class UpstreamResponse:
    """A backend answer; header names keep the backend's spelling. A streamed answer has an
    empty ``body`` and its body in ``stream`` (read it to the end, or abandon it).

    A plain class, not a dataclass: compiled, a dataclass's generated ``__init__`` still runs
    in the interpreter (about 1,600 instructions; one answer per backend per request).

    The headers as the parser gave them (``raw``: name, value, name, value... in bytes) are
    decoded the first time ``headers`` is read: a decoded answer's are read only when its
    status is an error, a redirect or something asks for them (about 450 instructions a
    header otherwise, on every answer of every backend)."""

    __slots__ = ("_headers", "_raw", "body", "gzip", "status", "stream")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None, body: bytes,
                 stream: BodyStream | InflatingStream | None = None, gzip: bool = False,
                 raw: list[bytes] | None = None) -> None:
        self.status = status
        self._headers = headers
        self._raw = raw
        self.body = body
        self.stream = stream
        # Its first Content-Encoding is gzip (noted while parsing: no scan of the headers).
        self.gzip = gzip

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers, decoded as latin-1 on first use."""
        headers = self._headers
        if headers is None:
            headers = self._headers = _decoded_headers(self._raw or [])
        return headers

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitive."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


def _decoded_headers(raw: list[bytes]) -> list[tuple[str, str]]:
    """(name, value) pairs of a flat list of names and values as received."""
    return [(raw[i].decode("latin-1"), raw[i + 1].decode("latin-1"))
            for i in range(0, len(raw), 2)]


class Connection(asyncio.Protocol):
    """One TCP connection to a backend; carries one exchange at a time."""

    __slots__ = (
        "_body",
        "_deadline",
        "_done",
        "_drain",
        "_encoding",
        "_head_bytes",
        "_head_only",
        "_headers",
        "_loop",
        "_parser",
        "_received",
        "_status",
        "_stream",
        "_streaming",
        "_timer",
        "_timer_at",
        "_write_paused",
        "closed",
        "pool",
        "reusable",
        "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        # The loop the connection lives on, taken once: asyncio.get_running_loop() costs a
        # getpid() system call on every call (CPython 3.11), and `send` runs per exchange.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[UpstreamResponse] | None = None
        self._headers: list[bytes] = []  # names and values in turn, as received
        self._encoding: bytes | None = None  # the answer's first Content-Encoding
        self._body: list[bytes] = []
        self._status = 0
        self._received = False
        self._head_only = False
        self._head_bytes = 0  # bytes received while the answer's head is incomplete
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when the armed timer fires (loop time)
        self._deadline: float | None = None  # the exchange in flight's, if it has one
        self._streaming = False  # hand the answer over at its head, its body as a stream
        self._stream: BodyStream | None = None  # the body being streamed
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.closed = False
        self.reusable = False

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP connection's transport is an asyncio.Transport; asyncio's signature names the
        # base class shared with datagram and pipe transports (no runtime check on this path).
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 101 to a request that asked for no upgrade: nothing HTTP follows on this
            # connection, so the exchange fails (and is logged by its caller, not the loop).
            self._fail(UpstreamError("unexpected 101 Switching Protocols from the backend"))
            self.close()
            return
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed HTTP response: {exc}"))
            self.close()
            return
        if not self._status and self._done is not None:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_RESPONSE_HEADER_BYTES:
                self._fail(UpstreamError(  # Go's words
                    f"net/http: server response headers exceeded {MAX_RESPONSE_HEADER_BYTES} "
                    "bytes; aborted"))
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._disarm()
        self.resume_writing()  # a body being sent stops waiting (its next write fails)
        stream = self._stream
        if stream is not None:
            self._stream = None
            self._stop_timer()
            if not self._parser.should_keep_alive():
                stream.finish()  # a close-delimited body ends with the connection
            else:
                stream.fail(UpstreamError(go_error_text(exc, "read") if exc else
                                          "unexpected EOF"))
            return
        done = self._done
        if (done is None or not done.done()) and (
                not self._status or self._parser.should_keep_alive()):
            self._stop_timer()
        if done is not None and not done.done():
            if self._status and not self._parser.should_keep_alive():
                # A close-delimited body ends with the connection.
                self._finish()
            else:
                # Go's words: "EOF" when the backend closed cleanly mid-exchange.
                reason = go_error_text(exc, "read") if exc is not None else "EOF"
                done.set_exception(Stale(reason) if not self._received else
                                   UpstreamError(reason))

    # httptools callbacks -----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append(name)
        headers.append(value)
        if len(name) == 16 and self._encoding is None and name.lower() == b"content-encoding":
            self._encoding = value

    def _gzip(self) -> bool:
        encoding = self._encoding
        return encoding is not None and encoding.lower() == b"gzip"

    def on_headers_complete(self) -> None:
        self._status = status = self._parser.get_status_code()
        if self._head_only or status in (204, 304):
            self._finish()
        elif self._streaming and status >= 200:
            self._start_stream()

    def on_body(self, body: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status and 100 <= self._status < 200:
            # Interim answer (100 Continue): the real one follows on the same connection.
            self._headers = []
            self._encoding = None
            self._status = 0
            return
        stream = self._stream
        if stream is not None:
            self._stream = None
            self._stop_timer()
            self.reusable = not self.closed and self._parser.should_keep_alive()
            stream.on_abandon = None
            stream.finish()
            self.pool.release(self)  # only now: the body was on this connection
            return
        self._finish()

    @property
    def streaming_body(self) -> bool:
        """An answer's body is still flowing through a stream."""
        return self._stream is not None

    def _start_stream(self) -> None:
        """Hand the answer over now; its body follows through a stream that pauses reading
        from the backend while the reader is behind."""
        done = self._done
        if done is None or done.done():
            return
        transport = self.transport
        assert transport is not None
        length = None
        for name, value in _decoded_headers(self._headers):
            if name.lower() == "content-length" and value.isdigit():
                length = int(value)
        stream = self._stream = BodyStream(transport.pause_reading, transport.resume_reading,
                                           length)
        stream.on_abandon = self.close  # half an answer: the connection cannot be reused
        done.set_result(UpstreamResponse(self._status, None, b"", stream, self._gzip(),
                                         self._headers))
        self._done = None

    # exchange ----------------------------------------------------------------------------
    def send(self, data: bytes, head_only: bool, deadline: float | None,
             streaming: bool = False) -> asyncio.Future[UpstreamResponse]:
        """Write a request; the future fails with UpstreamTimeout at `deadline` (loop time),
        which also bounds a streamed answer's body.

        A timer on the loop is much cheaper than an asyncio.timeout() scope per request, and
        the connection keeps its timer from one exchange to the next: it is armed again only
        for an earlier deadline, and when it fires for an exchange that ended, the one now in
        flight (whose deadline is later) gets it re-armed at its own deadline. Under load a
        connection arms a timer about once per timeout, not once per request.
        """
        loop = self._loop
        assert loop is not None  # set when the connection was made
        self._done = loop.create_future()
        self._deadline = deadline
        if deadline is not None and (self._timer is None or deadline < self._timer_at):
            self._arm(loop, deadline)
        self._headers = []
        self._encoding = None
        self._body = []
        self._status = 0
        self._received = False
        self._head_bytes = 0
        self._head_only = head_only
        self._streaming = streaming
        self.reusable = False
        assert self.transport is not None
        self.transport.write(data)
        return self._done

    async def send_body(self, body: BodyStream) -> None:
        """Send a streamed request body chunked, as it is read, waiting while the transport
        is paused. A failure reading it (client gone, body too large) fails the exchange."""
        try:
            while chunk := await body.read():
                transport = self.transport
                if self.closed or transport is None:
                    return
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if self._write_paused:
                    self._drain = waiter = asyncio.get_running_loop().create_future()
                    await waiter
            if not self.closed and self.transport is not None:
                self.transport.write(b"0\r\n\r\n")
        except Exception as exc:
            self._fail(exc)
            self.close()

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timer)
        self._timer_at = when

    def _disarm(self) -> None:
        """No timer any more (the connection is closing)."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:  # armed for an exchange that ended in time, none in flight
            return
        if deadline > self._timer_at:  # armed for an earlier exchange: this one is later
            loop = self._loop
            assert loop is not None
            self._arm(loop, deadline)
            return
        self._deadline = None
        self._fail(UpstreamTimeout())
        self.close()

    def _finish(self) -> None:
        done = self._done
        if done is None or done.done():
            return
        self._stop_timer()
        self.reusable = (not self._head_only and not self.closed
                         and self._parser.should_keep_alive())
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        done.set_result(UpstreamResponse(self._status, None, body, None, self._gzip(),
                                         self._headers))
        self._done = None

    def _stop_timer(self) -> None:
        """The exchange's deadline no longer applies (answered, failed or handed over); the
        timer stays armed for the next exchange (see `send`)."""
        self._deadline = None

    def _fail(self, exc: Exception) -> None:
        self._stop_timer()
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        stream = self._stream
        if stream is not None:
            self._stream = None
            stream.fail(exc)

    def close(self) -> None:
        self.closed = True
        self._disarm()
        if self.transport is not None:
            self.transport.close()


class Stale(Exception):
    """A pooled connection died before answering: safe to retry on a fresh one."""


class Pool:
    """Idle keep-alive connections to one (scheme, host, port)."""

    def __init__(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl_ctx
        self.idle: deque[Connection] = deque()
        self.all: set[Connection] = set()
        self.closed = False

    async def connect(self, deadline: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: Connection(self), self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise UpstreamTimeout() from None
        except OSError as exc:
            raise UpstreamError(
                f"dial tcp {self.host}:{self.port}: {go_error_text(exc, 'connect')}") from exc
        self.all.add(conn)
        return conn

    def take_idle(self) -> Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: Connection) -> None:
        if conn.reusable and not self.closed and len(self.idle) < MAX_IDLE_PER_HOST:
            self.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: Connection) -> None:
        self.all.discard(conn)

    def close(self) -> None:
        self.closed = True
        for conn in list(self.all):
            conn.close()
        self.idle.clear()
