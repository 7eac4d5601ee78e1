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
* client level (the request executor): http-client plugin 5 < HTTP cache 10 < martian 20.
"""

from __future__ import annotations

from typing import Any

from tidegate.components import (
    botdetector,
    breaker,
    cel,
    cors,
    httpcache,
    jsonschema_body,
    jwt,
    jwt_signer,
    martian,
    pyplugins,
    ratelimit,
    ratelimit_proxy,
    redis_pools,
    redis_ratelimit,
    revoker,
    secure_headers,
)
from tidegate.components.lua import component as lua
from tidegate.components.seam import Component

COMPONENTS: list[Component[Any]] = [
    ratelimit.COMPONENT,
    ratelimit_proxy.COMPONENT,
    breaker.COMPONENT,
    httpcache.COMPONENT,
    *pyplugins.COMPONENTS,
    jsonschema_body.COMPONENT,
    jwt.COMPONENT,
    cel.COMPONENT,
    cel.JWT_REJECTER,
    martian.COMPONENT,
    redis_pools.COMPONENT,
    redis_ratelimit.ROUTER,
    redis_ratelimit.SERVICE,
    *cors.COMPONENTS,
    *secure_headers.COMPONENTS,
    *botdetector.COMPONENTS,
    jwt_signer.COMPONENT,
    revoker.COMPONENT,
    *lua.COMPONENTS,
]
