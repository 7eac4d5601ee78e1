"""``qos/ratelimit/router``: an endpoint's token buckets, one per node, kept across reloads.

KrakenD CE semantics (krakend-ratelimit v3.3.1): the client bucket is checked first (429 when
it is empty or the client has no key), then the endpoint's (503); both answers have an empty
body. Rates are scaled to per second by ``1s / every`` (``every`` is at least 1s), and a
capacity defaults to that per-second rate, or 1 when it is below 1.

Where tidegate differs, on purpose:

* The buckets live in the node's shared table (`tidegate.state.SharedBuckets`): a limit of
  100 req/s is 100 req/s for the node whatever the worker count, and it survives a hot reload
  that leaves this section unchanged (the bucket's name is the endpoint plus a fingerprint of
  the section). KrakenD forgets every bucket on each restart.
* Requests spend per-worker leases of the node's buckets (`tidegate.state.LeasedBuckets`): a
  worker takes a small batch of tokens under the table's lock and spends it lock-free, never
  letting more through than the bucket would. With ``"headers": true`` every request takes
  its own token, so the numbers shown are the bucket's.
* A continuous token bucket, without KrakenD's refill quirks (a full refill serving one request
  for free; a refill clock that stands still while tokens remain).
* ``client_max_rate`` without a ``strategy`` is a configuration error: KrakenD silently serves
  without the client limit.
* ``"headers": true`` (a tidegate field; off by default so answers stay KrakenD's) adds
  ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` to every answer and
  ``Retry-After`` to rejections, from the client's bucket when there is a client limit.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any

from tidegate.components.seam import Build, Component, JsonPath, Level, answered
from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import ConfigValueError
from tidegate.messages import EndpointHandler, Request, Response
from tidegate.state import BucketStore, Taken, fingerprint

NAMESPACE = "qos/ratelimit/router"
STRATEGIES = ("ip", "header", "param")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "qos/ratelimit/router: endpoint and per-client token buckets (per node)",
    "properties": {
        "max_rate": {"type": "number", "description": "endpoint requests per `every`"},
        "capacity": {"type": "integer", "minimum": 0, "description": "endpoint bucket size"},
        "client_max_rate": {"type": "number", "description": "requests per `every` per client"},
        "client_capacity": {"type": "integer", "minimum": 0},
        "strategy": {"type": "string", "description": "how clients are told apart",
                     "pattern": "^(?i:ip|header|param)$"},
        "key": {"type": "string", "description": "header or route parameter naming the client"},
        "every": {"type": "string", "description": "the period of the rates (at least 1s)"},
        "num_shards": {"type": "integer"},
        "cleanup_period": {"type": "string"},
        "cleanup_threads": {"type": "integer"},
        "headers": {"type": "boolean",
                    "description": "tidegate: add RateLimit-Limit/-Remaining/-Reset to answers "
                                   "and Retry-After to rejections (off: as KrakenD)"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The section, per second, with KrakenD's defaults applied."""

    rate: float             # endpoint tokens per second (0: no endpoint limit)
    capacity: float
    client_rate: float      # per client (0: no client limit)
    client_capacity: float
    strategy: str           # "ip", "header", "param" ("" without a client limit)
    key: str
    headers: bool = False   # tidegate: RateLimit-* and Retry-After on the answers


def _number(raw: dict[str, Any], name: str, path: JsonPath) -> float:
    value = raw.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigValueError(f"{name}: expected a number, got {value!r}", path=(*path, name))
    return float(value)


def _default_capacity(rate: float) -> float:
    return float(int(rate)) if rate >= 1 else 1.0


def parse(raw: Any, path: JsonPath) -> RateLimit:
    """The typed section; errors are located at the offending key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    every = 1.0
    if "every" in raw:
        try:
            every = max(1.0, parse_duration(raw["every"]))
        except DurationError as exc:
            raise ConfigValueError(str(exc), path=(*path, "every")) from None
    scale = 1.0 / every
    rate = max(0.0, _number(raw, "max_rate", path)) * scale
    client_rate = max(0.0, _number(raw, "client_max_rate", path)) * scale
    capacity = _number(raw, "capacity", path) or _default_capacity(rate)
    client_capacity = _number(raw, "client_capacity", path) or _default_capacity(client_rate)
    strategy = raw.get("strategy", "")
    if not isinstance(strategy, str) or (strategy and strategy.lower() not in STRATEGIES):
        raise ConfigValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, "
                               f"got {strategy!r}", path=(*path, "strategy"))
    strategy = strategy.lower()
    key = raw.get("key", "")
    if not isinstance(key, str):
        raise ConfigValueError(f"key: expected a string, got {key!r}", path=(*path, "key"))
    if client_rate > 0 and not strategy:
        raise ConfigValueError(
            "client_max_rate needs a strategy (ip, header or param): without one KrakenD "
            "serves without the client limit, tidegate refuses", path=(*path, "client_max_rate"))
    if client_rate > 0 and strategy in ("header", "param") and not key:
        raise ConfigValueError(f"strategy {strategy!r} needs a key: the {strategy} that names "
                               "the client", path=(*path, "key"))
    headers = raw.get("headers", False)
    if not isinstance(headers, bool):
        raise ConfigValueError(f"headers: expected true or false, got {headers!r}",
                               path=(*path, "headers"))
    return RateLimit(rate, capacity, client_rate, client_capacity,
                     strategy if client_rate > 0 else "", key, headers)


def client_key(cfg: RateLimit, req: Request, params: dict[str, str]) -> str:
    """Who the client is for its bucket ("" when the request does not say)."""
    if cfg.strategy == "ip":
        if cfg.key:  # the first address of the named header, as KrakenD (no trust check)
            value = req.header(cfg.key.lower()) or ""
            return value.split(",", 1)[0].strip()
        return req.client_ip
    if cfg.strategy == "header":
        return req.header(cfg.key.lower()) or ""
    return params.get(cfg.key, "")


class Limiter:
    """An endpoint's limits, by name in the node's bucket table.

    The name (endpoint scope + fingerprint of the section) is the same on every worker (one
    bucket per node) and after a reload that leaves the section alone (the bucket is kept).
    A limiter is what `Build.state` hands over between generations.
    """

    def __init__(self, cfg: RateLimit, name: str) -> None:
        self.cfg = cfg
        self.name = name

    def status(self, buckets: BucketStore, req: Request, params: dict[str, str]) -> int:
        """0 when the request may pass, else the status that rejects it (429 or 503)."""
        cfg = self.cfg
        if cfg.client_rate > 0:
            who = client_key(cfg, req, params)
            if not who or not buckets.admit(f"{self.name}|{who}", cfg.client_rate,
                                            cfg.client_capacity):
                return 429
        if cfg.rate > 0 and not buckets.admit(self.name, cfg.rate, cfg.capacity):
            return 503
        return 0

    def check(self, buckets: BucketStore, req: Request, params: dict[str, str]
              ) -> tuple[int, list[tuple[str, str]]]:
        """`status` plus the RateLimit-* (and Retry-After) headers of the bucket that
        decided: the client's when there is a client limit, else the endpoint's."""
        cfg = self.cfg
        shown: tuple[Taken, float] | None = None
        if cfg.client_rate > 0:
            who = client_key(cfg, req, params)
            if not who:
                return 429, []
            taken = buckets.take(f"{self.name}|{who}", cfg.client_rate, cfg.client_capacity)
            shown = (taken, cfg.client_capacity)
            if not taken.allowed:
                return 429, limit_headers(taken, cfg.client_capacity)
        if cfg.rate > 0:
            taken = buckets.take(self.name, cfg.rate, cfg.capacity)
            if not taken.allowed:
                return 503, limit_headers(taken, cfg.capacity)
            shown = shown or (taken, cfg.capacity)
        return 0, limit_headers(*shown) if shown is not None else []


def limit_headers(taken: Taken, capacity: float) -> list[tuple[str, str]]:
    """draft-ietf-httpapi-ratelimit-headers fields, plus Retry-After when rejected."""
    out = [("RateLimit-Limit", str(int(capacity))),
           ("RateLimit-Remaining", str(max(0, int(taken.remaining)))),
           ("RateLimit-Reset", str(math.ceil(taken.reset)))]
    if not taken.allowed:
        out.append(("Retry-After", str(max(1, math.ceil(taken.retry_after)))))
    return out


def build(ctx: Build[RateLimit], nxt: EndpointHandler) -> EndpointHandler:
    """Check the client's bucket, then the endpoint's, before the endpoint runs."""
    cfg = ctx.config
    if cfg.rate <= 0 and cfg.client_rate <= 0:
        return nxt
    section = asdict(cfg)
    name = f"{NAMESPACE}|{ctx.scope}|{fingerprint(section)}"
    lease = ctx.state(section, lambda: Limiter(cfg, name))
    resources = ctx.resources

    def limited(req: Request, params: dict[str, str]) -> Awaitable[Response]:
        status = lease.value.status(resources.buckets, req, params)
        if status:
            return answered(Response(status, []))
        return nxt(req, params)  # the endpoint's own awaitable: no coroutine of this stage

    async def limited_with_headers(req: Request, params: dict[str, str]) -> Response:
        status, headers = lease.value.check(resources.buckets, req, params)
        if status:
            return Response(status, headers)
        resp = await nxt(req, params)
        resp.headers.extend(headers)
        return resp

    return limited_with_headers if cfg.headers else limited


COMPONENT: Component[RateLimit] = Component(NAMESPACE, frozenset({Level.ROUTER}), build,
                                            parse=parse, schema=SCHEMA, order=10)
