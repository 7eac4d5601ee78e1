"""``auth/validator`` as a router-level stage: the token is checked before anything else of the
endpoint runs (krakend-ce's handler factory: after the bot detector, before rate limits).

A rejection is gin's ``AbortWithStatus``: 401 (no token, a bad one, no key for it) or 403
(roles, scopes), empty body, no Content-Type, no X-Krakend headers. Its reason is logged at
DEBUG (at ERROR with ``operation_debug``, as KrakenD); KrakenD logs nothing without it.

What an accepted request carries on: the verified claims as ``Request.jwt_claims`` (for later
stages: CEL ``JWT`` expressions, rate limits by claim, the revoker), the ``propagate_claims``
headers (replacing what the client sent; a backend sees them if they are in its
``input_headers``), and the ``{JWT.<claim>}`` placeholders of the backends' url_patterns as
route parameters ``JWT.<claim>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from joserfc.jwk import Key

from tidegate.components.jwt.cache import (
    DEFAULT_COOLDOWN,
    JwksCache,
    KeysUnavailable,
    Policy,
    StaticKeys,
    VerifiedTokens,
)
from tidegate.components.jwt.claims import (
    claim_params,
    propagated_headers,
    roles_matcher,
    scopes_matcher,
)
from tidegate.components.jwt.config import ValidatorConfig
from tidegate.components.jwt.fetch import TLSOptions
from tidegate.components.jwt.keys import KeyIndex, KeySetError
from tidegate.components.jwt.verify import (
    Expired,
    Rejected,
    Verified,
    check_header,
    check_signature,
    check_times,
    decode_claims,
    extract,
    key_id,
    parse,
)
from tidegate.components.revoker import revocation_check
from tidegate.components.seam import Build, answered
from tidegate.config.model import PLACEHOLDER
from tidegate.messages import EndpointHandler, Request, Response

log = logging.getLogger("tidegate.jwt")
_wall = time.time  # the clock tokens' dates are compared with (tests move it)


class KeySource(Protocol):
    """Where a validator finds keys: a downloaded set (`JwksCache`) or a file (`StaticKeys`)."""

    verified: VerifiedTokens

    def current(self) -> KeyIndex | None: ...

    def cached(self, strategy: str, key_id: str) -> Key | None: ...

    async def key(self, strategy: str, key_id: str) -> Key: ...


def key_source(b: Build[ValidatorConfig]) -> Callable[[], KeySource]:
    """The endpoint's key source, as a getter valid per request (leased state is set only at
    provision). Downloaded sets are shared per URL and TLS settings across endpoints and
    generations; a local file is indexed now, so a file without a usable key is a config error."""
    cfg = b.config
    if cfg.local_jwks is not None:
        try:
            static = StaticKeys(KeyIndex.from_document(orjson.loads(cfg.local_jwks),
                                                       cfg.jwk_local_path), cfg.jwk_local_path)
        except KeySetError as exc:
            raise b.error(str(exc), "jwk_local_path") from None
        return lambda: static
    tls = TLSOptions(cfg.jwk_local_ca, cfg.disable_jwk_security, cfg.fingerprints,
                     cfg.cipher_suites)
    policy = Policy(cfg.cache, cfg.cache_duration,
                    cfg.failed_key_cooldown if cfg.failed_key_cooldown is not None
                    else DEFAULT_COOLDOWN)
    lease = b.state(cfg.source_fingerprint(), lambda: JwksCache(cfg.jwk_url, tls, policy),
                    scope="service")
    b.on_provision(lambda: lease.value.prefetch())
    return lambda: lease.value


def jwt_param_names(b: Build[Any]) -> tuple[str, ...]:
    """Claims named by ``{JWT.<claim>}`` in the endpoint's backends (KrakenD's
    extractRequiredJWTClaims)."""
    names: list[str] = []
    for backend in b.endpoint.backend if b.endpoint is not None else ():
        for name in PLACEHOLDER.findall(backend.url_pattern):
            if name.startswith("JWT.") and name[4:] not in names:
                names.append(name[4:])
    return tuple(names)


def build(b: Build[ValidatorConfig], next_stage: EndpointHandler) -> EndpointHandler:
    """Wrap the endpoint's handler with the validator (compile time: no I/O)."""
    cfg = b.config
    source = key_source(b)
    roles = roles_matcher(cfg.roles_key, cfg.roles_key_is_nested, cfg.roles) \
        if cfg.roles else None
    scopes = scopes_matcher(cfg.scopes_key, cfg.scopes_matcher, cfg.scopes) \
        if cfg.scopes and cfg.scopes_key else None
    params = jwt_param_names(b)
    propagate = cfg.propagate_claims
    replaced = frozenset(header.lower() for _, header in propagate)
    alg, strategy, leeway = cfg.alg, cfg.key_identify_strategy, cfg.leeway
    where = f"[ENDPOINT: {b.endpoint.endpoint if b.endpoint else b.scope}][JWTValidator]"
    level = logging.ERROR if cfg.operation_debug else logging.DEBUG
    revoked = revocation_check(b)  # the root auth/revoker's filter, if there is one

    issuer, audience = cfg.issuer, cfg.audience

    async def verified(raw: str, keys: KeySource) -> Verified:
        """Signature and claim types checked: what `VerifiedTokens` remembers."""
        token = parse(raw)
        check_header(token, alg)
        kid = key_id(token.header, strategy)
        key = keys.cached(strategy, kid)
        if key is None:
            try:
                key = await keys.key(strategy, kid)
            except KeysUnavailable as exc:
                raise Rejected(401, str(exc)) from None
        check_signature(token, key, alg)
        return Verified(token.header, key, decode_claims(token), keys.current(), strategy)

    def accept(token: Verified) -> None:
        """Everything that depends on the time or on this validator's settings: on every
        request, remembered token or not (the first failure raises)."""
        # go-jose's Expected: iss equal when configured, every configured aud present.
        if issuer and token.claims.get("iss") != issuer:
            raise Rejected(401, f"issuer {token.claims.get('iss')!r} is not {issuer!r}")
        for wanted in audience:
            if wanted not in token.audience:
                raise Rejected(401, f"audience {list(token.audience)!r} does not include "
                                    f"{wanted!r}")
        check_times(token, leeway, _wall())
        # Before the roles, as krakend-jose's rejecter: a revoked token is 401 whatever its
        # roles; asked each time, since a token is revoked while it is in use.
        if revoked is not None and revoked(token.claims):
            raise Rejected(401, "the token is revoked (auth/revoker)")
        if roles is not None and not roles(token.claims):
            raise Rejected(403, f"none of the roles {list(cfg.roles)} in claim "
                                f"{cfg.roles_key!r}")
        if scopes is not None and not scopes(token.claims):
            raise Rejected(403, f"scopes ({cfg.scopes_matcher} of {list(cfg.scopes)}) not "
                                f"in claim {cfg.scopes_key!r}")

    def refuse(req: Request, exc: Rejected) -> Response:
        if log.isEnabledFor(level):
            log.log(level, "%s %d: %s (%s %s from %s)", where, exc.status, exc.reason,
                    req.method, req.path, req.client_ip)
        return Response(exc.status)

    def proceed(req: Request, route_params: dict[str, str], claims: dict[str, Any]
                ) -> Awaitable[Response]:
        """The accepted request on to the endpoint (its claims, headers and parameters)."""
        req.jwt_claims = claims
        if propagate:
            headers = [(k, v) for k, v in req.headers if k not in replaced]
            for header, values in propagated_headers(propagate, cfg.propagate_claims_preserve_array,
                                                     claims):
                headers.extend((header.lower(), v) for v in values)
            req.headers = headers
        if params:
            route_params = {**route_params, **claim_params(params, claims)}
        return next_stage(req, route_params)

    async def first_time(req: Request, route_params: dict[str, str], raw: str,
                         keys: KeySource) -> Response:
        """A token not remembered (or not for this set, algorithm and key strategy): verified,
        and remembered only once it is accepted."""
        try:
            token = await verified(raw, keys)
            accept(token)
        except Rejected as exc:
            return refuse(req, exc)
        if token.index is not None:  # None: verified with a stale set (its server is down)
            keys.verified.add(raw, token)
        return await proceed(req, route_params, dict(token.claims))

    def validate(req: Request, route_params: dict[str, str]) -> Awaitable[Response]:
        """Not a coroutine itself: a remembered token goes on as the endpoint's own awaitable
        (one coroutine less per request); the rest through `first_time`."""
        token = None
        try:
            raw = extract(req, cfg)
            keys = source()
            token = keys.verified.get(raw)
            if token is None or token.index is not keys.current() or token.alg != alg \
                    or token.strategy != strategy:
                return first_time(req, route_params, raw, keys)
            accept(token)
        except Rejected as exc:
            if token is not None and isinstance(exc, Expired):
                keys.verified.discard(raw)  # never accepted again: no need to remember it
            return answered(refuse(req, exc))
        return proceed(req, route_params, dict(token.claims))  # a copy: later stages may change it

    return validate


