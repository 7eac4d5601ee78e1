"""``qos/http-cache``: a private HTTP cache in the request executor, bounded, kept across reloads.

KrakenD CE puts gregjones/httpcache in its HTTP client; tidegate follows its rules: only GET
and HEAD without ``Range`` are cached, keyed by the final backend URL (plus the request headers
the answer ``Vary``s on); freshness comes from the backend's ``Cache-Control: max-age`` or
``Expires`` against its ``Date``; ``no-store`` is never stored, ``no-cache`` always
revalidated; a stale entry with an ``ETag`` or ``Last-Modified`` is revalidated with a
conditional request and a ``304`` refreshes it; answers served from the cache carry
``X-From-Cache: 1``. ``shared: true`` puts every backend that says so in one cache, so two
endpoints calling the same URL share entries.

Where tidegate differs: KrakenD's cache is unbounded unless both ``max_items`` and ``max_size``
are set; tidegate always bounds it (defaults below; either setting alone applies), as an LRU.
A streamed answer is cached only when its announced length fits; a larger one passes through.
The cache is per worker and survives reloads that leave its section alone.

Beyond KrakenD: ``"connection_pool": "<name>"`` (a pool of the service's ``redis`` section,
as EE's Redis rate limits name theirs) adds a second level shared by every node: an answer one
node fetched is served by the others without calling the backend. The local LRU stays the
first level; Redis keeps each answer while it is fresh (and ten minutes more when it can be
revalidated); while Redis is unreachable the cache is local only, requests never fail for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from tidegate.bodies import BodyStream, BodyTooLarge
from tidegate.components import redis_pools
from tidegate.components.redis_pools import pool_lease
from tidegate.components.seam import Build, Component, JsonPath, Lease, Level
from tidegate.errors import ConfigValueError
from tidegate.messages import ClientRequest, ClientResponse, Exchange, Rendered
from tidegate.state.redisbuckets import RedisUnavailable
from tidegate.state.rediscluster import ClusterSettings

NAMESPACE = "qos/http-cache"
DEFAULT_MAX_ITEMS = 10_000
DEFAULT_MAX_SIZE = 64 << 20   # bytes of bodies and headers held by one cache
FROM_CACHE = ("X-From-Cache", "1")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "qos/http-cache: cache backend answers as their Cache-Control allows",
    "properties": {
        "shared": {"type": "boolean", "description": "one cache for every backend saying so"},
        "max_items": {"type": "integer", "minimum": 1},
        "max_size": {"type": "integer", "minimum": 1024, "description": "bytes"},
        "connection_pool": {"type": "string",
                            "description": "tidegate: a pool of the service's `redis` section "
                                           "that shares the cache between nodes"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class CacheConfig:
    shared: bool
    max_items: int
    max_size: int
    connection_pool: str = ""   # tidegate: a Redis pool shared by the nodes


def parse(raw: Any, path: JsonPath) -> CacheConfig:
    """The typed section, bounds applied; errors located at the key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    shared = raw.get("shared", False)
    if not isinstance(shared, bool):
        raise ConfigValueError(f"shared: expected true or false, got {shared!r}",
                               path=(*path, "shared"))
    bounds = {}
    for key, default, least in (("max_items", DEFAULT_MAX_ITEMS, 1),
                                ("max_size", DEFAULT_MAX_SIZE, 1024)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigValueError(f"{key}: expected an integer ≥ {least}, got {value!r}",
                                   path=(*path, key))
        bounds[key] = value
    pool = raw.get("connection_pool", "")
    if not isinstance(pool, str):
        raise ConfigValueError(f"connection_pool: expected the name of a Redis pool, got "
                               f"{pool!r}", path=(*path, "connection_pool"))
    return CacheConfig(shared, bounds["max_items"], bounds["max_size"], pool)


def _directives(value: str | None) -> dict[str, str]:
    """Cache-Control as {directive: argument} (lower-case names)."""
    out: dict[str, str] = {}
    for part in (value or "").split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            out[name.lower()] = arg.strip().strip('"')
    return out


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(int(value)) if value is not None else None
    except ValueError:
        return None


MEMO_SLOTS = 8  # renderings one entry keeps (endpoints sharing it, generations after reloads)


@dataclass(slots=True)
class Entry:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    url: str
    vary: tuple[tuple[str, str], ...]   # request header values the answer depends on
    size: int
    fresh_until: float = 0.0            # wall clock; computed when stored or revalidated
    # What endpoints rendered of this answer (`messages.Memo`), counted in the cache's size;
    # `owner`/`key`: where the entry is stored (a rendering is kept only while it is there).
    memo: dict[object, Rendered] = field(default_factory=dict)
    memo_size: int = 0
    owner: HttpCache | None = None
    key: str = ""

    def header(self, lname: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def recall(self, slot: object) -> Rendered | None:
        return self.memo.get(slot)

    def remember(self, slot: object, value: Rendered) -> None:
        owner = self.owner
        if owner is None or owner._entries.get(self.key) is not self:
            return  # evicted or replaced meanwhile: nothing to count it against
        if len(self.memo) >= MEMO_SLOTS:
            self.forget()
        size = len(value[2]) + sum(len(k) + len(v) for k, v in value[1])
        self.memo[slot] = value
        self.memo_size += size
        owner.size += size
        owner.trim()

    def forget(self) -> None:
        """Drop the renderings (the answer changed, or to make room)."""
        if self.owner is not None and self.owner._entries.get(self.key) is self:
            self.owner.size -= self.memo_size
        self.memo.clear()
        self.memo_size = 0


class HttpCache:
    """An LRU of answers bounded by item count and bytes."""

    def __init__(self, cfg: CacheConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        self.drop(key)
        if entry.size > self.cfg.max_size:
            return
        entry.forget()
        entry.owner, entry.key = self, key
        self._entries[key] = entry
        self.size += entry.size
        self.trim()

    def trim(self) -> None:
        """Evict the least recently used entries until both bounds hold."""
        while len(self._entries) > self.cfg.max_items or self.size > self.cfg.max_size:
            _, old = self._entries.popitem(last=False)
            self.size -= old.size + old.memo_size

    def drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old.size + old.memo_size

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self, entry: Entry) -> Entry:
        """Compute once when the entry is stored how long it stays fresh (no request
        directives): a hit then costs one clock read. What endpoints rendered of it is
        forgotten (a 304 may have changed its headers)."""
        entry.forget()
        entry.fresh_until = 0.0
        cc = _directives(entry.header("cache-control"))
        date = _epoch(entry.header("date"))
        if "no-cache" in cc or date is None:
            return entry
        lifetime = _seconds(cc.get("max-age"))
        if lifetime is None:
            expires = _epoch(entry.header("expires"))
            lifetime = expires - date if expires is not None else 0.0
        entry.fresh_until = date + lifetime
        return entry

    def fresh(self, entry: Entry, request_cc: dict[str, str]) -> bool:
        """gregjones/httpcache's freshness: lifetime from max-age or Expires, age from Date."""
        if not request_cc:
            return self.clock() < entry.fresh_until
        cc = _directives(entry.header("cache-control"))
        if "no-cache" in cc or "no-cache" in request_cc:
            return False
        date = _epoch(entry.header("date"))
        if date is None:
            return False
        age = self.clock() - date
        lifetime = _seconds(cc.get("max-age"))
        if lifetime is None:
            expires = _epoch(entry.header("expires"))
            lifetime = expires - date if expires is not None else 0.0
        if (wanted := _seconds(request_cc.get("max-age"))) is not None:
            lifetime = min(lifetime, wanted)
        if (min_fresh := _seconds(request_cc.get("min-fresh"))) is not None:
            age += min_fresh
        if "max-stale" in request_cc:
            lifetime += _seconds(request_cc["max-stale"]) or float("inf")
        return lifetime > age


def _request_header(req: ClientRequest, lname: str) -> str:
    return ", ".join(v for k, v in req.headers if k.lower() == lname)


def _vary(headers: list[tuple[str, str]], req: ClientRequest) -> tuple[tuple[str, str], ...] | None:
    """The request values the answer varies on (None: ``Vary: *``, never reusable)."""
    names = [n.strip().lower() for k, v in headers if k.lower() == "vary" for n in v.split(",")]
    if "*" in names:
        return None
    return tuple((n, _request_header(req, n)) for n in sorted(set(filter(None, names))))


def _served(entry: Entry) -> ClientResponse:
    return ClientResponse(entry.status, [*entry.headers, FROM_CACHE], entry.body, entry.url,
                          memo=entry)


async def _whole(resp: ClientResponse, bound: int) -> ClientResponse | None:
    """The answer with its body in memory, or None when it cannot be held within `bound`."""
    stream = resp.stream
    if stream is None:
        return resp
    if not isinstance(stream, BodyStream) or stream.length is None or stream.length > bound:
        return None
    try:
        body = await stream.read_all(bound)
    except BodyTooLarge:  # the backend sent more than it announced
        return None
    return ClientResponse(resp.status, resp.headers, body, resp.url)


REVALIDATION_KEPT = 600.0  # seconds Redis keeps a stale answer that can be revalidated


class SharedLevel:
    """The Redis level of a cache: answers by URL, kept while fresh (plus revalidation)."""

    def __init__(self, redis: Lease[Any], clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    @staticmethod
    def key(url_key: str) -> bytes:
        return b"tidegate:cache:" + hashlib.sha256(url_key.encode()).hexdigest().encode()

    async def get(self, url_key: str) -> Entry | None:
        try:
            blob = await self.redis.value.command(b"GET", self.key(url_key))
        except RedisUnavailable:
            return None
        if not isinstance(blob, bytes) or b"\n" not in blob:
            return None
        meta_raw, body = blob.split(b"\n", 1)
        try:
            meta = orjson.loads(meta_raw)
            return Entry(meta["s"], [tuple(h) for h in meta["h"]], body, meta["u"],
                         tuple(tuple(v) for v in meta["v"]), meta["z"], meta["f"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # written by another version: a miss

    def put(self, url_key: str, entry: Entry) -> None:
        kept = entry.fresh_until - self.clock()
        if entry.header("etag") or entry.header("last-modified"):
            kept = max(kept, 0.0) + REVALIDATION_KEPT
        if kept <= 0:
            return
        if len(_PENDING) >= MAX_PENDING_WRITES:
            return  # Redis is slower than the answers come: this one stays local
        meta = orjson.dumps({"s": entry.status, "h": entry.headers, "u": entry.url,
                             "v": entry.vary, "z": entry.size, "f": entry.fresh_until})
        task = asyncio.ensure_future(self._set(url_key, meta + b"\n" + entry.body, kept))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)

    async def _set(self, url_key: str, blob: bytes, seconds: float) -> None:
        with contextlib.suppress(RedisUnavailable):
            await self.redis.value.command(b"SET", self.key(url_key), blob, b"PX",
                                           max(1, int(seconds * 1000)))


_PENDING: set[asyncio.Future[None]] = set()  # writes in flight (not awaited by requests)
MAX_PENDING_WRITES = 64  # bounds the answers held for a slow Redis (each ≤ max_size)


def _is_cluster(ctx: Build[Any], name: str) -> bool:
    section = redis_pools.parse(ctx.service.extra_config[redis_pools.NAMESPACE],
                                ("extra_config", redis_pools.NAMESPACE))
    return isinstance(section.pools.get(name), ClusterSettings)


def build(ctx: Build[CacheConfig], nxt: Exchange) -> Exchange:
    cfg = ctx.config
    scope = "service" if cfg.shared else None
    lease = ctx.state({"section": asdict(cfg)}, lambda: HttpCache(cfg), scope=scope)
    shared: SharedLevel | None = None
    if cfg.connection_pool:
        redis = pool_lease(ctx, cfg.connection_pool, "connection_pool")
        if _is_cluster(ctx, cfg.connection_pool):
            raise ctx.error(f"connection_pool: {cfg.connection_pool!r} is a Redis cluster: "
                            "the HTTP cache shares answers through a single pool only",
                            "connection_pool")
        shared = SharedLevel(redis)

    async def cached(req: ClientRequest) -> ClientResponse:
        if req.method not in ("GET", "HEAD") or _request_header(req, "range"):
            return await nxt(req)
        request_cc = _directives(_request_header(req, "cache-control"))
        if "no-store" in request_cc:
            return await nxt(req)
        cache = lease.value
        key = req.url if req.method == "GET" else f"HEAD {req.url}"
        entry = cache.get(key)
        if entry is None and shared is not None:
            try:  # within the backend's deadline, as the exchange after it
                async with asyncio.timeout_at(req.deadline):
                    entry = await shared.get(key)
            except TimeoutError:
                entry = None
            if entry is not None:
                cache.put(key, entry)
        if entry is not None and entry.vary and tuple(
                (n, _request_header(req, n)) for n, _ in entry.vary) != entry.vary:
            entry = None  # stored for other values of the headers it varies on
        if entry is not None and cache.fresh(entry, request_cc):
            return _served(entry)
        sent = req
        if entry is not None:
            conditions = [(name, value) for name, value in (
                ("If-None-Match", entry.header("etag")),
                ("If-Modified-Since", entry.header("last-modified"))) if value]
            if conditions:
                sent = ClientRequest(req.target, req.method, req.request_target, req.url,
                                     [*req.headers, *conditions], req.body, req.deadline,
                                     req.stream)
        resp = await nxt(sent)
        if entry is not None and resp.status == 304 and sent is not req:
            fresh_headers = {k.lower(): (k, v) for k, v in resp.headers}
            headers = [fresh_headers.pop(k.lower(), (k, v)) for k, v in entry.headers]
            entry.headers = headers
            cache.stamp(entry)
            if shared is not None:
                shared.put(key, entry)
            return _served(entry)
        response_cc = _directives(resp.header("cache-control"))
        vary = _vary(resp.headers, req)
        if "no-store" in response_cc or vary is None:
            cache.drop(key)
            return resp
        whole = await _whole(resp, cfg.max_size)
        if whole is None:
            cache.drop(key)
            return resp
        size = len(whole.body) + sum(len(k) + len(v) for k, v in whole.headers)
        stored = cache.stamp(Entry(whole.status, list(whole.headers), whole.body, whole.url,
                                   vary, size))
        cache.put(key, stored)
        if shared is not None:
            shared.put(key, stored)
        return whole

    return cached


# bounded: it awaits Redis within the request's deadline, and otherwise only the exchange.
COMPONENT: Component[CacheConfig] = Component(NAMESPACE, frozenset({Level.CLIENT}), build,
                                              parse=parse, schema=SCHEMA, order=10,
                                              bounded=True)
