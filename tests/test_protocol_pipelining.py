"""A client that pipelines faster than it is answered cannot make a worker hold its requests:
reading pauses while too many wait their turn, and resumes as they are answered.

In process, with a transport double that records pause/resume and a handler the test releases.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tidegate.config.model import DEFAULT_EDGE
from tidegate.messages import Request, Response
from tidegate.server.protocol import MAX_PIPELINED, HttpProtocol

REQUEST = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


class Generation:
    """Answers each request once the test opens the gate."""

    def __init__(self) -> None:
        self.inflight = 0
        self.access_log = None
        self.gate = asyncio.Event()
        self.answered = 0

    def leave(self) -> None:
        self.inflight -= 1

    async def handle(self, request: Request) -> Response:
        await self.gate.wait()
        self.answered += 1
        return Response(200, [("Content-Type", "text/plain")], b"ok")


class State:
    def __init__(self) -> None:
        self.current = Generation()
        self.connections: set[Any] = set()
        self.draining = False
        self.limits = DEFAULT_EDGE

    def all_closed(self) -> None:
        pass


class Transport:
    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False


def test_reading_pauses_while_too_many_pipelined_requests_wait() -> None:
    async def scenario() -> tuple[int, int, bool, int, int]:
        state = State()
        transport = Transport()
        proto = HttpProtocol(state)
        proto.connection_made(transport)  # type: ignore[arg-type]
        # 200 requests in reads of 4; the first one blocks in the handler.
        for _ in range(50):
            if transport.paused:
                break  # a real transport delivers nothing more while paused
            proto.data_received(REQUEST * 4)
        await asyncio.sleep(0)
        waiting = len(proto._queue)
        paused = transport.paused
        state.current.gate.set()
        for _ in range(1000):  # let the queue be served (bounded)
            await asyncio.sleep(0)
            if not proto._queue:
                break
        return waiting, transport.pauses, paused and not transport.paused, \
            state.current.answered, len(transport.written)

    waiting, pauses, resumed, answered, written = asyncio.run(scenario())
    assert MAX_PIPELINED <= waiting < MAX_PIPELINED + 4  # bounded by the limit and one read
    assert pauses == 1 and resumed
    assert answered == written == waiting + 1
