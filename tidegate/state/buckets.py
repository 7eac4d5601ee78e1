"""Token buckets with node-wide semantics, whatever the number of worker processes.

KrakenD runs one process per node, so a limit of 100 req/s means 100 req/s for the node.
tidegate runs N workers; if each kept its own buckets a node would allow N x the limit. The
buckets therefore live in one shared-memory table (a memfd the supervisor creates and every
worker maps), guarded by one POSIX record lock: an uncontended `take` is two `fcntl` calls and
a few struct reads (~5 us). Most requests do not pay it: workers lease batches of tokens
(`SharedBuckets.lease`, `tidegate.state.leases`), which the table counts until they come back.

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
from collections.abc import Callable
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

    def admit(self, key: str, rate: float, capacity: float) -> bool:
        """`take` of one token when only the verdict matters (no RateLimit-* headers): a
        store may then serve it from tokens it set aside earlier (`LeasedBuckets`)."""
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

    def admit(self, key: str, rate: float, capacity: float) -> bool:
        """One token, the verdict only (this process is the whole node: nothing to lease)."""
        return self.take(key, rate, capacity).allowed

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
# key hash (0 = never used), tokens, stamp, full_at, leased, lease_until, epoch
_SLOT = struct.Struct("<QdddddQ")
_FIND = struct.Struct("<Qddd")     # the head of a slot: what probing reads
_MAGIC = b"tgbkt002"
_PROBES = 16                       # slots looked at per key before evicting the soonest full


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") | 1


class SharedBuckets:
    """Buckets in a shared-memory table that every worker of the node maps.

    Open addressing over `slots` fixed slots; a key's slot is searched among `_PROBES`
    neighbours. A slot whose bucket is full again (`full_at` passed) is free. When all
    neighbours are busy, the one that will be full soonest is taken over: that bucket is
    forgotten early (a client gets back at most what it would have had at `full_at`). The
    table size bounds memory: 65,536 slots are 3.5 MiB.

    Besides one-token takes, a worker may *lease* a batch of tokens (`lease`, used by
    `tidegate.state.leases.LeasedBuckets`) and spend them without the lock. The slot counts
    the tokens out on lease (`leased`) until they are given back or every lease has expired
    (`lease_until`, after which `leased` drops to 0 and the slot's `epoch` moves on, so a late
    give-back is ignored). The refill stops at ``capacity - leased``: tokens in the bucket plus
    tokens out on lease never exceed the capacity, so leases never let more through than the
    bucket alone would.
    """

    def __init__(self, fd: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.fd = fd
        self._clock = clock
        size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, size)
        magic, slots = _HEADER.unpack_from(self._map, 0)
        if magic != _MAGIC:
            raise ValueError("not a tidegate bucket table")
        self.slots: int = int(slots)

    @classmethod
    def create(cls, slots: int = 1 << 16, clock: Callable[[], float] = time.monotonic
               ) -> SharedBuckets:
        """A new table in a memfd; pass `fd` to the workers (it is not inheritable here)."""
        fd = os.memfd_create("tidegate-buckets", os.MFD_CLOEXEC)
        os.ftruncate(fd, _HEADER.size + slots * _SLOT.size)
        with mmap.mmap(fd, _HEADER.size) as head:
            _HEADER.pack_into(head, 0, _MAGIC, slots)
        return cls(fd, clock)

    def take(self, key: str, rate: float, capacity: float, cost: float = 1.0) -> Taken:
        h = _hash(key)
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0)
        try:
            now = self._clock()
            offset = self._find(h, now)
            tokens, stamp, leased, until, epoch = self._open(offset, h, now, capacity)
            tokens, taken = _refill_and_take(tokens, stamp, now, rate, capacity - leased, cost)
            self._save(offset, h, tokens, now, rate, capacity, leased, until, epoch)
            return taken
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)

    def admit(self, key: str, rate: float, capacity: float) -> bool:
        """One token, the verdict only."""
        return self.take(key, rate, capacity).allowed

    def lease(self, key: str, rate: float, capacity: float, size: float, seconds: float,
              back: tuple[int, float, float] | None = None) -> tuple[float, int, float]:
        """Give back an earlier lease, then take one token for the request at hand plus up to
        `size - 1` more to spend without the lock for `seconds`.

        `back` is ``(lease id, size, unspent)`` of this worker's previous lease of `key`; the
        id names the slot and its epoch, so a lease taken from a slot since reused, or from an
        epoch since closed, is not given back (never counted twice). The
        batch is granted only while the bucket holds at least twice `size` (near the limit
        every request takes its own token, so tokens set aside by one worker do not turn
        another's requests away). Returns ``(tokens granted, lease id, expires)``: 0 granted is a
        refusal; ``expires`` is 0 when no lease was made (one token, spent at once).
        """
        h = _hash(key)
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0)
        try:
            now = self._clock()
            offset = self._find(h, now)
            tokens, stamp, leased, until, epoch = self._open(offset, h, now, capacity)
            lease_id = epoch * self.slots + (offset - _HEADER.size) // _SLOT.size
            if back is not None and back[0] == lease_id and leased > 0:
                # Still counted here (same slot, same epoch): give back what is left of it.
                leased = max(0.0, leased - back[1])
                tokens += min(back[2], back[1])
            if now > stamp:
                tokens = min(capacity - leased, tokens + (now - stamp) * rate)
            granted, expires = 0.0, 0.0
            if tokens >= 2 * size:
                granted, expires = size, now + seconds
                tokens -= size
                leased += size
                until = max(until, expires)
            elif tokens >= 1:
                granted = 1.0
                tokens -= 1
            self._save(offset, h, tokens, now, rate, capacity, leased, until, epoch)
            return granted, lease_id, expires
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)

    def _open(self, offset: int, h: int, now: float, capacity: float
              ) -> tuple[float, float, float, float, int]:
        """(tokens, stamp, leased, lease_until, epoch) of the slot at `offset` for `h`: a
        fresh bucket when the slot held another key or is full again; no lease counted once
        every lease has expired (a new epoch in both cases)."""
        found, tokens, stamp, full_at, leased, until, epoch = _SLOT.unpack_from(self._map,
                                                                               offset)
        if found != h or full_at <= now:
            return capacity, now, 0.0, 0.0, epoch + 1
        if leased > 0 and until <= now:
            return tokens, stamp, 0.0, 0.0, epoch + 1
        return tokens, stamp, leased, until, epoch

    def _save(self, offset: int, h: int, tokens: float, now: float, rate: float,
              capacity: float, leased: float, until: float, epoch: int) -> None:
        """Write the slot back; it is free again once full and without leases."""
        full_at = now + (capacity - tokens) / rate if rate > 0 else float("inf")
        if leased > 0:
            full_at = max(full_at, until)
        _SLOT.pack_into(self._map, offset, h, tokens, now, full_at, leased, until,
                        epoch & 0xFFFFFFFFFFFFFFFF)

    def _find(self, h: int, now: float) -> int:
        """The slot of `h`: its own, else a free one, else the one full soonest."""
        base = _HEADER.size
        start = h % self.slots
        free = -1
        soonest, soonest_at = -1, float("inf")
        for i in range(_PROBES):
            offset = base + ((start + i) % self.slots) * _SLOT.size
            found, _, _, full_at = _FIND.unpack_from(self._map, offset)
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
