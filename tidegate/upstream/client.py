"""A lean HTTP/1.1 client for backends: pooled keep-alive connections over httptools.

Why not aiohttp's client: the gateway's hot path is one upstream exchange per backend per
request, and a purpose-built client over the same C parser the server uses costs a fraction of a
general-purpose one. It does only what KrakenD's Go transport does for backends: keep-alive pools
per host, ``Accept-Encoding: gzip`` with transparent decoding, Content-Length, chunked and
close-delimited bodies, and a retry of a request that died on a stale pooled connection before
any byte of the answer arrived (Go retries those too).

Bodies need not be held: a request body given as a `BodyStream` is sent chunked as it is read,
waiting whenever the connection's transport asks for a pause; an answer asked for as a stream
is handed over when its head arrives, its body flows through a `BodyStream` that pauses the
connection's reading while it is full, and the connection returns to its pool only when that
body is done. Gzip is undone in bounded steps, and a held answer that inflates past
`MAX_DECODED_BODY` fails instead of filling the worker's memory.

One `UpstreamClient` belongs to one generation; closing it closes its pools.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import zlib
from collections import deque
from typing import ClassVar

import httptools

from tidegate.bodies import BodyStream, DecodedTooLarge, InflatingStream, inflate
from tidegate.config.tls import ClientTLS
from tidegate.config.tls_context import client_context
from tidegate.state import StateKey, StateStore, fingerprint
from tidegate.upstream.target import Target, parse_target

__all__ = ["Pending", "Pool", "PoolRegistry", "Target", "UpstreamClient", "UpstreamError",
           "parse_target"]

MAX_IDLE_PER_HOST = 256
# Go's http.Transport default MaxResponseHeaderBytes: a backend head larger than this fails
# the exchange instead of growing the worker's memory until the timeout.
MAX_RESPONSE_HEADER_BYTES = 10 << 20
# The largest gzip answer, once inflated, that is held whole (to be decoded as JSON, XML...).
# Go has no bound; without one a 1 MiB body can ask for gigabytes. A streamed (no-op) answer
# is inflated as it is copied out and needs none.
MAX_DECODED_BODY = 32 << 20


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
    in the interpreter (about 1,600 instructions; one answer per backend per request)."""

    __slots__ = ("body", "gzip", "headers", "status", "stream")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes,
                 stream: BodyStream | InflatingStream | None = None, gzip: bool = False
                 ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
        # Its first Content-Encoding is gzip (noted while parsing: no scan of the headers).
        self.gzip = gzip

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitive."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


class _Connection(asyncio.Protocol):
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

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        # The loop the connection lives on, taken once: asyncio.get_running_loop() costs a
        # getpid() system call on every call (CPython 3.11), and `send` runs per exchange.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[UpstreamResponse] | None = None
        self._headers: list[tuple[str, str]] = []
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
                done.set_exception(_Stale(reason) if not self._received else
                                   UpstreamError(reason))

    # httptools callbacks -----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
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
        for name, value in self._headers:
            if name.lower() == "content-length" and value.isdigit():
                length = int(value)
        stream = self._stream = BodyStream(transport.pause_reading, transport.resume_reading,
                                           length)
        stream.on_abandon = self.close  # half an answer: the connection cannot be reused
        done.set_result(UpstreamResponse(self._status, self._headers, b"", stream,
                                         self._gzip()))
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
        done.set_result(UpstreamResponse(self._status, self._headers, body, None, self._gzip()))
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


class _Stale(Exception):
    """A pooled connection died before answering: safe to retry on a fresh one."""


class _Pool:
    """Idle keep-alive connections to one (scheme, host, port)."""

    def __init__(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl_ctx
        self.idle: deque[_Connection] = deque()
        self.all: set[_Connection] = set()
        self.closed = False

    async def connect(self, deadline: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise UpstreamTimeout() from None
        except OSError as exc:
            raise UpstreamError(
                f"dial tcp {self.host}:{self.port}: {go_error_text(exc, 'connect')}") from exc
        self.all.add(conn)
        return conn

    def take_idle(self) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: _Connection) -> None:
        if conn.reusable and not self.closed and len(self.idle) < MAX_IDLE_PER_HOST:
            self.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: _Connection) -> None:
        self.all.discard(conn)

    def close(self) -> None:
        self.closed = True
        for conn in list(self.all):
            conn.close()
        self.idle.clear()


# A pool as other modules name it (they only hand it back to `UpstreamClient.start`).
Pool = _Pool
PoolKey = tuple[str, str, int]


class PoolRegistry:
    """Keep-alive pools shared by the generations of one worker, leased from its state store.

    A reload must not cost every backend connection: a new generation leases the pools of the
    addresses it shares with the old one, and a pool closes when the last generation using it
    has released it (after its drain). An https pool belongs to the `client_tls` settings it
    was made with (they are in its key): a generation with other settings (a renewed client
    certificate, another CA) gets pools of its own.
    """

    NAMESPACE: ClassVar[str] = "upstream"

    def __init__(self, store: StateStore | None = None) -> None:
        self.store = store if store is not None else StateStore()
        self._contexts: dict[ClientTLS | None, ssl.SSLContext] = {}

    @staticmethod
    def state_key(key: PoolKey, tls: ClientTLS | None = None) -> StateKey:
        """The pool's entry in the store: one per address (and `client_tls` settings, for
        https), for the whole service."""
        address = f"{key[0]}://{key[1]}:{key[2]}"
        if key[0] == "https" and tls is not None:
            address += f"#{fingerprint(tls)}"
        return (PoolRegistry.NAMESPACE, "service", address)

    def acquire(self, key: PoolKey, tls: ClientTLS | None = None) -> _Pool:
        """The pool for an address, created on first use; pair with `release`."""
        return self.store.lease(self.state_key(key, tls), lambda: self._new_pool(key, tls))

    def _new_pool(self, key: PoolKey, tls: ClientTLS | None) -> _Pool:
        ctx = None
        if key[0] == "https":
            ctx = self._contexts.get(tls)
            if ctx is None:
                ctx = self._contexts[tls] = client_context(tls)
        return _Pool(key[1], key[2], ctx)

    def release(self, key: PoolKey, tls: ClientTLS | None = None) -> None:
        """One user fewer; the last one closes the pool's connections."""
        self.store.release(self.state_key(key, tls))

    def __len__(self) -> int:
        return sum(1 for k in self.store.held() if k[0] == self.NAMESPACE)


class UpstreamClient:
    """The pools one generation uses, taken from a (possibly shared) registry."""

    def __init__(self, registry: PoolRegistry | None = None,
                 tls: ClientTLS | None = None) -> None:
        self._registry = registry if registry is not None else PoolRegistry()
        self._pools: dict[PoolKey, _Pool] = {}
        self.closed = False
        # How https backends are reached (root `client_tls`); set before the first pool.
        self.tls = tls

    def use(self, registry: PoolRegistry) -> None:
        """Take pools from `registry` from now on (a generation being provisioned)."""
        if self._pools:
            raise RuntimeError("the client already holds pools of another registry")
        self._registry = registry

    def reserve(self, target: Target) -> None:
        """Take the pool for a backend address now, so a reload hands it over warm."""
        self._pool(target)

    def _pool(self, target: Target) -> _Pool:
        key = (target.scheme, target.host, target.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._registry.acquire(key, self.tls)
        return pool

    async def send(self, target: Target, method: str, request_target: str,
                   headers: list[tuple[str, str]], body: bytes | None,
                   deadline: float | None = None, body_stream: BodyStream | None = None,
                   stream: bool = False) -> UpstreamResponse:
        """One exchange, failing with UpstreamTimeout at `deadline` (event loop time).

        `body_stream` is sent chunked as it arrives (instead of `body`); with `stream` the
        answer comes back at its head, its body in ``stream``. Cancellation closes the
        connection (it may hold half an answer)."""
        data, wants_gzip = _request_bytes(target, method, request_target, headers, body,
                                          body_stream is not None)
        pool = self._pool(target)
        head_only = method == "HEAD"
        conn = pool.take_idle()
        resp: UpstreamResponse | None = None
        if conn is not None and body_stream is None:
            # `_exchange` inlined for the common case (a pooled connection, a held body):
            # the answer's future is awaited here, one coroutine frame fewer.
            try:
                resp = await conn.send(data, head_only, deadline, stream)
            except _Stale:
                conn.close()
            except BaseException:
                conn.close()
                raise
            else:
                if resp.stream is None:
                    pool.release(conn)  # else when its body is done (see _Connection)
        elif conn is not None:
            try:
                resp = await self._exchange(pool, conn, data, head_only, deadline,
                                            body_stream, stream)
            except _Stale as exc:
                if body_stream is not None and body_stream.consumed:
                    # Part of a body that cannot be read again went to a dead connection.
                    raise UpstreamError(str(exc.args[0]) if exc.args else
                                        "connection reset") from None
        if resp is None:
            conn = await pool.connect(deadline)
            try:
                resp = await self._exchange(pool, conn, data, head_only, deadline,
                                            body_stream, stream)
            except _Stale as exc:
                raise UpstreamError(str(exc.args[0]) if exc.args else
                                    "connection reset") from None
        if wants_gzip and _gzipped(resp):
            return await _decode(resp, deadline)
        return resp

    def pool(self, target: Target) -> _Pool:
        """The keep-alive pool of `target`'s address (a caller may keep it for `start`)."""
        return self._pool(target)

    @staticmethod
    def start(pool: _Pool, target: Target, method: str, request_target: str,
              headers: list[tuple[str, str]], body: bytes, deadline: float
              ) -> Pending | None:
        """`send` without a coroutine, when it can start at once: on an idle connection of
        `pool` (`target`'s) the request is written now and its answer is a future (see
        `Pending`). None when no connection is idle (nothing was written; `send` opens one)."""
        conn = pool.take_idle()
        if conn is None:
            return None
        data, wants_gzip = _request_bytes(target, method, request_target, headers, body, False)
        return Pending(pool, conn, conn.send(data, method == "HEAD", deadline), data, deadline,
                       wants_gzip, method, request_target, headers, body)

    @staticmethod
    async def _exchange(pool: _Pool, conn: _Connection, data: bytes,
                        head_only: bool, deadline: float | None,
                        body: BodyStream | None, streaming: bool) -> UpstreamResponse:
        try:
            answer = conn.send(data, head_only, deadline, streaming)
            if body is None:
                resp = await answer
            else:
                resp = await UpstreamClient._with_body(conn, answer, body)
        except BaseException:
            conn.close()
            raise
        if resp.stream is None:
            pool.release(conn)  # else when its body is done (see _Connection)
        return resp

    @staticmethod
    async def _with_body(conn: _Connection, answer: asyncio.Future[UpstreamResponse],
                         body: BodyStream) -> UpstreamResponse:
        """Await the answer while the body is sent; an answer that comes before the whole
        body was sent leaves the connection unusable (Go closes it too)."""
        sender = asyncio.ensure_future(conn.send_body(body))
        try:
            resp = await answer
        finally:
            if not sender.done():
                sender.cancel()
                conn.reusable = False
                if conn.streaming_body:
                    conn.closed = True  # not reused once the answer's body is done
                else:
                    conn.close()
        return resp

    async def close(self) -> None:
        """Let go of this generation's pools (closed when no other generation uses them)."""
        if self.closed:
            return
        self.closed = True
        for key in self._pools:
            self._registry.release(key, self.tls)
        self._pools.clear()


class Pending:
    """An exchange `UpstreamClient.start` began on a pooled connection: `answer` is done when
    the backend answered, failed or the deadline passed. `ready` then gives the answer, or None
    when some of `send`'s work is left for `rest` (a retry on a fresh connection after a stale
    one, undoing gzip); `cancel` gives up on it, as cancelling `send` does.

    Several of these are awaited at once by a merge instead of one task per backend."""

    __slots__ = ("answer", "body", "conn", "data", "deadline", "headers", "method", "pool",
                 "request_target", "resp", "wants_gzip")

    def __init__(self, pool: _Pool, conn: _Connection,
                 answer: asyncio.Future[UpstreamResponse], data: bytes, deadline: float,
                 wants_gzip: bool, method: str, request_target: str,
                 headers: list[tuple[str, str]], body: bytes) -> None:
        self.pool = pool
        self.conn = conn
        self.answer = answer
        self.data = data
        self.deadline = deadline
        self.wants_gzip = wants_gzip
        self.resp: UpstreamResponse | None = None
        # The request as asked (a redirect sends it again, an error names it).
        self.method = method
        self.request_target = request_target
        self.headers = headers
        self.body = body

    def ready(self) -> UpstreamResponse | None:
        """The answer (or the exchange's error, raised) once `answer` is done; None when
        `rest` must still run."""
        conn = self.conn
        try:
            resp = self.answer.result()
        except _Stale:
            conn.close()
            return None
        except BaseException:
            conn.close()
            raise
        self.pool.release(conn)  # the answer is whole: it was not asked for as a stream
        self.resp = resp
        if self.wants_gzip and _gzipped(resp):
            return None
        return resp

    async def rest(self) -> UpstreamResponse:
        """What `send` does after its first attempt: the request again on a fresh connection
        when the pooled one was stale, then gzip undone."""
        resp = self.resp
        if resp is None:
            conn = await self.pool.connect(self.deadline)
            try:
                resp = await UpstreamClient._exchange(self.pool, conn, self.data,
                                                      self.method == "HEAD", self.deadline,
                                                      None, False)
            except _Stale as exc:
                raise UpstreamError(str(exc.args[0]) if exc.args else
                                    "connection reset") from None
        if self.wants_gzip and _gzipped(resp):
            return await _decode(resp, self.deadline)
        return resp

    def cancel(self) -> None:
        """No more waiting: the connection may hold half an answer, it is closed."""
        answer = self.answer
        if not answer.cancel() and not answer.cancelled():
            answer.exception()  # an answer nobody reads: no "never retrieved" warning
        self.conn.close()


def _request_bytes(target: Target, method: str, request_target: str,
                   headers: list[tuple[str, str]], body: bytes | None, streamed: bool
                   ) -> tuple[bytes, bool]:
    """The request's bytes (head, and a held body chunked) and whether it asks for gzip."""
    # The head's pieces joined once (no string formatted per header line).
    head = [method, " ", request_target, " HTTP/1.1\r\nHost: ", target.host_header, "\r\n"]
    wants_gzip = True
    for name, value in headers:
        if name == "Accept-Encoding" or name == "Range":
            wants_gzip = False
        head.append(name)
        head.append(": ")
        head.append(value)
        head.append("\r\n")
    if body or streamed:
        head.append("Transfer-Encoding: chunked\r\n")
    elif method in ("POST", "PUT", "PATCH"):
        head.append("Content-Length: 0\r\n")
    if wants_gzip:
        head.append("Accept-Encoding: gzip\r\n")
    head.append("\r\n")
    data = "".join(head).encode("latin-1")
    if body:
        data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return data, wants_gzip


def _gzipped(resp: UpstreamResponse) -> bool:
    return resp.gzip and (bool(resp.body) or resp.stream is not None)


async def _decode(resp: UpstreamResponse, deadline: float | None) -> UpstreamResponse:
    """Undo the gzip the client asked for, as Go's transport does (headers removed too): a
    streamed body as it is read, a held one in bounded steps up to `MAX_DECODED_BODY`."""
    headers = [(k, v) for k, v in resp.headers
               if k.lower() not in ("content-encoding", "content-length")]
    if resp.stream is not None:
        assert isinstance(resp.stream, BodyStream)
        return UpstreamResponse(resp.status, headers, b"", InflatingStream(resp.stream))
    try:
        body = await inflate(resp.body, MAX_DECODED_BODY, deadline)
    except zlib.error as exc:
        raise UpstreamError(f"gzip: invalid body: {exc}") from exc
    except DecodedTooLarge as too_large:
        raise UpstreamError(str(too_large)) from None
    except TimeoutError:
        raise UpstreamTimeout() from None
    return UpstreamResponse(resp.status, headers, body)
