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
import ssl
import zlib
from typing import ClassVar

from tidegate.bodies import BodyStream, DecodedTooLarge, InflatingStream, inflate
from tidegate.config.tls import ClientTLS
from tidegate.config.tls_context import client_context
from tidegate.state import StateKey, StateStore, fingerprint
from tidegate.upstream.connection import (
    Connection,
    Pool,
    Stale,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from tidegate.upstream.target import Target, parse_target

__all__ = ["HeadLines", "Pending", "Pool", "PoolRegistry", "Target", "UpstreamClient",
           "UpstreamError", "UpstreamResponse", "UpstreamTimeout", "parse_target"]

# The largest gzip answer, once inflated, that is held whole (to be decoded as JSON, XML...).
# Go has no bound; without one a 1 MiB body can ask for gigabytes. A streamed (no-op) answer
# is inflated as it is copied out and needs none.
MAX_DECODED_BODY = 32 << 20

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

    def acquire(self, key: PoolKey, tls: ClientTLS | None = None) -> Pool:
        """The pool for an address, created on first use; pair with `release`."""
        return self.store.lease(self.state_key(key, tls), lambda: self._new_pool(key, tls))

    def _new_pool(self, key: PoolKey, tls: ClientTLS | None) -> Pool:
        ctx = None
        if key[0] == "https":
            ctx = self._contexts.get(tls)
            if ctx is None:
                ctx = self._contexts[tls] = client_context(tls)
        return Pool(key[1], key[2], ctx)

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
        self._pools: dict[PoolKey, Pool] = {}
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

    def _pool(self, target: Target) -> Pool:
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
            except Stale:
                conn.close()
            except BaseException:
                conn.close()
                raise
            else:
                if resp.stream is None:
                    pool.release(conn)  # else when its body is done (see Connection)
        elif conn is not None:
            try:
                resp = await self._exchange(pool, conn, data, head_only, deadline,
                                            body_stream, stream)
            except Stale as exc:
                if body_stream is not None and body_stream.consumed:
                    # Part of a body that cannot be read again went to a dead connection.
                    raise UpstreamError(str(exc.args[0]) if exc.args else
                                        "connection reset") from None
        if resp is None:
            conn = await pool.connect(deadline)
            try:
                resp = await self._exchange(pool, conn, data, head_only, deadline,
                                            body_stream, stream)
            except Stale as exc:
                raise UpstreamError(str(exc.args[0]) if exc.args else
                                    "connection reset") from None
        if wants_gzip and _gzipped(resp):
            return await _decode(resp, deadline)
        return resp

    def pool(self, target: Target) -> Pool:
        """The keep-alive pool of `target`'s address (a caller may keep it for `start`)."""
        return self._pool(target)

    @staticmethod
    def start(pool: Pool, target: Target, method: str, request_target: str,
              headers: list[tuple[str, str]], body: bytes, deadline: float,
              lines: HeadLines | None = None) -> Pending | None:
        """`send` without a coroutine, when it can start at once: on an idle connection of
        `pool` (`target`'s) the request is written now and its answer is a future (see
        `Pending`). None when no connection is idle (nothing was written; `send` opens one).
        `lines`: `headers` on the wire's form, when several backends send them."""
        conn = pool.take_idle()
        if conn is None:
            return None
        data, wants_gzip = _request_bytes(target, method, request_target, headers, body, False,
                                          lines)
        return Pending(pool, conn, conn.send(data, method == "HEAD", deadline), data, deadline,
                       wants_gzip, method, request_target, headers, body)

    @staticmethod
    async def _exchange(pool: Pool, conn: Connection, data: bytes,
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
            pool.release(conn)  # else when its body is done (see Connection)
        return resp

    @staticmethod
    async def _with_body(conn: Connection, answer: asyncio.Future[UpstreamResponse],
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

    def __init__(self, pool: Pool, conn: Connection,
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
        except Stale:
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
            except Stale as exc:
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


class HeadLines:
    """A request's header lines on the wire's form, and whether they leave the client to ask
    for gzip: made once for several backends that send the same headers (a merge)."""

    __slots__ = ("headers", "lines", "wants_gzip")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        head: list[str] = []
        self.wants_gzip = _header_lines(head, headers)
        self.lines = "".join(head)


def _header_lines(head: list[str], headers: list[tuple[str, str]]) -> bool:
    """Append the pieces of `headers`' lines to `head` (no string formatted per line);
    whether the client is left to ask for gzip."""
    wants_gzip = True
    for name, value in headers:
        if name == "Accept-Encoding" or name == "Range":
            wants_gzip = False
        head.append(name)
        head.append(": ")
        head.append(value)
        head.append("\r\n")
    return wants_gzip


def _request_bytes(target: Target, method: str, request_target: str,
                   headers: list[tuple[str, str]], body: bytes | None, streamed: bool,
                   lines: HeadLines | None = None) -> tuple[bytes, bool]:
    """The request's bytes (head, and a held body chunked) and whether it asks for gzip
    (`lines`: `headers` already on the wire's form)."""
    # The head's pieces joined once.
    head = [method, " ", request_target, " HTTP/1.1\r\nHost: ", target.host_header, "\r\n"]
    if lines is None:
        wants_gzip = _header_lines(head, headers)
    else:
        head.append(lines.lines)
        wants_gzip = lines.wants_gzip
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
