"""Bodies that flow in pieces: a bounded buffer between a transport and one coroutine.

A request body larger than what arrives with its head, and a ``no-op`` backend answer, are not
held whole: the transport that receives them feeds a `BodyStream`, the coroutine that sends
them on reads it, and when more than `HIGH_WATER` bytes wait in between, the receiving
transport stops reading until the reader has caught up. Memory per connection is then bounded
by these buffers (and the kernel's), not by the size of a body.

Gzip is undone in bounded steps too (`Inflater`): at most `INFLATE_STEP` bytes of output per
step, so a small compressed body that inflates to gigabytes never exists whole, and a held
answer whose decoded size passes a bound fails with `DecodedTooLarge`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable

# Buffered bytes that pause the producer, and the level at which it resumes.
HIGH_WATER = 256 << 10
LOW_WATER = 64 << 10
# Most bytes one inflate step produces (about 1 ms of zlib), then the loop runs others.
INFLATE_STEP = 256 << 10


class BodyTooLarge(Exception):
    """A request body passed the limit that applies to it (answered with 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"http: request body too large (limit {limit} bytes)")
        self.limit = limit


class DecodedTooLarge(Exception):
    """A gzip body inflated past the bound on decoded bodies tidegate holds."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"gzip: decoded body exceeds {limit} bytes")
        self.limit = limit


class BodyStream:
    """Chunks from a producer (transport callbacks) to one consumer coroutine, with
    back-pressure: `pause` is called when more than `HIGH_WATER` bytes wait, `resume` when
    the consumer has taken them down to `LOW_WATER`.

    ``length`` is the announced size when known (Content-Length). ``limit`` (0: none) makes
    `read` fail with `BodyTooLarge` once more bytes than that were received.
    """

    __slots__ = (
        "_chunks",
        "_eof",
        "_error",
        "_pause",
        "_paused",
        "_resume",
        "_size",
        "_waiter",
        "consumed",
        "length",
        "limit",
        "on_abandon",
        "received",
    )

    def __init__(self, pause: Callable[[], None] | None = None,
                 resume: Callable[[], None] | None = None, length: int | None = None) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pause = pause
        self._resume = resume
        self._paused = False
        self.length = length
        self.limit = 0
        self.received = 0
        self.consumed = 0
        # Called once when the consumer gives up before the end (the producer can stop).
        self.on_abandon: Callable[[], None] | None = None

    # producer side -------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """A chunk arrived (ignored once the stream ended or failed)."""
        if self._eof or self._error is not None:
            return
        self._chunks.append(data)
        self._size += len(data)
        self.received += len(data)
        if self._size > HIGH_WATER and not self._paused and self._pause is not None:
            self._paused = True
            self._pause()
        self._wake()

    def finish(self) -> None:
        """The body is complete."""
        self._eof = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        """The body will not complete: the reader gets `exc`."""
        if self._eof or self._error is not None:
            return
        self._error = exc
        self._chunks.clear()
        self._size = 0
        self._wake()

    @property
    def done(self) -> bool:
        """Every byte was received (the consumer may not have read them all yet)."""
        return self._eof

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # consumer side -------------------------------------------------------------------------
    async def read(self) -> bytes:
        """The next chunk; ``b""`` at the end. Raises the producer's failure."""
        while True:
            if self.limit and self.received > self.limit:
                raise BodyTooLarge(self.limit)
            if self._chunks:
                chunk = self._chunks.popleft()
                self._size -= len(chunk)
                self.consumed += len(chunk)
                if self._paused and self._size <= LOW_WATER:
                    self._paused = False
                    if self._resume is not None:
                        self._resume()
                return chunk
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def read_all(self, limit: int) -> bytes:
        """The whole body, or `BodyTooLarge` as soon as more than `limit` bytes arrived."""
        if self.length is not None and self.length > limit:
            raise BodyTooLarge(limit)
        self.limit = limit if not self.limit else min(limit, self.limit)
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)

    def abandon(self) -> None:
        """The consumer stops reading before the end: drop what waits, tell the producer."""
        if not self._eof:
            self.fail(ConnectionAbortedError("body abandoned"))
        callback, self.on_abandon = self.on_abandon, None
        if callback is not None:
            callback()


class Inflater:
    """Gzip undone in steps of at most `INFLATE_STEP` output bytes."""

    __slots__ = ("_d", "_full", "_tail", "produced")

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._full = False
        self.produced = 0

    def step(self, data: bytes = b"") -> bytes:
        """Inflate `data` (or what the previous step left); ``b""`` once the input needs
        more. Raises ``zlib.error`` on a corrupt stream."""
        src = self._tail + data if self._tail and data else (data or self._tail)
        if self._d.eof and src:  # another gzip member follows (Go reads them all)
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = self._d.decompress(src, INFLATE_STEP)
        if self._d.eof and self._d.unused_data and len(out) < INFLATE_STEP:
            self._tail = self._d.unused_data
            self._full = True  # come back for the next member
            self.produced += len(out)
            return out
        self._tail = self._d.unconsumed_tail
        # A full step may leave output inside zlib even when all the input was taken.
        self._full = len(out) >= INFLATE_STEP and not self._d.eof
        self.produced += len(out)
        return out

    @property
    def pending(self) -> bool:
        """The last step had no room for everything its input gives."""
        return bool(self._tail) or self._full

    @property
    def eof(self) -> bool:
        """The gzip stream ended."""
        return self._d.eof


async def inflate(body: bytes, limit: int, deadline: float | None = None) -> bytes:
    """A gzip body inflated whole, in steps that let the loop serve others in between, failing
    with `DecodedTooLarge` past `limit` decoded bytes (before holding more than that) and with
    `TimeoutError` once the loop's clock passes `deadline`."""
    inflater = Inflater()
    out = inflater.step(body)
    if not inflater.pending:  # the common case: small, done in one step, no yield
        if not inflater.eof:
            raise zlib.error("unexpected end of gzip stream")
        return out
    parts = [out]
    loop = asyncio.get_running_loop()
    while inflater.pending:
        await asyncio.sleep(0)
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError
        parts.append(inflater.step())
        if inflater.produced > limit:
            raise DecodedTooLarge(limit)
    if not inflater.eof:
        raise zlib.error("unexpected end of gzip stream")
    return b"".join(parts)


class InflatingStream:
    """A `BodyStream` of gzip read as its decoded bytes, one bounded step per `read`."""

    __slots__ = ("_inflater", "_inner", "length")

    def __init__(self, inner: BodyStream) -> None:
        self._inner = inner
        self._inflater = Inflater()
        self.length: int | None = None  # unknown once decoded

    @property
    def done(self) -> bool:
        """The compressed body was received whole."""
        return self._inner.done

    async def read(self) -> bytes:
        """The next decoded piece; ``b""`` at the end."""
        inflater = self._inflater
        while True:
            if inflater.pending:
                out = inflater.step()
            else:
                chunk = await self._inner.read()
                if not chunk:
                    if not inflater.eof:
                        raise zlib.error("unexpected end of gzip stream")
                    return b""
                out = inflater.step(chunk)
            if out:
                return out

    def abandon(self) -> None:
        """See `BodyStream.abandon`."""
        self._inner.abandon()
