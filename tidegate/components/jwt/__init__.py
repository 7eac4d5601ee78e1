"""``auth/validator`` (krakend-jose semantics): JWT validation at the router level.

Modules, each with one job: `config` (the section → a frozen value, located errors), `keys`
(a JWK set → an index by key id), `fetch` (one bounded download with krakend-jose's TLS
options), `cache` (one key set per URL, shared and kept across reloads), `verify` (one token
checked), `claims` (roles, scopes, claims to headers and parameters), `component` (the stage).
"""

from __future__ import annotations

from tidegate.components.jwt.component import build
from tidegate.components.jwt.config import NAMESPACE, ValidatorConfig, parse
from tidegate.components.jwt.schema import SCHEMA
from tidegate.components.seam import Component, Level

# Stacking (`catalog`): inside the bot detector, outside rate limits, endpoint Lua and the
# signer, so an invalid token is refused before it costs a rate-limit token.
ORDER = 40

COMPONENT: Component[ValidatorConfig] = Component(
    namespace=NAMESPACE, levels=frozenset({Level.ROUTER}), build=build, parse=parse,
    schema=SCHEMA, order=ORDER)
