"""An upstream connection's deadline timer outlives its exchanges (decision 68): every exchange
on a reused connection still fails at its own deadline, later or earlier than the last one's."""

from __future__ import annotations

import asyncio
import time

import pytest

from tidegate.upstream.client import UpstreamClient, UpstreamTimeout, parse_target

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


class Backend:
    """Answers `/fast` at once and never answers `/hang`; counts its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if head.startswith(b"GET /fast "):
                    writer.write(ANSWER)
                    await writer.drain()
                # /hang: no answer; the client gives up at its deadline and closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _exchanges(first_timeout: float, second_timeout: float) -> tuple[float, int]:
    """A fast exchange, then a hanging one on the same pooled connection: (seconds the second
    took to fail, connections the backend saw)."""
    async with Backend() as backend:
        client = UpstreamClient()
        target = parse_target(backend.url)
        loop = asyncio.get_running_loop()
        try:
            first = await client.send(target, "GET", "/fast", [], b"",
                                      loop.time() + first_timeout)
            assert first.status == 200 and first.body == b"{}"
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout):
                await client.send(target, "GET", "/hang", [], b"", loop.time() + second_timeout)
            return time.monotonic() - started, backend.connections
        finally:
            await client.close()


def test_a_later_deadline_on_a_reused_connection_is_kept() -> None:
    # The timer armed for the first exchange (0.2 s) fires while the second runs: re-armed at
    # the second's own deadline, it fails then, not at the first's and not never.
    took, connections = asyncio.run(_exchanges(0.2, 1.0))
    assert connections == 1
    assert 0.9 <= took < 5.0


def test_an_earlier_deadline_on_a_reused_connection_is_kept() -> None:
    # The first exchange armed the timer 30 s ahead: the second's deadline (0.3 s) re-arms it.
    took, connections = asyncio.run(_exchanges(30.0, 0.3))
    assert connections == 1
    assert 0.25 <= took < 5.0
