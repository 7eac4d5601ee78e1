"""Token buckets in Redis, shared by every node that points at the same server.

One node's buckets (`SharedBuckets`) are enough until a user runs several nodes behind a load
balancer: then each node counts only its own traffic and N nodes allow N x the limit. Limits
that must hold for the whole cluster keep their buckets in Redis instead (KrakenD EE's
``qos/ratelimit/router/redis``):

* One server-side Lua script takes the tokens of a request from all its buckets (the client's,
  then the endpoint's) in one round trip, atomically, with Redis's clock (``TIME``), so nodes
  whose clocks disagree still share one bucket. Each bucket key expires once it would be full
  again: a full bucket carries no information.
* Redis may be down. The first failed command marks the pool down and logs it once; from then
  on requests fail fast (no I/O, no waiting on timeouts) while one task probes the server with
  a growing delay and logs once when it answers again. Every command is bounded by the pool's
  dial and read timeouts, so a dead server never hangs a request for longer than that.

A `RedisBuckets` is state that outlives generations (one per pool settings and worker, leased
with ``Build.state``); it opens on provision and closes when no generation uses it any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tidegate.state.buckets import Taken

log = logging.getLogger("tidegate.redis")

# KEYS: the buckets, in the order they are checked. ARGV[1]: the cost; then rate (tokens per
# second) and capacity per key. Stops at the first bucket without `cost` tokens (that one is
# left as it was, refilled): returns {index of that bucket (0: every bucket gave), its tokens}.
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local tokens = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local capacity = tonumber(ARGV[2 * i + 1])
  local b = redis.call('HMGET', key, 'tokens', 'stamp')
  tokens = tonumber(b[1])
  local stamp = tonumber(b[2])
  if tokens == nil or stamp == nil then
    tokens = capacity
    stamp = now
  end
  if now > stamp then
    tokens = math.min(capacity, tokens + (now - stamp) * rate)
  end
  if tokens < cost then
    return {i, tostring(tokens)}
  end
  tokens = tokens - cost
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens) / rate * 1000) + 1000)
end
return {0, tostring(tokens)}
"""

# What a failing server raises (refused, reset, timed out, loading, auth lost...).
OUTAGE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisUnavailable(Exception):
    """The pool's server cannot answer now; the caller applies its ``on_failure_allow``."""


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """One of KrakenD EE's ``redis.connection_pools[]``, with go-redis's defaults."""

    name: str
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    pool_size: int = 10
    dial_timeout: float = 5.0
    read_timeout: float = 3.0
    write_timeout: float = 3.0
    pool_timeout: float = 4.0       # go-redis: read_timeout + 1s
    max_retries: int = 3
    min_retry_backoff: float = 0.008
    max_retry_backoff: float = 0.512
    client_name: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the configuration wrote it (for logs and `/__health`)."""
        return f"{self.host}:{self.port}"

    def fingerprint(self) -> dict[str, Any]:
        """What the client depends on (`Build.state` hashes it, the password included)."""
        return asdict(self)


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class RedisBuckets:
    """A client of one Redis pool, its up/down state, and the bucket script."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self.state = "closed"     # closed -> connecting -> up <-> down
        self.since = time.time()
        self.last_error = ""
        self.outages = 0
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._probe: asyncio.Task[None] | None = None
        # A command never waits longer than a dial plus a read (retries included: they stop
        # at the deadline).
        self._deadline = settings.dial_timeout + settings.read_timeout

    def open(self) -> None:
        """Create the client and check the server in the background (idempotent; on the
        worker's event loop). Never fails: an unreachable server is an outage, not an error."""
        if self._client is not None:
            return
        s = self.settings
        retries = max(0, s.max_retries)
        pool: BlockingConnectionPool = BlockingConnectionPool(
            max_connections=s.pool_size, timeout=s.pool_timeout,  # type: ignore[arg-type]
            host=s.host, port=s.port, db=s.db, username=s.username, password=s.password,
            client_name=s.client_name, socket_connect_timeout=s.dial_timeout,
            socket_timeout=max(s.read_timeout, s.write_timeout),
            retry=Retry(ExponentialBackoff(cap=s.max_retry_backoff, base=s.min_retry_backoff),
                        retries))
        self._client = Redis(connection_pool=pool)
        self._script = self._client.register_script(TAKE_SCRIPT)
        self._set("connecting")
        self._probe = asyncio.ensure_future(self._watch(first=True))

    async def take_chain(self, buckets: Sequence[tuple[str, float, float]],
                         cost: float = 1.0) -> tuple[int, float]:
        """Take `cost` from each ``(key, rate, capacity)`` in order, stopping at the first
        that lacks it: (1-based index of that bucket or 0, tokens left in the last one looked
        at). Raises `RedisUnavailable` at once while the server is known to be down."""
        script = self._script
        if script is None or self.state == "down":
            raise RedisUnavailable(self.last_error or "not connected")
        args: list[float] = [cost]
        for _, rate, capacity in buckets:
            args += (rate, capacity)
        try:
            async with asyncio.timeout(self._deadline):
                got = await script(keys=[b[0] for b in buckets], args=args)
        except OUTAGE_ERRORS as exc:
            self._went_down(exc)
            raise RedisUnavailable(str(exc)) from None
        return int(got[0]), float(got[1])

    async def take_async(self, key: str, rate: float, capacity: float,
                         cost: float = 1.0) -> Taken:
        """`BucketStore.take` over the network: the same bucket, shared by every node."""
        refused, tokens = await self.take_chain([(key, rate, capacity)], cost)
        allowed = refused == 0
        retry = 0.0 if allowed else (cost - tokens) / rate
        return Taken(allowed, tokens, retry, (capacity - tokens) / rate)

    def describe(self) -> dict[str, Any]:
        """The pool as `/__health` shows it."""
        out: dict[str, Any] = {"address": self.settings.address, "state": self.state,
                               "since": _iso(self.since), "outages": self.outages}
        if self.state != "up" and self.last_error:
            out["last_error"] = self.last_error
        return out

    def _set(self, state: str) -> None:
        self.state = state
        self.since = time.time()

    def _went_down(self, exc: BaseException) -> None:
        self.last_error = str(exc) or type(exc).__name__
        if self.state in ("down", "closed"):
            return
        self._set("down")
        self.outages += 1
        log.error("redis pool %r at %s is down (%s): requests limited through it are refused "
                  "(503) unless on_failure_allow; reconnecting", self.settings.name,
                  self.settings.address, self.last_error)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._watch(first=False))

    async def _watch(self, *, first: bool) -> None:
        """Ping until the server answers, with a growing delay (50 ms .. 1 s)."""
        client = self._client
        assert client is not None
        delay = 0.05
        down_at = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(self._deadline):
                    await client.ping()
                break
            except OUTAGE_ERRORS as exc:
                self._went_down(exc)
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)
        was = self.state
        self._set("up")
        if first and was == "connecting":
            log.info("redis pool %r at %s is up", self.settings.name, self.settings.address)
        else:
            log.warning("redis pool %r at %s is up again after %.1fs", self.settings.name,
                        self.settings.address, time.monotonic() - down_at)

    async def close(self) -> None:
        """Stop probing and close every connection (the last generation using it drained)."""
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
        client, self._client, self._script = self._client, None, None
        self._set("closed")
        if client is not None:
            await client.aclose()
            await client.connection_pool.disconnect()
