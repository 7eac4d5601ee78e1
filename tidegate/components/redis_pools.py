"""``redis`` (service level): KrakenD EE's named Redis connection pools.

The section only declares pools; the components that need Redis (``qos/ratelimit/router/redis``
and ``qos/ratelimit/service/redis``) name one with ``connection_pool`` or ``connection_name``
and lease its client (`pool_lease`), so every limiter of a worker that names the same pool with
the same settings shares one client, kept across reloads while the settings are unchanged.

Fields honoured (go-redis's defaults): ``name``, ``address`` (``host:port``), ``db`` (EE 2.8
wrote ``database``), ``user_name``, ``password``, ``client_name``, ``dial_timeout`` (5s: connect
and set up), ``read_timeout`` (3s: a command unanswered that long fails the connection),
``min_retry_backoff`` / ``max_retry_backoff`` (8ms / 512ms: the delays between reconnection
attempts). Accepted without effect: ``pool_size``, ``pool_timeout``, ``write_timeout`` and the
idle/lifetime limits (each worker pipelines every command on one connection per pool, so there
is no pool to size or wait for), ``max_retries`` (a take is never retried: it is not
idempotent), ``opentelemetry``. ``clusters[]`` take the same fields with ``addresses`` (seeds:
the other masters are found with ``CLUSTER SLOTS``) and ``max_redirects`` (3);
``read_only``, ``route_by_latency`` and ``route_randomly`` are accepted (every take writes: it
goes to the slot's master). ``tls`` is validated, and a limiter that would use such a pool is
refused (``check`` says where): tidegate does not speak TLS to Redis yet, and a limit that
cannot be enforced must not pass as one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tidegate.components.seam import Build, Component, JsonPath, Lease, Level
from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import ConfigValueError
from tidegate.messages import ServiceHandler
from tidegate.state.redisbuckets import PoolSettings, RedisBuckets
from tidegate.state.rediscluster import ClusterSettings, RedisCluster

NAMESPACE = "redis"

_CLUSTER_ONLY = ("addresses", "max_redirects", "read_only", "route_by_latency",
                 "route_randomly")
_DURATION = {"type": "string", "description": "a Go duration such as \"5s\""}
_POOL_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "description": "how limiters refer to the pool"},
    "address": {"type": "string", "description": "host:port of the Redis server"},
    "db": {"type": "integer", "minimum": 0},
    "database": {"type": "integer", "minimum": 0, "description": "EE 2.8's name of `db`"},
    "user_name": {"type": "string"},
    "password": {"type": "string"},
    "pool_size": {"type": "integer", "minimum": 1, "description": "connections (10)"},
    "dial_timeout": {**_DURATION, "description": "connect timeout (5s)"},
    "read_timeout": {**_DURATION, "description": "command timeout (3s)"},
    "write_timeout": _DURATION,
    "pool_timeout": {**_DURATION, "description": "wait for a free connection"},
    "max_retries": {"type": "integer", "description": "retries of a failed command (3)"},
    "min_retry_backoff": _DURATION,
    "max_retry_backoff": _DURATION,
    "client_name": {"type": "string"},
    "min_idle_conns": {"type": "integer"},
    "max_idle_conns": {"type": "integer"},
    "max_active_conns": {"type": "integer"},
    "conn_max_idle_time": _DURATION,
    "conn_max_life_time": _DURATION,
    "tls": {"type": "object"},
    "opentelemetry": {"type": "object"},
}

_CLUSTER_FIELDS: dict[str, Any] = {
    **{k: v for k, v in _POOL_FIELDS.items() if k not in ("address", "db", "database")},
    "addresses": {"type": "array", "minItems": 1, "items": {"type": "string"},
                  "description": "host:port of some of the cluster's nodes (the rest is found)"},
    "max_redirects": {"type": "integer", "minimum": 0, "description": "MOVED/ASK followed (3)"},
    "read_only": {"type": "boolean"},
    "route_by_latency": {"type": "boolean"},
    "route_randomly": {"type": "boolean"},
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "redis: named Redis connection pools (KrakenD EE) for the Redis rate limits",
    "properties": {
        "connection_pools": {"type": "array", "items": {
            "type": "object", "required": ["name", "address"], "properties": _POOL_FIELDS,
            "patternProperties": {"^[@$_#]": True}, "additionalProperties": False}},
        "clusters": {"type": "array", "items": {
            "type": "object", "required": ["name", "addresses"],
            "properties": _CLUSTER_FIELDS,
            "patternProperties": {"^[@$_#]": True}, "additionalProperties": False}},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class RedisSection:
    """The pools and clusters by name."""

    pools: dict[str, PoolSettings | ClusterSettings]
    unusable: dict[str, str]   # name -> why a limiter cannot use it


def _duration(raw: dict[str, Any], name: str, default: float, path: JsonPath) -> float:
    if name not in raw:
        return default
    try:
        value = parse_duration(raw[name])
    except DurationError as exc:
        raise ConfigValueError(str(exc), path=(*path, name)) from None
    if value < 0:
        raise ConfigValueError(f"{name}: must not be negative", path=(*path, name))
    return value


def _int(raw: dict[str, Any], name: str, default: int, path: JsonPath, minimum: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigValueError(f"{name}: expected an integer of at least {minimum}, "
                               f"got {value!r}", path=(*path, name))
    return int(value)


def _str(raw: dict[str, Any], name: str, path: JsonPath) -> str | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, str):
        raise ConfigValueError(f"{name}: expected a string, got {value!r}", path=(*path, name))
    return value or None


def _address(raw: dict[str, Any], path: JsonPath) -> tuple[str, int]:
    value = raw.get("address")
    host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigValueError(f"address: expected host:port, got {value!r}",
                               path=(*path, "address"))
    return host, int(port)


def parse_pool(raw: Any, path: JsonPath) -> PoolSettings:
    """One ``connection_pools[]`` entry; errors located at its key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    name = _str(raw, "name", path)
    if not name:
        raise ConfigValueError("name: a pool needs a name", path=(*path, "name"))
    host, port = _address(raw, path)
    db_key = "db" if "db" in raw or "database" not in raw else "database"
    read = _duration(raw, "read_timeout", 3.0, path) or 3.0  # 0: go-redis's default
    return PoolSettings(
        name=name, host=host, port=port, db=_int(raw, db_key, 0, path, 0),
        username=_str(raw, "user_name", path), password=_str(raw, "password", path),
        pool_size=_int(raw, "pool_size", 10, path, 1),
        dial_timeout=_duration(raw, "dial_timeout", 5.0, path) or 5.0,
        read_timeout=read,
        write_timeout=_duration(raw, "write_timeout", 3.0, path) or 3.0,
        pool_timeout=_duration(raw, "pool_timeout", read + 1.0, path) or read + 1.0,
        max_retries=_int(raw, "max_retries", 3, path, -1),
        min_retry_backoff=_duration(raw, "min_retry_backoff", 0.008, path),
        max_retry_backoff=_duration(raw, "max_retry_backoff", 0.512, path),
        client_name=_str(raw, "client_name", path))


def parse_cluster(raw: Any, path: JsonPath) -> ClusterSettings:
    """One ``clusters[]`` entry: the seeds, and a pool's settings for each node."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    addresses = raw.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        raise ConfigValueError("addresses: expected a list of host:port",
                               path=(*path, "addresses"))
    seeds = tuple(_address({"address": a}, (*path, "addresses", i))
                  for i, a in enumerate(addresses))
    node = parse_pool({k: v for k, v in raw.items() if k not in _CLUSTER_ONLY}
                      | {"address": addresses[0]}, path)
    return ClusterSettings(node.name, seeds, node,
                           _int(raw, "max_redirects", 3, path, 0))


def parse(raw: Any, path: JsonPath) -> RedisSection:
    """The whole section: pools by name (names unique across pools and clusters)."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    pools: dict[str, PoolSettings | ClusterSettings] = {}
    unusable: dict[str, str] = {}
    for key in ("connection_pools", "clusters"):
        items = raw.get(key, [])
        if not isinstance(items, list):
            raise ConfigValueError(f"{key}: expected a list", path=(*path, key))
        for i, item in enumerate(items):
            where = (*path, key, i)
            pool = (parse_pool if key == "connection_pools" else parse_cluster)(item, where)
            name = pool.name
            if name in pools or name in unusable:
                raise ConfigValueError(f"name: {name!r} is already the name of another pool "
                                       "or cluster", path=(*where, "name"))
            if item.get("tls"):
                unusable[name] = "TLS to Redis is not supported by tidegate yet"
            else:
                pools[name] = pool
    return RedisSection(pools, unusable)


def pool_lease(ctx: Build[Any], name: str, key: str) -> Lease[RedisBuckets | RedisCluster]:
    """The client of the service's pool `name` (the limiter's field `key` names it), leased
    for this generation and opened on provision; shown on `/__health` under ``redis``.

    Leased under the ``redis`` namespace with scope ``service``: every limiter naming the
    same pool settings shares one client per worker, kept across reloads.
    """
    raw = ctx.service.extra_config.get(NAMESPACE)
    if raw is None:
        raise ctx.error(f"{key}: no Redis pool named {name!r}: declare it in the service's "
                        "extra_config.redis.connection_pools", key)
    try:
        section = parse(raw, ("extra_config", NAMESPACE))
    except ConfigValueError:
        raise ctx.error(f"{key}: the service's redis section is invalid (see its error)",
                        key) from None
    if name in section.unusable:
        raise ctx.error(f"{key}: {name!r}: {section.unusable[name]}", key)
    settings = section.pools.get(name)
    if settings is None:
        known = ", ".join(sorted(section.pools)) or "none"
        raise ctx.error(f"{key}: no Redis pool named {name!r} (declared: {known})", key)
    shared = dataclasses.replace(ctx, namespace=NAMESPACE)
    def create() -> RedisBuckets | RedisCluster:
        if isinstance(settings, ClusterSettings):
            return RedisCluster(settings)
        return RedisBuckets(settings)

    lease = shared.state(settings.fingerprint(), create, scope="service")
    ctx.on_provision(lambda: lease.value.open())
    ctx.report(NAMESPACE, name, lambda: lease.value.describe())
    return lease


def build(ctx: Build[RedisSection], nxt: ServiceHandler) -> ServiceHandler:
    """The section itself wraps nothing: the limiters lease the pools they name."""
    return nxt


COMPONENT: Component[RedisSection] = Component(NAMESPACE, frozenset({Level.SERVICE}), build,
                                               parse=parse, schema=SCHEMA)
