"""Helpers for the pipeline tests: scripted backends on 127.0.0.1 and a generation to ask.

A `ScriptedBackend` is a real asyncio TCP server on port 0 whose answer per path is a small
coroutine, so a test can make a backend refuse, hang, reset mid-body, speak garbage or send
megabytes. `Gateway` compiles a configuration into a real `Generation` and hands it client
requests as the server's protocol does. No sleeps: hanging backends wait on an event that the
teardown sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from tidegate.config.model import build_service
from tidegate.messages import Request, Response
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.state import StateStore
from tidegate.telemetry.recorder import ServerMeter


@dataclass
class Seen:
    """One request as a scripted backend received it."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


Behaviour = Callable[["ScriptedBackend", asyncio.StreamWriter, Seen], Awaitable[bool]]


class ScriptedBackend:
    """An HTTP/1.1 backend whose behaviour is chosen per path; records what it receives."""

    def __init__(self, routes: dict[str, Behaviour]) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> ScriptedBackend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int((await reader.readline()).strip(), 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
                seen = Seen(method, target, headers)
                self.seen.append(seen)
                behaviour = self.routes.get(seen.path, answer(404, b"not found", "text/plain"))
                if not await behaviour(self, writer, seen):
                    writer.transport.abort()
                    return
        except (ConnectionError, asyncio.CancelledError):
            return  # the test is over or the gateway hung up
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


def answer(status: int, body: bytes | dict[str, Any] | list[Any], content_type: str =
           "application/json", delay: float = 0.0,
           headers: tuple[tuple[str, str], ...] = ()) -> Behaviour:
    """A well-formed answer (after `delay` seconds), connection kept alive."""
    payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body

    async def behave(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(backend.release.wait(), delay)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        ctype = f"Content-Type: {content_type}\r\n" if content_type else ""
        w.write(f"HTTP/1.1 {status} X\r\n{ctype}{extra}Content-Length: {len(payload)}\r\n\r\n"
                .encode() + payload)
        await w.drain()
        return True

    return behave


def reply_with(fn: Callable[[Seen], dict[str, Any]]) -> Behaviour:
    """A 200 JSON answer computed from the request."""

    async def behave(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
        return await answer(200, fn(seen))(backend, w, seen)

    return behave


async def hang(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    """Never answer (until the test ends)."""
    await backend.release.wait()
    return False


async def reset_mid_body(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    """Promise 10000 bytes, send a few, then reset the connection."""
    w.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n'
            b'\r\n{"partial": "')
    await w.drain()
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


async def garbage(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    """Bytes that are not HTTP at all."""
    w.write(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n")
    await w.drain()
    return False


async def switch_protocols(backend: ScriptedBackend, w: asyncio.StreamWriter,
                           seen: Seen) -> bool:
    """101 to a request that asked for no upgrade, then bytes of another protocol."""
    w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n\x81\x05hello")
    await w.drain()
    await backend.release.wait()
    return False


async def endless_head(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    """A status line, then one header that never ends (until 11 MiB were sent)."""
    w.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    with contextlib.suppress(ConnectionError):
        for _ in range(176):
            w.write(b"a" * 65536)
            await w.drain()
    await backend.release.wait()
    return False


async def close_silently(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    """Accept the request, close without a byte."""
    return False


def refused_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class Answer:
    """What the client got."""

    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class Gateway:
    """A compiled generation answering requests in this event loop."""

    def __init__(self, config: dict[str, Any], store: StateStore | None = None) -> None:
        config = {"version": 3, **config}
        self.gen = Generation(build_service(config), 1, "test", debug=False,
                              status=ServerStatus())
        self.store = store if store is not None else StateStore()
        self.provisioned = False

    async def provision(self) -> None:
        """Lease state as a worker does before the swap (once)."""
        if not self.provisioned:
            self.provisioned = True
            await self.gen.provision(self.store)

    async def get(self, target: str, headers: dict[str, str] | None = None,
                  method: str = "GET") -> Answer:
        path, _, query = target.partition("?")
        hdrs = [("host", "gw.test")] + [(k.lower(), v) for k, v in (headers or {}).items()]
        req = Request(method, target, path, query, hdrs, b"", "127.0.0.1", "1.1")
        await self.provision()
        started = perf_counter()
        resp: Response = await self.gen.handle(req)
        meter = req.metrics_route  # what the protocol records the answer into, as it does
        if isinstance(meter, ServerMeter):
            meter.record(req, resp, started)
        flat = {k.lower(): v for k, v in resp.headers}
        return Answer(resp.status, flat, resp.body, list(resp.headers))

    async def close(self) -> None:
        await self.gen.close()
        await asyncio.sleep(0)  # let the closed connections report connection_lost


def endpoint(path: str, *backends: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An endpoint config."""
    return {"endpoint": path, "backend": list(backends), **extra}


def backend_cfg(host: str, url_pattern: str, **extra: Any) -> dict[str, Any]:
    """A backend config."""
    return {"host": [host], "url_pattern": url_pattern, **extra}


def service(*endpoints: dict[str, Any], return_error_msg: bool = True,
            **root: Any) -> dict[str, Any]:
    """A service config (router.return_error_msg on unless told)."""
    cfg: dict[str, Any] = {"endpoints": list(endpoints), "cache_ttl": "60s", **root}
    if return_error_msg:
        cfg["extra_config"] = {"router": {"return_error_msg": True}}
    return cfg


def run(coro: Awaitable[Any]) -> Any:
    """Run one test scenario in a fresh event loop."""
    async def main() -> Any:
        return await coro

    return asyncio.run(main())
