"""`telemetry/influx`: krakend-metrics' numbers pushed in line protocol every `ttl`.

``POST <address>/write?db=<db>&precision=s`` (InfluxDB 1.x API, basic auth when a username is
set), from the supervisor over the node's aggregate. A failed write is logged and its batch kept
for the next push, at most `buffer_size` batches (krakend-influx's retry buffer); the push never
blocks anything else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
from urllib.parse import quote, urlsplit

from tidegate.telemetry.aggregate import NodeMetrics
from tidegate.telemetry.metrics_config import InfluxConfig
from tidegate.telemetry.stats import influx_lines, stats_view

log = logging.getLogger("tidegate")

WRITE_TIMEOUT = 5.0


async def post(url: str, body: bytes, headers: dict[str, str],
               timeout: float = WRITE_TIMEOUT) -> int:
    """One HTTP/1.1 POST; returns the status code (raises OSError, TimeoutError)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if https else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query

    async def exchange() -> int:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if https else None)
        try:
            head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}",
                    f"Content-Length: {len(body)}", "Connection: close",
                    *(f"{k}: {v}" for k, v in headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readline()
            fields = status_line.split(b" ", 2)
            if len(fields) < 2 or not fields[1].isdigit():
                raise OSError(f"not an HTTP answer: {status_line[:60]!r}")
            return int(fields[1])
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.wait_for(exchange(), timeout)


class InfluxPusher:
    """Pushes every `config.ttl` until stopped."""

    def __init__(self, config: InfluxConfig, node: NodeMetrics,
                 router: bool = True, proxy: bool = True, backend: bool = True) -> None:
        self.config = config
        self.node = node
        self.layers = (router, proxy, backend)
        self.host = socket.gethostname()
        self.pending: list[bytes] = []
        self._last: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.pushed = 0  # batches written (tests, /__health)

    def start(self) -> None:
        """Start the periodic push."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop pushing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"{self.config.address}/write?db={quote(self.config.db)}&precision=s"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.ttl)
            await self.push()

    async def push(self) -> None:
        """One push: this period's points, after the batches that failed before."""
        router, proxy, backend = self.layers
        view = stats_view(self.node, router=router, proxy=proxy, backend=backend)
        lines = list(influx_lines(view, self.host, self._last))
        if lines:
            self.pending.append(("\n".join(lines) + "\n").encode())
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.username:
            token = base64.b64encode(
                f"{self.config.username}:{self.config.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        while self.pending:
            try:
                status = await post(self.url, self.pending[0], headers)
                if status >= 300:
                    raise OSError(f"HTTP {status}")
            except (OSError, TimeoutError) as exc:
                if not self._failing:
                    log.warning("telemetry/influx: writing to %s failed: %s", self.url, exc)
                self._failing = True
                keep = max(self.config.buffer_size, 1)
                del self.pending[:-keep]
                return
            self.pending.pop(0)
            self.pushed += 1
            if self._failing:
                log.info("telemetry/influx: writing to %s works again", self.url)
            self._failing = False
