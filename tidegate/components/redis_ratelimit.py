"""``qos/ratelimit/router/redis`` and ``qos/ratelimit/service/redis``: limits for a cluster.

KrakenD EE's stateful rate limits: the fields of the stateless ``qos/ratelimit/router``
(``max_rate``, ``every``, ``capacity``, ``client_max_rate``, ``client_capacity``, ``strategy``,
``key``, same defaults, same answers: 429 for a client over its limit or without a key, 503 for
the endpoint's) plus ``connection_pool`` or ``connection_name`` (a pool of the service's
``redis`` section) and ``on_failure_allow``. The buckets live in Redis, so every node that
points at the same server counts against one limit.

* **Keys** come from the limiter's own limits and where it sits (``GET /users/{id}`` or
  ``service``), never from the whole configuration: nodes whose configurations differ
  elsewhere (a port, a log level) share the buckets, and so do generations of one node.
* **Redis down**: the requests that need it get 503, or pass with ``on_failure_allow: true``;
  nothing else is affected (see `tidegate.state.redisbuckets` for the outage handling).
* The service-level limiter wraps the whole service before routing (every request, 404s
  included) except ``/__health``: a node's health check must not fail because the cluster is
  busy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tidegate.components import ratelimit
from tidegate.components.redis_pools import pool_lease
from tidegate.components.seam import Build, Component, JsonPath, Lease, Level
from tidegate.errors import ConfigValueError
from tidegate.messages import EndpointHandler, Request, Response, ServiceHandler
from tidegate.state import fingerprint
from tidegate.state.redisbuckets import RedisBuckets, RedisUnavailable, taken
from tidegate.state.rediscluster import RedisCluster

ROUTER_NAMESPACE = "qos/ratelimit/router/redis"
SERVICE_NAMESPACE = "qos/ratelimit/service/redis"
KEY_PREFIX = "tidegate:ratelimit:"
_OWN_FIELDS = ("connection_pool", "connection_name", "on_failure_allow")
_UNUSED = ("num_shards", "cleanup_period", "cleanup_threads")  # in-memory store tuning

SCHEMA: dict[str, Any] = {
    **ratelimit.SCHEMA,
    "description": "Redis-backed token buckets shared by every node (KrakenD EE)",
    "properties": {
        **{k: v for k, v in ratelimit.SCHEMA["properties"].items() if k not in _UNUSED},
        "connection_pool": {"type": "string", "description": "a pool of the service's redis"},
        "connection_name": {"type": "string", "description": "same as connection_pool"},
        "on_failure_allow": {"type": "boolean",
                             "description": "serve (true) or refuse with 503 (false, default) "
                                            "the requests that need Redis while it is down"},
    },
}


@dataclass(frozen=True, slots=True)
class RedisRateLimit:
    """The stateless limits plus where their buckets live and what to do without Redis."""

    limits: ratelimit.RateLimit
    pool: str
    pool_key: str            # the field that named the pool (for located errors)
    on_failure_allow: bool


def parse(raw: Any, path: JsonPath) -> RedisRateLimit:
    """The typed section; errors located at the offending key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    limits = ratelimit.parse({k: v for k, v in raw.items() if k not in _OWN_FIELDS}, path)
    if limits.rate <= 0 and limits.client_rate <= 0:
        raise ConfigValueError("max_rate or client_max_rate: a Redis rate limit needs at least "
                               "one of them", path=(*path, "max_rate"))
    named = [k for k in ("connection_pool", "connection_name") if k in raw]
    if not named:
        raise ConfigValueError("connection_pool: required (the name of a pool of the "
                               "service's redis section)", path=(*path, "connection_pool"))
    for key in named:
        if not isinstance(raw[key], str) or not raw[key]:
            raise ConfigValueError(f"{key}: expected a pool name, got {raw[key]!r}",
                                   path=(*path, key))
    if len(named) == 2 and raw["connection_pool"] != raw["connection_name"]:
        raise ConfigValueError("connection_name: names another pool than connection_pool",
                               path=(*path, "connection_name"))
    allow = raw.get("on_failure_allow", False)
    if not isinstance(allow, bool):
        raise ConfigValueError(f"on_failure_allow: expected true or false, got {allow!r}",
                               path=(*path, "on_failure_allow"))
    return RedisRateLimit(limits, raw[named[0]], named[0], allow)


class RedisLimiter:
    """One limiter's buckets in Redis: client first (429), then the endpoint's (503)."""

    def __init__(self, cfg: RedisRateLimit, name: str,
                 pool: Lease[RedisBuckets | RedisCluster]) -> None:
        self.limits = cfg.limits
        self.allow = cfg.on_failure_allow
        self.name = name
        self.pool = pool

    async def check(self, req: Request, params: dict[str, str]
                    ) -> tuple[int, list[tuple[str, str]]]:
        """(0 when the request may pass, else the status that rejects it; the RateLimit-*
        headers when the section asks for them: of the bucket that refused, else of the
        client's, else of the endpoint's)."""
        cfg = self.limits
        buckets: list[tuple[str, float, float]] = []
        if cfg.client_rate > 0:
            who = ratelimit.client_key(cfg, req, params)
            if not who:
                return 429, []
            buckets.append((f"{self.name}:{who}", cfg.client_rate, cfg.client_capacity))
        if cfg.rate > 0:
            buckets.append((self.name, cfg.rate, cfg.capacity))
        try:
            refused, tokens = await self.pool.value.take_chain(buckets)
        except RedisUnavailable:
            return (0 if self.allow else 503), []
        headers: list[tuple[str, str]] = []
        if cfg.headers:
            _, rate, capacity = buckets[refused - 1 if refused else 0]
            headers = ratelimit.limit_headers(
                taken(refused == 0, tokens[refused - 1 if refused else 0], rate, capacity),
                capacity)
        if refused == 0:
            return 0, headers
        return (429 if refused == 1 and cfg.client_rate > 0 else 503), headers


def limiter(ctx: Build[RedisRateLimit]) -> RedisLimiter:
    """The limiter of this place. Its key names the place and the limits only; the braces
    make every key of one limiter a single Redis hash slot (one script touches them all)."""
    cfg = ctx.config
    limits = {k: v for k, v in asdict(cfg.limits).items() if k != "headers"}  # not a limit
    name = f"{KEY_PREFIX}{{{ctx.scope}|{fingerprint(limits)}}}"
    return RedisLimiter(cfg, name, pool_lease(ctx, cfg.pool, cfg.pool_key))


def build_router(ctx: Build[RedisRateLimit], nxt: EndpointHandler) -> EndpointHandler:
    """Check the buckets in Redis before the endpoint runs."""
    lim = limiter(ctx)

    async def limited(req: Request, params: dict[str, str]) -> Response:
        status, headers = await lim.check(req, params)
        if status:
            return Response(status, headers)
        resp = await nxt(req, params)
        if headers:
            resp.headers.extend(headers)
        return resp

    return limited


def build_service(ctx: Build[RedisRateLimit], nxt: ServiceHandler) -> ServiceHandler:
    """Check the service's buckets in Redis before routing (not for `/__health`)."""
    if ctx.config.limits.strategy == "param":
        raise ctx.error("strategy: 'param' names a route parameter, and a service-level limit "
                        "runs before routing (use ip or header)", "strategy")
    lim = limiter(ctx)
    no_params: dict[str, str] = {}

    async def limited(req: Request) -> Response:
        if req.path == "/__health":
            return await nxt(req)
        status, headers = await lim.check(req, no_params)
        if status:
            return Response(status, headers)
        resp = await nxt(req)
        if headers:
            resp.headers.extend(headers)
        return resp

    return limited


ROUTER: Component[RedisRateLimit] = Component(
    ROUTER_NAMESPACE, frozenset({Level.ROUTER}), build_router, parse=parse, schema=SCHEMA,
    order=10)
SERVICE: Component[RedisRateLimit] = Component(
    SERVICE_NAMESPACE, frozenset({Level.SERVICE}), build_service, parse=parse, schema=SCHEMA,
    order=5)
