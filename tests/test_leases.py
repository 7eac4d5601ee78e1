"""Per-worker token leases (`tidegate.state.LeasedBuckets`) over the node's shared table.

Several `LeasedBuckets` on one table stand for the workers of a node; they share one fake
clock, so the counts are exact.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tidegate.state import LeasedBuckets, SharedBuckets
from tidegate.state.leases import LEASE_MAX, LEASE_SECONDS, LEASES_MAX, lease_size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def node() -> Iterator[tuple[Clock, SharedBuckets]]:
    clock = Clock()
    table = SharedBuckets.create(slots=1024, clock=clock)
    try:
        yield clock, table
    finally:
        table.close()


def workers(node: tuple[Clock, SharedBuckets], n: int) -> list[LeasedBuckets]:
    clock, table = node
    return [LeasedBuckets(table, clock) for _ in range(n)]


def test_lease_size_follows_the_rate_and_the_capacity() -> None:
    assert lease_size(10, 10) < 2          # 10 req/s: token by token
    assert lease_size(1000, 8) < 2         # a small burst: token by token
    assert lease_size(1000, 800) == LEASE_MAX
    assert lease_size(200, 10_000) == 20   # a tenth of a second of the rate


@pytest.mark.parametrize("count", [1, 2, 4])
def test_workers_together_get_exactly_the_capacity(node: tuple[Clock, SharedBuckets],
                                                    count: int) -> None:
    """At one instant, workers asking in turn until each is refused get the capacity: not a
    token more (no overshoot), not a token less (leases are spent by their workers)."""
    group = workers(node, count)
    admitted = [0] * count
    refused = [False] * count
    while not all(refused):
        for i, w in enumerate(group):
            if not refused[i]:
                if w.admit("GET /a", 1000.0, 800.0):
                    admitted[i] += 1
                else:
                    refused[i] = True
    assert sum(admitted) == 800


def test_tokens_set_aside_by_an_idle_worker_are_bounded_and_come_back(
        node: tuple[Clock, SharedBuckets]) -> None:
    """A worker that leased and went idle hides at most one lease, until it expires."""
    clock, _ = node
    idle, busy = workers(node, 2)
    assert idle.admit("GET /a", 1000.0, 800.0)
    got = 0
    while busy.admit("GET /a", 1000.0, 800.0):
        got += 1
    assert 800 - LEASE_MAX <= got < 800
    clock.now += 10 * LEASE_SECONDS   # refill far beyond the capacity; every lease expired
    got = 0
    while busy.admit("GET /a", 1000.0, 800.0):
        got += 1
    assert got == 800                 # the whole capacity again: nothing stays counted out


def test_a_lease_is_given_back_with_the_next_one(node: tuple[Clock, SharedBuckets]) -> None:
    """A worker's unspent tokens go back to the bucket when it renews its lease."""
    clock, table = node
    a, b = workers(node, 2)
    assert a.admit("GET /a", 1000.0, 800.0)     # a holds 63 more
    clock.now += LEASE_SECONDS / 2
    for _ in range(LEASE_MAX):                  # b spends a lease and renews it: the table's
        assert b.admit("GET /a", 1000.0, 800.0)  # leases stay alive past a's expiry
    clock.now += LEASE_SECONDS / 2 + 0.001      # a's lease expired, b's has not
    before = table.take("GET /a", 0.0, 800.0).remaining
    assert a.admit("GET /a", 1000.0, 800.0)     # gives 63 back, takes a new lease of 64
    assert table.take("GET /a", 0.0, 800.0).remaining == before + 63 - 64 - 1


def test_a_burst_never_exceeds_the_capacity_while_tokens_are_out_on_lease(
        node: tuple[Clock, SharedBuckets]) -> None:
    """Tokens out on lease count against the capacity: while a lease waits, the bucket
    refills only up to what the lease leaves, so one instant's burst is at most the capacity."""
    clock, _ = node
    holder, other = workers(node, 2)
    assert holder.admit("GET /a", 1000.0, 800.0)
    clock.now += LEASE_SECONDS / 2          # 50 tokens of refill, had the bucket room for them
    burst = 0
    while other.admit("GET /a", 1000.0, 800.0):
        burst += 1
    while holder.admit("GET /a", 1000.0, 800.0):
        burst += 1
    assert burst == 800 - 1


def test_no_window_lets_more_through_than_the_bucket(node: tuple[Clock, SharedBuckets]
                                                      ) -> None:
    """Random arrivals at three workers, over-asking the limit: in every window the node's
    admitted count stays within capacity + rate x length (the token bucket's bound)."""
    clock, _ = node
    rate, capacity = 2000.0, 400.0
    rng = random.Random(15)
    group = workers(node, 3)
    start = clock.now
    times: list[float] = []
    for _ in range(20_000):
        clock.now += rng.expovariate(4000.0)    # twice the rate on average, in bursts
        if rng.random() < 0.01:
            clock.now += rng.uniform(0, 0.3)    # pauses: the bucket fills, leases expire
        if rng.choice(group).admit("GET /a", rate, capacity):
            times.append(clock.now - start)
    assert len(times) > 5000
    for i in range(0, len(times), 97):
        for j in range(i, len(times), 13):
            assert j - i + 1 <= capacity + rate * (times[j] - times[i]) + 1e-6


def test_a_worker_holds_a_bounded_number_of_leases(node: tuple[Clock, SharedBuckets]
                                                   ) -> None:
    """One lease per client bucket, bounded: memory stays flat whatever the clients."""
    (w,) = workers(node, 1)
    for i in range(LEASES_MAX * 3):
        assert w.admit(f"GET /a|10.0.{i // 250}.{i % 250}", 1000.0, 800.0)
    assert len(w) <= LEASES_MAX
