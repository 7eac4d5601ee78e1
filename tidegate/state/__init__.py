"""State that outlives a generation: one store per worker process, node-wide token buckets.

A hot reload must not reset what users expect to keep (a client's used-up rate limit, an open
circuit breaker, a fetched JWK set, warm backend connections). Each generation *leases* the
entries it needs before it is swapped in and releases them after it drained, so an entry whose
key did not change is handed over, and one nobody leases any more is closed.
"""

from tidegate.state.buckets import AsyncBucketStore, BucketStore, LocalBuckets, SharedBuckets, Taken
from tidegate.state.leases import LeasedBuckets
from tidegate.state.store import StateKey, StateStore, fingerprint

__all__ = ["AsyncBucketStore", "BucketStore", "LeasedBuckets", "LocalBuckets", "SharedBuckets",
           "StateKey", "StateStore", "Taken", "fingerprint"]
