"""A small HTTP/1.1 server in the supervisor for telemetry: `/metrics`, `/__stats`, `/__status`.

Not the gateway's server: a few GETs a second from a scraper or a browser, answered from the
node's aggregate. Bounded like any listener facing a network: a header block of at most
`MAX_HEADER` bytes read within `HEADER_TIMEOUT`, bodies refused, at most `MAX_CONNECTIONS`
connections, idle keep-alive connections closed after `IDLE_TIMEOUT`, a handler given
`HANDLER_TIMEOUT`. A bind failure is logged and the listener stays down (KrakenD's metrics
servers do the same): telemetry never stops a gateway from serving.

``add_route(path, handler)``: exact paths; ``prefix=True`` also matches what is under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote

log = logging.getLogger("tidegate")

MAX_HEADER = 16 * 1024
MAX_CONNECTIONS = 64
HEADER_TIMEOUT = 5.0
IDLE_TIMEOUT = 30.0
HANDLER_TIMEOUT = 10.0
WRITE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class TelemetryRequest:
    """A parsed request (header names lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass(slots=True)
class TelemetryResponse:
    """What a handler answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[TelemetryRequest], Awaitable[TelemetryResponse]]


class TelemetryListener:
    """One address, its routes, started and stopped by the supervisor."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: dict[str, Handler] = {}
        self.prefixes: dict[str, Handler] = {}
        self.host: str | None = None
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # routes ------------------------------------------------------------------------------
    def add_route(self, path: str, handler: Handler, *, prefix: bool = False) -> None:
        """Answer `path` (and what is under it with `prefix`) with `handler`; replaces."""
        (self.prefixes if prefix else self.routes)[path] = handler

    def remove_route(self, path: str) -> None:
        """Stop answering `path`."""
        self.routes.pop(path, None)
        self.prefixes.pop(path, None)

    def _find(self, path: str) -> Handler | None:
        handler = self.routes.get(path)
        if handler is not None:
            return handler
        for prefix, h in self.prefixes.items():
            if path.startswith(prefix):
                return h
        return None

    # life --------------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Whether it is bound and accepting."""
        return self._server is not None

    @property
    def bound_port(self) -> int | None:
        """The port actually bound (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> bool:
        """Listen on host:port (host "" = every interface); on failure log and return False."""
        if self._server is not None and (host, port) == (self.host, self.port):
            return True
        await self.stop()
        self.host, self.port = host, port
        try:
            self._server = await asyncio.start_server(
                self._serve, host or None, port, limit=MAX_HEADER, backlog=64,
                reuse_address=True)
        except OSError as exc:
            log.error("%s: cannot listen on %s:%d: %s; telemetry is not served there",
                      self.name, host or "*", port, exc.strerror or exc)
            self._server = None
            return False
        log.info("%s listening on %s:%d", self.name, host or "*", self.bound_port or port)
        return True

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for w in list(self._writers):
            w.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5.0)

    # serving -----------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._writers.add(writer)
        try:
            first = True
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  HEADER_TIMEOUT if first else IDLE_TIMEOUT)
                except (asyncio.LimitOverrunError, ValueError):
                    await self._write(writer, 431, TelemetryResponse(
                        431, b"request header fields too large\n"), close=True)
                    return
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                first = False
                request, keep = _parse(head)
                if request is None:
                    await self._write(writer, 400, TelemetryResponse(400, b"bad request\n"),
                                      close=True)
                    return
                if request.headers.get("content-length", "0") not in ("", "0") or \
                        "transfer-encoding" in request.headers:
                    await self._write(writer, 413, TelemetryResponse(
                        413, b"no request body is accepted here\n"), close=True)
                    return
                response = await self._answer(request)
                head_only = request.method == "HEAD"
                if not await self._write(writer, response.status, response, close=not keep,
                                         head_only=head_only) or not keep:
                    return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, request: TelemetryRequest) -> TelemetryResponse:
        handler = self._find(request.path)
        if handler is None:
            return TelemetryResponse(404, b"404 page not found\n")
        if request.method not in ("GET", "HEAD"):
            return TelemetryResponse(405, b"405 method not allowed\n",
                                     headers=[("Allow", "GET, HEAD")])
        try:
            return await asyncio.wait_for(handler(request), HANDLER_TIMEOUT)
        except Exception:
            log.exception("%s: %s failed", self.name, request.path)
            return TelemetryResponse(500, b"500 internal server error\n")

    async def _write(self, writer: asyncio.StreamWriter, status: int,
                     response: TelemetryResponse, *, close: bool,
                     head_only: bool = False) -> bool:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            writer.write(data if head_only else data + response.body)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (ConnectionError, TimeoutError):
            return False
        return True


def _parse(head: bytes) -> tuple[TelemetryRequest | None, bool]:
    """(request, keep-alive) from a header block; (None, False) if malformed."""
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None, False
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        return None, False
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None, False
        headers[name.lower()] = value.strip()
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return TelemetryRequest(method, unquote(path), query, headers), keep
