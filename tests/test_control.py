"""The control pipe's typed messages, and the worker-side generation slot."""

from __future__ import annotations

import asyncio

import pytest

from tidegate.pipeline.lifecycle import Lifecycle, Phase
from tidegate.reload.control import (
    Failed,
    Load,
    Loaded,
    ProtocolError,
    Status,
    Stop,
    decode,
    encode,
)
from tidegate.reload.slot import GenerationSlot


@pytest.mark.parametrize("msg", [
    Load(3, "abc", {"version": 3, "endpoints": []}, debug=True),
    Load(4, "def", {}, unprotected=["auth/validator", "tls"]),
    Status({"message": "bad", "line": 4}), Status(None), Stop(), Loaded(3),
    Failed(3, "boom")])
def test_every_message_round_trips(msg: object) -> None:
    line = encode(msg)  # type: ignore[arg-type]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == msg


@pytest.mark.parametrize("line", [b'{"op": "reload"}\n', b'{"op": "loaded"}\n',
                                  b'{"op": "loaded", "gen": 1, "extra": 2}\n', b"not json\n",
                                  b"[1]\n"])
def test_anything_else_is_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(line)


class FakeGeneration:
    """Stands for a Generation: requests in flight, a close that takes a moment."""

    def __init__(self, gen_id: int) -> None:
        self.id = gen_id
        self.inflight = 0
        self.lifecycle = Lifecycle(gen_id, f"h{gen_id}", Phase.VALIDATED)
        self.closed = 0
        self.done = asyncio.Event()

    async def drained(self) -> None:
        await self.done.wait()

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.closed += 1


def test_swap_publishes_and_retires_the_replaced_generation() -> None:
    async def scenario() -> None:
        seen: list[object] = []
        slot = GenerationSlot(seen.append)
        one, two = FakeGeneration(1), FakeGeneration(2)
        slot.swap(one)
        assert slot.first.is_set() and seen == [one]
        slot.swap(two)
        assert seen == [one, two] and one.lifecycle.phase is Phase.DRAINING
        one.done.set()
        await slot.wait_retired()
        assert one.lifecycle.phase is Phase.RETIRED and one.closed == 1
        await slot.close()
        assert two.lifecycle.phase is Phase.RETIRED and two.closed == 1

    asyncio.run(scenario())


def test_close_retires_generations_still_draining_and_awaits_their_tasks() -> None:
    async def scenario() -> None:
        slot = GenerationSlot(lambda gen: None)
        gens = [FakeGeneration(i) for i in (1, 2, 3)]
        for gen in gens:
            slot.swap(gen)
        gens[0].inflight = gens[1].inflight = 1  # never drain by themselves
        await slot.close()
        assert [g.lifecycle.phase for g in gens] == [Phase.RETIRED] * 3
        assert [g.closed for g in gens] == [1, 1, 1]
        assert slot.retiring == 0
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current] == []

    asyncio.run(scenario())
