"""The per-worker store of state that outlives generations, counted by reference.

Entries are keyed by ``(namespace, scope, fingerprint)``:

* ``scope`` is ``"service"``, ``"METHOD /endpoint"`` or that plus ``" #<backend index>"``: what a
  user would call the same place after a reload. Never a JSON path, which shifts when an endpoint
  is inserted above.
* ``fingerprint`` hashes exactly what the state depends on (each component says what): an
  unchanged section leases the same entry, a changed one gets a fresh entry.

The store is injected (one per worker process, never a module global) so that two workers, or
two tests, never share an entry by accident.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from tidegate.state.buckets import BucketStore, LocalBuckets

log = logging.getLogger("tidegate.state")

StateKey = tuple[str, str, str]
T = TypeVar("T")


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-able value (key order does not matter)."""
    blob = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                        default=repr)
    return hashlib.sha256(blob).hexdigest()[:16]


class StateStore:
    """Entries leased by the generations of one worker, plus the node's token buckets."""

    def __init__(self, buckets: BucketStore | None = None) -> None:
        self.buckets: BucketStore = buckets if buckets is not None else LocalBuckets()
        self._values: dict[StateKey, Any] = {}
        self._refs: dict[StateKey, int] = {}
        self._closing: set[asyncio.Future[Any]] = set()

    def lease(self, key: StateKey, create: Callable[[], T]) -> T:
        """The entry under `key`, created on first lease; pair every lease with `release`."""
        if key in self._values:
            self._refs[key] += 1
            return self._values[key]  # type: ignore[no-any-return]
        value = create()
        self._values[key] = value
        self._refs[key] = 1
        return value

    def release(self, key: StateKey) -> None:
        """One user fewer; the last one closes the entry (``close()``; an async close runs
        as a task that `settle` awaits)."""
        refs = self._refs.get(key)
        if refs is None:
            raise KeyError(f"state {key} released more often than leased")
        if refs > 1:
            self._refs[key] = refs - 1
            return
        del self._refs[key]
        value = self._values.pop(key)
        close = getattr(value, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._closing.add(task)
                task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Future[Any]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("closing state failed: %s", task.exception())

    async def settle(self) -> None:
        """Wait for the asynchronous closes still running (a worker's stop)."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def refs(self, key: StateKey) -> int:
        """How many generations hold `key` (0: not in the store)."""
        return self._refs.get(key, 0)

    def held(self) -> list[StateKey]:
        """Every key held now (for `/__health` and tests)."""
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)
