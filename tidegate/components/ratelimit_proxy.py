"""``qos/ratelimit/proxy``: one token bucket per backend definition, per node.

KrakenD CE (krakend-ratelimit v3 ``proxy``): ``max_rate`` per ``every`` (scaled to per second,
no minimum period), ``capacity`` defaulting to that per-second rate (1 when below 1). A call
over the limit fails without reaching the backend, with lura's error text ``rate limit
exceded`` (sic): a single-backend endpoint answers 500, a merge gets a partial answer.

As the router-level limiter, the bucket is in the node's shared table and named by the
backend's scope and a fingerprint of the section: one limit per node whatever the worker
count, kept across reloads that leave the section alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import ConfigValueError
from tidegate.messages import BackendFailure, BackendProxy, ProxyRequest, ProxyResponse
from tidegate.state import fingerprint

NAMESPACE = "qos/ratelimit/proxy"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "qos/ratelimit/proxy: a token bucket in front of one backend (per node)",
    "properties": {
        "max_rate": {"type": "number", "description": "backend calls per `every`"},
        "capacity": {"type": "integer", "minimum": 0, "description": "bucket size"},
        "every": {"type": "string", "description": "the period of max_rate (default 1s)"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


class RateLimited(BackendFailure):
    """The backend's bucket is empty: the call fails before reaching it."""

    def __init__(self) -> None:
        super().__init__("rate limit exceded")  # lura's spelling: clients may match on it


@dataclass(frozen=True, slots=True)
class ProxyLimit:
    rate: float      # calls per second
    capacity: float


def parse(raw: Any, path: JsonPath) -> ProxyLimit:
    """The typed section; errors located at the key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    rate = raw.get("max_rate", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ConfigValueError(f"max_rate: expected a number, got {rate!r}",
                               path=(*path, "max_rate"))
    capacity = raw.get("capacity", 0)
    if isinstance(capacity, bool) or not isinstance(capacity, int | float) or capacity < 0:
        raise ConfigValueError(f"capacity: expected a positive integer, got {capacity!r}",
                               path=(*path, "capacity"))
    every = 1.0
    if "every" in raw:
        try:
            every = parse_duration(raw["every"])
        except DurationError as exc:
            raise ConfigValueError(str(exc), path=(*path, "every")) from None
        if every <= 0:
            raise ConfigValueError(f"every: expected a positive duration, got {raw['every']!r}",
                                   path=(*path, "every"))
    per_second = max(0.0, float(rate)) / every
    if not capacity:
        capacity = int(per_second) if per_second >= 1 else 1
    return ProxyLimit(per_second, float(int(capacity)))


class BackendLimiter:
    """The bucket's name in the node's table (same on every worker and across reloads)."""

    def __init__(self, cfg: ProxyLimit, name: str) -> None:
        self.cfg = cfg
        self.name = name


def build(ctx: Build[ProxyLimit], nxt: BackendProxy) -> BackendProxy:
    cfg = ctx.config
    if cfg.rate <= 0:
        return nxt
    section = asdict(cfg)
    name = f"{NAMESPACE}|{ctx.scope}|{fingerprint(section)}"
    lease = ctx.state(section, lambda: BackendLimiter(cfg, name))
    resources = ctx.resources

    async def limited(req: ProxyRequest) -> ProxyResponse:
        limiter = lease.value
        if not resources.buckets.admit(limiter.name, cfg.rate, cfg.capacity):
            raise RateLimited()
        return await nxt(req)

    return limited


# bounded: a token is taken without awaiting; then only the call itself.
COMPONENT: Component[ProxyLimit] = Component(NAMESPACE, frozenset({Level.BACKEND}), build,
                                             parse=parse, schema=SCHEMA, order=30,
                                             bounded=True)
