"""Token buckets with node-wide semantics, whatever the number of worker processes.

KrakenD runs one process per node, so a limit of 100 req/s means 100 req/s for the node.
tidegate runs N workers; if each kept its own buckets a node would allow N x the limit. The
buckets therefore live in one shared-memory table (a memfd the supervisor creates and every
worker maps), guarded by one POSIX record lock: an uncontended `take` is two `fcntl` calls and
a few struct reads (~3 us), paid only by requests that pass a limit.

The bucket is a continuous token bucket: it refills at `rate` tokens per second up to
`capacity`, and a request takes `cost` tokens when it has them. A full bucket carries no
information, so its slot is free for reuse: entries of removed endpoints or departed clients
vanish without bookkeeping. Redis (for limits shared by several nodes) implements the same
`BucketStore` protocol.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["BucketStore", "LocalBuckets", "SharedBuckets", "Taken"]


@dataclass(frozen=True, slots=True)
class Taken:
    """The outcome of one `take`: allowed or not, and what headers like RateLimit-* need."""

    allowed: bool
    remaining: float      # tokens left after this take
    retry_after: float    # seconds until `cost` tokens are there again (0 when allowed)
    reset: float          # seconds until the bucket is full again


class BucketStore(Protocol):
    """What a rate limit needs: take tokens from the bucket named `key`."""

    def take(self, key: str, rate: float, capacity: float, cost: float = 1.0) -> Taken:
        """Refill `key`'s bucket (`rate` tokens/s up to `capacity`), then take `cost` tokens."""
        ...


class AsyncBucketStore(Protocol):
    """Buckets behind a network round trip (Redis): the same bucket, taken with an await.
    Kept apart from `BucketStore` so the local take stays a plain call on the hot path."""

    async def take_async(self, key: str, rate: float, capacity: float,
                         cost: float = 1.0) -> Taken:
        """As `BucketStore.take`, for every node that shares the store."""
        ...


def _refill_and_take(tokens: float, stamp: float, now: float, rate: float, capacity: float,
                     cost: float) -> tuple[float, Taken]:
    """The bucket's arithmetic, shared by both stores: (tokens after, outcome)."""
    if now > stamp:
        tokens = min(capacity, tokens + (now - stamp) * rate)
    allowed = tokens >= cost
    if allowed:
        tokens -= cost
    missing = 0.0 if allowed else cost - tokens
    retry = missing / rate if rate > 0 else float("inf")
    reset = (capacity - tokens) / rate if rate > 0 else float("inf")
    return tokens, Taken(allowed, tokens, retry, reset)


class LocalBuckets:
    """Buckets in this process only (one worker, or tests)."""

    def __init__(self, max_entries: int = 1 << 20) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}  # tokens, stamp, full_at
        self._max = max_entries

    def take(self, key: str, rate: float, capacity: float, cost: float = 1.0) -> Taken:
        now = time.monotonic()
        found = self._buckets.get(key)
        tokens, stamp = (capacity, now) if found is None or found[2] <= now else found[:2]
        tokens, taken = _refill_and_take(tokens, stamp, now, rate, capacity, cost)
        self._buckets[key] = (tokens, now, now + taken.reset)
        if len(self._buckets) > self._max:
            self._forget_full(now)
        return taken

    def _forget_full(self, now: float) -> None:
        """Drop full buckets (they equal fresh ones); if none, the oldest half."""
        full = [k for k, v in self._buckets.items() if v[2] <= now]
        if not full:
            full = list(self._buckets)[: len(self._buckets) // 2]
        for k in full:
            del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


_HEADER = struct.Struct("<8sQ")    # magic, slot count
_SLOT = struct.Struct("<Qddd")     # key hash (0 = never used), tokens, stamp, full_at
_MAGIC = b"tgbkt001"
_PROBES = 16                       # slots looked at per key before evicting the soonest full


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") | 1


class SharedBuckets:
    """Buckets in a shared-memory table that every worker of the node maps.

    Open addressing over `slots` fixed slots; a key's slot is searched among `_PROBES`
    neighbours. A slot whose bucket is full again (`full_at` passed) is free. When all
    neighbours are busy, the one that will be full soonest is taken over: that bucket is
    forgotten early (a client gets back at most what it would have had at `full_at`). The
    table size bounds memory: 65,536 slots are 2 MiB.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, size)
        magic, slots = _HEADER.unpack_from(self._map, 0)
        if magic != _MAGIC:
            raise ValueError("not a tidegate bucket table")
        self.slots: int = int(slots)

    @classmethod
    def create(cls, slots: int = 1 << 16) -> SharedBuckets:
        """A new table in a memfd; pass `fd` to the workers (it is not inheritable here)."""
        fd = os.memfd_create("tidegate-buckets", os.MFD_CLOEXEC)
        os.ftruncate(fd, _HEADER.size + slots * _SLOT.size)
        with mmap.mmap(fd, _HEADER.size) as head:
            _HEADER.pack_into(head, 0, _MAGIC, slots)
        return cls(fd)

    def take(self, key: str, rate: float, capacity: float, cost: float = 1.0) -> Taken:
        h = _hash(key)
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0)
        try:
            now = time.monotonic()
            offset = self._find(h, now)
            found, tokens, stamp, full_at = _SLOT.unpack_from(self._map, offset)
            if found != h or full_at <= now:
                tokens, stamp = capacity, now
            tokens, taken = _refill_and_take(tokens, stamp, now, rate, capacity, cost)
            _SLOT.pack_into(self._map, offset, h, tokens, now, now + taken.reset)
            return taken
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)

    def _find(self, h: int, now: float) -> int:
        """The slot of `h`: its own, else a free one, else the one full soonest."""
        base = _HEADER.size
        start = h % self.slots
        free = -1
        soonest, soonest_at = -1, float("inf")
        for i in range(_PROBES):
            offset = base + ((start + i) % self.slots) * _SLOT.size
            found, _, _, full_at = _SLOT.unpack_from(self._map, offset)
            if found == h:
                return offset
            if free < 0 and (found == 0 or full_at <= now):
                free = offset
            elif full_at < soonest_at:
                soonest, soonest_at = offset, full_at
        return free if free >= 0 else soonest

    def close(self) -> None:
        """Unmap the table and close this process's descriptor."""
        self._map.close()
        os.close(self.fd)
