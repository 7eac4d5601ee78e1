"""Token buckets in Redis, shared by every node that points at the same server.

One node's buckets (`SharedBuckets`) are enough until a user runs several nodes behind a load
balancer: then each node counts only its own traffic and N nodes allow N x the limit. Limits
that must hold for the whole cluster keep their buckets in Redis instead (KrakenD EE's
``qos/ratelimit/router/redis``):

* One server-side Lua script takes the tokens of a request from all its buckets (the client's,
  then the endpoint's) in one round trip, atomically, with Redis's clock (``TIME``), so nodes
  whose clocks disagree still share one bucket. Each bucket key expires once it would be full
  again: a full bucket carries no information.
* Every request of a worker is pipelined on one connection per pool (`tidegate.state.resp`).
* Redis may be down. A lost connection, a refused one or a command unanswered for
  ``read_timeout`` marks the pool down and logs it once; from then on requests fail fast (no
  I/O, no waiting) while one task reconnects with a growing delay (``min_retry_backoff`` ..
  ``max_retry_backoff``) and logs once when the server answers again. Connecting is bounded
  by ``dial_timeout``, a command by ``read_timeout``: a dead server never hangs a request
  longer than that.

A `RedisBuckets` is state that outlives generations (one per pool settings and worker, leased
with ``Build.state``); it opens on provision and closes when no generation uses it any more.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import hiredis

from tidegate.state.buckets import Taken
from tidegate.state.resp import Arg, Pipelined, RespError, connect

log = logging.getLogger("tidegate.redis")

# KEYS: the buckets, in the order they are checked. ARGV[1]: the cost; then rate (tokens per
# second) and capacity per key. Stops at the first bucket without `cost` tokens (that one is
# left as it was): returns {index of that bucket (0: every bucket gave), then the tokens left
# in each bucket looked at}.
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local out = {0}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local capacity = tonumber(ARGV[2 * i + 1])
  local b = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(b[1])
  local stamp = tonumber(b[2])
  if tokens == nil or stamp == nil then
    tokens = capacity
    stamp = now
  end
  if now > stamp then
    tokens = math.min(capacity, tokens + (now - stamp) * rate)
  end
  if tokens < cost then
    out[1] = i
    out[i + 1] = tostring(tokens)
    return out
  end
  tokens = tokens - cost
  out[i + 1] = tostring(tokens)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens) / rate * 1000) + 1000)
end
return out
"""
TAKE_SHA = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest().encode()


class RedisUnavailable(Exception):
    """The pool's server cannot answer now; the caller applies its ``on_failure_allow``."""


class Moved(Exception):
    """A cluster node's redirect: ``MOVED <slot> <host>:<port>`` or ``ASK ...``."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        kind, _, where = reply.split(" ", 2)
        host, _, port = where.rpartition(":")
        self.ask = kind == "ASK"
        self.host, self.port = host, int(port)


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


def taken(allowed: bool, tokens: float, rate: float, capacity: float,
          cost: float = 1.0) -> Taken:
    """The `Taken` of a bucket the script left with `tokens`."""
    retry = 0.0 if allowed else (cost - tokens) / rate
    return Taken(allowed, tokens, retry, (capacity - tokens) / rate)


def _retrieved(fut: asyncio.Future[Any]) -> None:
    """Mark a reply nobody awaits as seen (a failed connection fails it too)."""
    if not fut.cancelled():
        fut.exception()


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class RedisBuckets:
    """One Redis pool of a worker: its connection, its up/down state, the bucket script."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self.state = "closed"     # closed -> connecting -> up <-> down
        self.since = time.time()
        self.last_error = ""
        self.outages = 0
        self._conn: Pipelined | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._down_at = 0.0

    async def open(self) -> None:
        """Connect (idempotent; on the worker's event loop, at provision). Waits at most a
        second for the first answer, so a reachable server limits from the first request;
        never fails: an unreachable server is an outage, not an error."""
        self.start()
        await self.ready(1.0)

    def start(self) -> None:
        """Begin connecting in the background (idempotent)."""
        if self.state != "closed":
            return
        self._set("connecting")
        self._connecting = asyncio.ensure_future(self._reconnect())
        self._tick()

    async def ready(self, timeout: float) -> bool:
        """Wait up to `timeout` for a connection; whether there is one."""
        task = self._connecting
        if self._conn is None and task is not None and not task.done():
            await asyncio.wait({task}, timeout=timeout)
        return self._conn is not None

    async def command(self, *args: Arg) -> Any:
        """One command on the pool's connection (its reply; `RedisUnavailable` without one)."""
        conn = self._conn
        if conn is None:
            raise RedisUnavailable(self.last_error or "not connected")
        try:
            return await conn.call(*args)
        except RespError as exc:
            raise RedisUnavailable(str(exc)) from None

    async def take_chain(self, buckets: Sequence[tuple[str, float, float]],
                         cost: float = 1.0, *, asking: bool = False
                         ) -> tuple[int, list[float]]:
        """Take `cost` from each ``(key, rate, capacity)`` in order, stopping at the first
        that lacks it: (1-based index of that bucket or 0, tokens left in each bucket looked
        at). Raises `RedisUnavailable` at once while the server is unreachable, `Moved` when a
        cluster node says another one serves the keys (``asking``: after its ASK redirect)."""
        conn = self._conn
        if conn is None:
            raise RedisUnavailable(self.last_error or "not connected")
        args: list[Arg] = [len(buckets)]
        args += [b[0] for b in buckets]
        args.append(cost)
        for _, rate, capacity in buckets:
            args += (rate, capacity)
        try:
            if asking:
                conn.call(b"ASKING").add_done_callback(_retrieved)  # +OK, before the script's
            got = await conn.call(b"EVALSHA", TAKE_SHA, *args)
            if isinstance(got, hiredis.ReplyError) and str(got).startswith("NOSCRIPT"):
                got = await conn.call(b"EVAL", TAKE_SCRIPT, *args)  # the cache was flushed
            if isinstance(got, hiredis.ReplyError):
                if str(got).startswith(("MOVED ", "ASK ")):
                    raise Moved(str(got))
                raise RespError(str(got))
        except RespError as exc:
            self._lost(conn, str(exc))
            raise RedisUnavailable(str(exc)) from None
        return int(got[0]), [float(t) for t in got[1:]]

    async def take_async(self, key: str, rate: float, capacity: float,
                         cost: float = 1.0) -> Taken:
        """`BucketStore.take` over the network: the same bucket, shared by every node."""
        refused, (tokens,) = await self.take_chain([(key, rate, capacity)], cost)
        return taken(refused == 0, tokens, rate, capacity, cost)

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

    def _setup(self) -> list[tuple[Arg, ...]]:
        s = self.settings
        cmds: list[tuple[Arg, ...]] = []
        if s.password is not None:
            cmds.append((b"AUTH", s.username, s.password) if s.username
                        else (b"AUTH", s.password))
        if s.db:
            cmds.append((b"SELECT", s.db))
        if s.client_name:
            cmds.append((b"CLIENT", b"SETNAME", s.client_name))
        cmds.append((b"SCRIPT", b"LOAD", TAKE_SCRIPT))
        return cmds

    async def _reconnect(self) -> None:
        """Connect until the server answers, waiting min_retry_backoff, doubling up to
        max_retry_backoff, between attempts."""
        s = self.settings
        delay = max(0.001, s.min_retry_backoff)
        while True:
            try:
                conn, _ = await connect(s.host, s.port, timeout=s.dial_timeout + s.read_timeout,
                                        on_lost=self._lost, setup=self._setup())
                break
            except (OSError, RespError) as exc:
                self._down(str(exc) or type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(max(s.max_retry_backoff, delay), delay * 2)
        self._conn = conn
        was = self.state
        self._set("up")
        if was == "connecting":
            log.info("redis pool %r at %s is up", s.name, s.address)
        else:
            log.warning("redis pool %r at %s is up again after %.1fs", s.name, s.address,
                        time.monotonic() - self._down_at)

    def _lost(self, conn: Pipelined, reason: str) -> None:
        """A connection failed: if it is the pool's, the pool is down until reconnected."""
        if conn is not self._conn:
            return
        self._conn = None
        conn.fail(reason)
        self._down(reason)
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._reconnect())

    def _down(self, reason: str) -> None:
        """Log once per outage."""
        self.last_error = reason
        if self.state in ("down", "closed"):
            return
        self._set("down")
        self._down_at = time.monotonic()
        self.outages += 1
        log.error("redis pool %r at %s is down (%s): requests limited through it are refused "
                  "(503) unless on_failure_allow; reconnecting", self.settings.name,
                  self.settings.address, reason)

    def _tick(self) -> None:
        """Every 100 ms: a command unanswered for read_timeout fails the connection."""
        conn = self._conn
        if conn is not None and conn.oldest_wait() > self.settings.read_timeout:
            conn.fail(f"no answer within {self.settings.read_timeout:g}s")
        self._watchdog = asyncio.get_running_loop().call_later(0.1, self._tick)

    async def close(self) -> None:
        """Stop reconnecting and close the connection (no generation uses the pool now)."""
        self._set("closed")
        if self._watchdog is not None:
            self._watchdog.cancel()
        task, self._connecting = self._connecting, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.fail("closed")
