"""The worker's side of a reload: one slot holding the serving generation.

`swap` makes a built generation current and starts retiring the one it replaces: that one
drains (its in-flight requests finish on it), then closes its resources and is retired. `close`
is the worker's stop: the current generation and every one still retiring are drained, closed
and retired, and no retire task is left pending or unawaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from tidegate.pipeline.lifecycle import Lifecycle, Phase

log = logging.getLogger("tidegate.worker")

RETIRE_SECONDS = 60.0


class Retirable(Protocol):
    """What the slot needs of a generation."""

    id: int
    inflight: int
    lifecycle: Lifecycle

    async def drained(self) -> None:
        """Return once no request uses the generation."""

    async def close(self) -> None:
        """Release what the generation owns."""


G = TypeVar("G", bound=Retirable)


class GenerationSlot(Generic[G]):
    """The current generation of one worker, and the ones still draining behind it."""

    def __init__(self, publish: Callable[[G], None],
                 retire_seconds: float = RETIRE_SECONDS) -> None:
        self.current: G | None = None
        self._publish = publish  # what the request path reads (one attribute, no indirection)
        self._retire_seconds = retire_seconds
        self._retiring: dict[G, asyncio.Task[None]] = {}
        self._closing: dict[G, asyncio.Future[None]] = {}
        self.first = asyncio.Event()  # set by the first swap: only then may the worker accept

    def swap(self, gen: G, detail: str = "") -> None:
        """Serve `gen` from now on; the generation it replaces starts draining."""
        old = self.current
        self.current = gen
        self._publish(gen)
        gen.lifecycle.advance(Phase.ACTIVE, detail)
        self.first.set()
        if old is not None:
            old.lifecycle.advance(Phase.DRAINING, f"{old.inflight} requests in flight")
            self._retiring[old] = asyncio.ensure_future(self._retire(old))

    @property
    def retiring(self) -> int:
        """How many replaced generations are still draining or closing."""
        return len(self._retiring)

    async def wait_retired(self) -> None:
        """Return once every replaced generation has been retired."""
        while self._retiring:
            await asyncio.gather(*self._retiring.values(), return_exceptions=True)

    async def _retire(self, gen: G) -> None:
        try:
            await asyncio.wait_for(gen.drained(), self._retire_seconds)
        except TimeoutError:
            log.warning("generation %d still had %d requests after %.0fs; closing it",
                        gen.id, gen.inflight, self._retire_seconds)
        await self._finish(gen)
        self._retiring.pop(gen, None)

    async def _finish(self, gen: G) -> None:
        """Close once (shielded: a cancelled caller never leaves resources half closed)."""
        closing = self._closing.get(gen)
        if closing is None:
            closing = self._closing[gen] = asyncio.ensure_future(gen.close())
            closing.add_done_callback(lambda _: self._closed(gen))
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            raise
        except Exception:  # a close that fails must not stop the others
            log.exception("closing generation %d failed", gen.id)

    def _closed(self, gen: G) -> None:
        self._closing.pop(gen, None)
        if gen.lifecycle.phase is Phase.DRAINING:
            gen.lifecycle.advance(Phase.RETIRED)

    async def close(self) -> None:
        """The worker stops: retire the current generation and every one still retiring.

        Called once the connections are gone (or the drain deadline passed): nothing waits
        on these generations any more, so their retire tasks are cancelled and awaited, and
        each generation is closed here instead.
        """
        current, self.current = self.current, None
        if current is not None:
            current.lifecycle.advance(Phase.DRAINING, "worker stopping")
        tasks = list(self._retiring.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        gens = [*self._retiring, *([current] if current is not None else [])]
        self._retiring.clear()
        for gen in gens:
            await self._finish(gen)
        pending = list(self._closing.values())  # closes a cancelled retire task had begun
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
