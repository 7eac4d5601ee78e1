"""A connection's requests are served by one task that waits between them; a request handed
over while that task is being cancelled by someone else (a timeout's late cancellation) is
still answered, and a client that leaves ends the task.

In process, with the transport double of `test_protocol_version`.
"""

from __future__ import annotations

import asyncio

from tests.test_protocol_version import State, Transport
from tidegate.server.protocol import HttpProtocol

REQUEST = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


async def _answered(state: State, count: int) -> None:
    while len(state.current.versions) < count:
        await asyncio.wait_for(state.current.all_in.wait(), 5)
        state.current.all_in.clear()


def _scenario(cancel_first: bool) -> tuple[int, int, int]:
    async def scenario() -> tuple[int, int, int]:
        state = State(1)
        transport = Transport()
        proto = HttpProtocol(state)  # type: ignore[arg-type]
        proto.connection_made(transport)  # type: ignore[arg-type]
        proto.data_received(REQUEST)
        await _answered(state, 1)
        task = proto._task
        assert task is not None
        for _ in range(100):  # the task goes on to wait for the next request
            if proto._waiter is not None:
                break
            await asyncio.sleep(0)
        assert proto._waiter is not None
        state.current.expected = 2
        if cancel_first:
            task.cancel()
            proto.data_received(REQUEST)
        else:
            proto.data_received(REQUEST)
            task.cancel()
        await _answered(state, 2)
        proto.connection_lost(None)
        if proto._task is not None:
            await asyncio.gather(proto._task, return_exceptions=True)
        done = int(proto._task is not None and proto._task.done())
        return len(state.current.versions), len(transport.written), done

    return asyncio.run(scenario())


def test_a_request_handed_over_as_the_task_is_cancelled_is_answered() -> None:
    assert _scenario(cancel_first=False) == (2, 2, 1)


def test_a_request_after_the_waiting_task_was_cancelled_is_answered() -> None:
    assert _scenario(cancel_first=True) == (2, 2, 1)


def test_requests_in_turn_are_served_by_one_task() -> None:
    async def scenario() -> tuple[int, bool]:
        state = State(1)
        transport = Transport()
        proto = HttpProtocol(state)  # type: ignore[arg-type]
        proto.connection_made(transport)  # type: ignore[arg-type]
        tasks = set()
        for n in range(1, 4):
            state.current.expected = n
            proto.data_received(REQUEST)
            await _answered(state, n)
            tasks.add(proto._task)
        task = proto._task
        assert task is not None
        proto.connection_lost(None)  # the client leaves: the waiting task ends
        await asyncio.gather(task, return_exceptions=True)
        return len(tasks), task.cancelled()

    assert asyncio.run(scenario()) == (1, True)
