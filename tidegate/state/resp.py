"""One pipelined Redis connection: every caller writes its command at once, replies come in order.

A rate limit asks Redis once per request. A client that checks a connection out of a pool per
command (redis-py's asyncio client) costs about 55 us of CPU per command here, more than the
whole proxied request; pipelining every concurrent command on one connection, with hiredis
parsing the replies, costs about 9 us (`bench/redis_ratelimit.py`). Redis answers the
commands of a connection in the order they were sent, so a FIFO of futures matches replies to
callers; a dead or silent server fails every waiting caller at once (`fail`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

Arg = bytes | str | int | float


class RespError(Exception):
    """The connection failed (refused, lost, timed out) or Redis answered with an error."""


def pack(args: tuple[Arg, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class Pipelined(asyncio.Protocol):
    """The protocol of one connection; `call` returns a future of the reply."""

    def __init__(self, on_lost: Callable[[Pipelined, str], None]) -> None:
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._on_lost = on_lost
        self.failed: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(f"protocol error: {exc}")
                return
            if reply is False:
                return
            if not self._waiting:
                self.fail("a reply nobody asked for")
                return
            fut, _ = self._waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost ({exc})" if exc else "connection closed by the server")

    def call(self, *args: Arg) -> asyncio.Future[Any]:
        """Send one command now; the future gets its reply (a `hiredis.ReplyError` for an
        error reply) or `RespError` when the connection fails first."""
        if self.failed is not None or self._transport is None:
            raise RespError(self.failed or "not connected")
        self._transport.write(pack(args))
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append((fut, self._loop.time()))
        return fut

    def oldest_wait(self) -> float:
        """Seconds the oldest unanswered command has waited (0: none waits)."""
        return self._loop.time() - self._waiting[0][1] if self._waiting else 0.0

    def fail(self, reason: str) -> None:
        """Close the connection and fail every caller still waiting (once)."""
        if self.failed is not None:
            return
        self.failed = reason
        waiting, self._waiting = self._waiting, deque()
        for fut, _ in waiting:
            if not fut.done():
                fut.set_exception(RespError(reason))
        if self._transport is not None:
            self._transport.abort()
        self._on_lost(self, reason)


async def connect(host: str, port: int, *, timeout: float,
                  on_lost: Callable[[Pipelined, str], None],
                  setup: list[tuple[Arg, ...]]) -> tuple[Pipelined, list[Any]]:
    """Connect and run the `setup` commands (AUTH, SELECT, ...), all within `timeout`;
    (connection, their replies). Raises `RespError` (an error reply included) or `OSError`."""
    loop = asyncio.get_running_loop()
    conn: Pipelined | None = None
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(lambda: Pipelined(on_lost), host, port)
            replies = list(await asyncio.gather(*(conn.call(*cmd) for cmd in setup)))
    except TimeoutError:
        if conn is not None:
            conn.fail("timed out")
        raise RespError(f"no answer from {host}:{port} within {timeout:g}s") from None
    except BaseException:
        if conn is not None:
            conn.fail("setup failed")
        raise
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            conn.fail(str(reply))
            raise RespError(str(reply))
    return conn, replies
