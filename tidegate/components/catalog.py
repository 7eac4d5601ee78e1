"""Every component tidegate implements, in one list (one line per namespace module; a
component stacked differently at two levels registers once per level).

Stacking order (``Component.order``: smaller is closer to the core), krakend-ce's, as
research/components.md §2 reads it from its factories:

* router level: rate limit 10 < Lua endpoint 20 < JWT signer 30 < JWT validator (+ revoker,
  CEL on JWT) 40 < metrics 50 < bot detector 60 < security/http 62 < CORS 64 (both EE at
  this level) < telemetry 70; except that the JWT signer, which replaces lura's handler, is
  registered at 0: KrakenD's signer skips the rate limit and Lua of its endpoint, tidegate
  keeps them around it (a login endpoint's rate limit is what stops password guessing);
* service level: bot detector 10 < Lua 20 < security/http 30 < CORS 40 < telemetry 50;
* proxy level: static/merge (core) < JSON schema 10 < CEL 20 < Lua proxy 30 < telemetry 50;
* backend level: CEL 10 < Lua backend 20 < rate limit 30 < circuit breaker 40 < telemetry 50;
* client level (the request executor): http-client plugin 5 < HTTP cache 10 < telemetry 15 <
  martian 20.

``telemetry/opentelemetry`` is served by two components at each level: the metrics recorder
(the orders above) and, around it, the traces (service, proxy, backend 55, router 75, client
17); the registry keeps both, ordered.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.components import telemetry_logs, telemetry_metrics
from tidegate.components.seam import Component, Level

R, P, B = Level.ROUTER, Level.PROXY, Level.BACKEND
S, C = Level.SERVICE, Level.CLIENT


@dataclass(frozen=True, slots=True)
class Declared:
    """A component named by where it lives, loaded the first time a configuration uses it.

    A worker whose configuration has no CEL, Lua, JWT or JSON schema never imports cel-python,
    lupa, joserfc or jsonschema (with all of them a worker holds about 20 MiB more at rest).
    What the registry must know before that (namespace, levels, order) is written here;
    tests/test_catalog.py checks it against the module's own `Component` value.
    """

    module: str  # under tidegate.components
    attr: str  # the module's value: a Component, or a list of them with `index`
    namespace: str
    levels: frozenset[Level]
    order: int
    index: int | None = None
    service_wide: bool = False
    bounded: bool = False

    def load(self) -> Component[Any]:
        """The module's own value (imports the module, once)."""
        value = getattr(importlib.import_module(f"tidegate.components.{self.module}"), self.attr)
        return value if self.index is None else value[self.index]  # type: ignore[no-any-return]

    def component(self) -> Component[Any]:
        """A stand-in that loads the real component when a configuration first reaches it."""
        return Component(self.namespace, self.levels,
                         build=lambda ctx, stage: self.load().build(ctx, stage),
                         parse=lambda raw, path: self.load().parse(raw, path),
                         schema=_LazySchema(self), order=self.order,
                         service_wide=self.service_wide, bounded=self.bounded)


class _LazySchema(Mapping[str, Any]):
    """The component's JSON schema, read when `check -l` or `tidegate schema` asks for it."""

    def __init__(self, declared: Declared) -> None:
        self._declared = declared

    def _schema(self) -> Mapping[str, Any]:
        return self._declared.load().schema or {}

    def __getitem__(self, key: str) -> Any:
        return self._schema()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._schema())

    def __len__(self) -> int:
        return len(self._schema())


def _levels(*levels: Level) -> frozenset[Level]:
    return frozenset(levels)


DECLARED: tuple[Declared, ...] = (
    Declared("ratelimit", "COMPONENT", "qos/ratelimit/router", _levels(R), 10),
    Declared("ratelimit_proxy", "COMPONENT", "qos/ratelimit/proxy", _levels(B), 30,
             bounded=True),
    Declared("breaker", "COMPONENT", "qos/circuit-breaker", _levels(B), 40, bounded=True),
    Declared("httpcache", "COMPONENT", "qos/http-cache", _levels(C), 10, bounded=True),
    Declared("pyplugins", "COMPONENTS", "plugin/http-server", _levels(S), 60, 0),
    Declared("pyplugins", "COMPONENTS", "plugin/http-client", _levels(C), 5, 1),
    Declared("pyplugins", "COMPONENTS", "plugin/req-resp-modifier", _levels(B, P), 90, 2),
    Declared("jsonschema_body", "COMPONENT", "validation/json-schema", _levels(P), 10),
    Declared("jwt", "COMPONENT", "auth/validator", _levels(R), 40),
    Declared("cel", "COMPONENT", "validation/cel", _levels(B, P), 15),
    Declared("cel", "JWT_REJECTER", "validation/cel", _levels(R), 39),
    Declared("martian", "COMPONENT", "modifier/martian", _levels(C), 20, bounded=True),
    Declared("redis_pools", "COMPONENT", "redis", _levels(S), 100),
    Declared("redis_ratelimit", "ROUTER", "qos/ratelimit/router/redis", _levels(R), 10),
    Declared("redis_ratelimit", "SERVICE", "qos/ratelimit/service/redis", _levels(S), 5),
    Declared("cors", "COMPONENTS", "security/cors", _levels(S), 40, 0),
    Declared("cors", "COMPONENTS", "security/cors", _levels(R), 64, 1),
    Declared("secure_headers", "COMPONENTS", "security/http", _levels(S), 30, 0),
    Declared("secure_headers", "COMPONENTS", "security/http", _levels(R), 62, 1),
    Declared("botdetector", "COMPONENTS", "security/bot-detector", _levels(S), 10, 0),
    Declared("botdetector", "COMPONENTS", "security/bot-detector", _levels(R), 60, 1),
    Declared("jwt_signer", "COMPONENT", "auth/signer", _levels(R), 0),
    Declared("revoker", "COMPONENT", "auth/revoker", _levels(S), 100),
    Declared("lua.component", "COMPONENTS", "modifier/lua-endpoint", _levels(R, S), 20, 0),
    Declared("lua.component", "COMPONENTS", "modifier/lua-proxy", _levels(P), 30, 1),
    Declared("lua.component", "COMPONENTS", "modifier/lua-backend", _levels(B), 20, 2),
    # Traces of telemetry/opentelemetry: around the metrics recorder, at each of its levels.
    Declared("telemetry_traces", "COMPONENTS", "telemetry/opentelemetry", _levels(S), 55, 0),
    Declared("telemetry_traces", "COMPONENTS", "telemetry/opentelemetry", _levels(R), 75, 1,
             service_wide=True),
    Declared("telemetry_traces", "COMPONENTS", "telemetry/opentelemetry", _levels(P), 55, 2,
             service_wide=True),
    Declared("telemetry_traces", "COMPONENTS", "telemetry/opentelemetry", _levels(B), 55, 3,
             service_wide=True, bounded=True),
    Declared("telemetry_traces", "COMPONENTS", "telemetry/opentelemetry", _levels(C), 17, 4,
             service_wide=True, bounded=True),
)

# Light components (no heavy dependency) are listed here as values, loaded eagerly: the logs and
# the metrics recorder (telemetry/opentelemetry, telemetry/metrics, telemetry/influx) at every
# level: plain tables, no heavy dependency.
EAGER: list[Component[Any]] = [*telemetry_logs.COMPONENTS, *telemetry_metrics.COMPONENTS]

COMPONENTS: list[Component[Any]] = [*(d.component() for d in DECLARED), *EAGER]
