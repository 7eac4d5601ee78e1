"""Per-worker token leases: most requests pass a rate limit without the node's lock.

A take from the node's shared table (`SharedBuckets`) costs a `lockf` pair, a hash and a few
struct reads: ~5 us, a tenth of a proxied request. When a limit is far from reached there is no
need to ask the table for every token: a worker takes a small batch at once (a *lease*) and
spends it locally, lock-free, for at most `LEASE_SECONDS`. The table counts the batch as out on
lease and stops refilling below it (see `SharedBuckets.lease`), so the node never lets through
more than the bucket alone would: no overshoot, whatever the worker count.

What a lease can cost is the other way round: tokens one worker set aside are not there for
another. That is bounded and short-lived: a batch is at most `LEASE_MAX` tokens, a tenth of a
second of the rate and an eighth of the capacity; it is granted only while the bucket holds
twice the batch (near the limit every request takes its own token, so exact counts at the
limit are unchanged); an unspent remainder goes back with the worker's next lease of the same
bucket, or is counted out only until the lease expires. Limits too small for a batch of 2
(e.g. 10 req/s) always take token by token.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tidegate.state.buckets import SharedBuckets, Taken

LEASE_SECONDS = 0.1   # a lease is spent within this, or what is left goes back
LEASE_MAX = 64        # tokens per lease: the lock is taken once per this many requests at most
LEASES_MAX = 4096     # leases one worker holds (client buckets: bounded memory)


def lease_size(rate: float, capacity: float) -> int:
    """How many tokens one lease takes for this bucket (below 2: no lease)."""
    return int(min(LEASE_MAX, rate * LEASE_SECONDS, capacity // 8))


class _Lease:
    __slots__ = ("expires", "lease_id", "left", "size")

    def __init__(self, size: float, left: float, lease_id: int, expires: float) -> None:
        self.size = size
        self.left = left
        self.lease_id = lease_id
        self.expires = expires


class LeasedBuckets:
    """One worker's view of the node's table: `admit` spends leased tokens, `take` is exact.

    `take` (one token, with the numbers RateLimit-* headers show) always goes to the table.
    """

    def __init__(self, table: SharedBuckets, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.table = table
        self._clock = clock
        self._leases: dict[str, _Lease] = {}

    def take(self, key: str, rate: float, capacity: float, cost: float = 1.0) -> Taken:
        return self.table.take(key, rate, capacity, cost)

    def admit(self, key: str, rate: float, capacity: float) -> bool:
        """One token for a request: from this worker's lease while it lasts, else from the
        table (renewing the lease)."""
        held = self._leases.get(key)
        if held is not None and held.left >= 1 and self._clock() < held.expires:
            held.left -= 1
            return True
        return self._renew(key, rate, capacity, held)

    def _renew(self, key: str, rate: float, capacity: float, held: _Lease | None) -> bool:
        size = lease_size(rate, capacity)
        if size < 2:
            return self.table.take(key, rate, capacity).allowed
        back = (held.lease_id, held.size, held.left) if held is not None else None
        granted, lease_id, expires = self.table.lease(key, rate, capacity, size,
                                                      LEASE_SECONDS, back)
        if expires:
            if held is None:
                if len(self._leases) >= LEASES_MAX:
                    self._forget()
                held = self._leases[key] = _Lease(granted, granted - 1, lease_id, expires)
            else:
                held.size, held.left, held.lease_id, held.expires = (
                    granted, granted - 1, lease_id, expires)
        elif held is not None:
            del self._leases[key]  # given back above; this token was taken on its own
        return granted >= 1

    def _forget(self) -> None:
        """Make room: drop expired leases, or all of them. A dropped lease is not given back;
        the table counts it out only until it expires (never more tokens, at most fewer)."""
        now = self._clock()
        expired = [k for k, v in self._leases.items() if v.expires <= now]
        if len(expired) < len(self._leases) // 4:
            self._leases.clear()
            return
        for k in expired:
            del self._leases[k]

    def __len__(self) -> int:
        return len(self._leases)
