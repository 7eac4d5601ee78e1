"""The revoker's admin endpoint: HTTP on 127.0.0.1 instead of KrakenD's Go ``net/rpc``.

KrakenD CE serves the bloom filter's ``Add``/``Check`` over net/rpc (gob encoding, Go clients
only) on ``port``, on every interface. tidegate serves the same two calls as JSON over HTTP on
``127.0.0.1:port`` only (put a proxy in front to reach it from elsewhere):

* ``POST /add``   ``{"elems": ["jti-abc", ...]}`` → ``{"count": 1}``
* ``POST /check`` ``{"elems": ["jti-abc", ...]}`` → ``{"checks": [true]}``

An element is ``<claim>-<value>``, as KrakenD's client writes it. Every worker binds the port
(``SO_REUSEPORT``); they share one filter, so any of them may answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson

__all__ = ["AdminServer"]

log = logging.getLogger("tidegate.revoker")
MAX_HEAD = 16 << 10
MAX_BODY = 1 << 20
READ_TIMEOUT = 10.0


class AdminServer:
    """One worker's listener of the admin endpoint."""

    def __init__(self, port: int, add: Callable[[bytes], None],
                 check: Callable[[bytes], bool], host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._add, self._check = add, check
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind (idempotent: a reload with the same port keeps the listener)."""
        if self._server is None:
            try:
                self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                          reuse_port=True)
            except OSError as exc:
                raise OSError(exc.errno, f"auth/revoker: cannot listen on {self.host}:"
                                         f"{self.port}: {exc.strerror}") from None
            log.info("[SERVICE: Bloomfilter] admin endpoint on http://%s:%d (POST /add, "
                     "POST /check)", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(self._exchange(reader), READ_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, ValueError):
            status, body = 400, b'{"error":"malformed request"}'
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (status, b"OK" if status == 200 else b"Error", len(body), body))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return 431, b'{"error":"request head too large"}'
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if not 0 <= length <= MAX_BODY:
            return 413, b'{"error":"body too large"}'
        body = await reader.readexactly(length)
        path = target.split("?", 1)[0]
        if path not in ("/add", "/check"):
            return 404, b'{"error":"not found: use POST /add or POST /check"}'
        if method != "POST":
            return 405, b'{"error":"use POST"}'
        try:
            elems = orjson.loads(body)["elems"]
            if not isinstance(elems, list) or not all(isinstance(e, str) for e in elems):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, b'{"error":"expected {\\"elems\\": [\\"<claim>-<value>\\", ...]}"}'
        if path == "/add":
            for e in elems:
                self._add(e.encode())
            log.info("[SERVICE: Bloomfilter] %d element(s) added", len(elems))
            return 200, orjson.dumps({"count": len(elems)})
        return 200, orjson.dumps({"checks": [self._check(e.encode()) for e in elems]})
