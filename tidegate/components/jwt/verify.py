"""One token checked as go-auth0 + go-jose v3 check it, with joserfc doing the cryptography.

Order (the first failure wins, every failure is a `Rejected` with the reason in words):
token from the header (``Bearer`` optional) or else the cookie → compact JWS parsed (go-jose
strips whitespace and ``=`` padding) → header ``alg`` equal to the configured one, so ``none``
and key confusion (an HS256 token against an RSA key) can never be chosen by the token → key by
``key_identify_strategy`` → the key fits the algorithm (type, ``use``, its own ``alg``, an HMAC
secret at least as long as the hash, RFC 7518 §3.2) → signature → registered claims: types,
``iss``, every configured ``aud``, ``exp``/``nbf``/``iat`` with the leeway.

Tokens with a ``crit`` header are refused (no extension is understood, as go-jose v3); the
JWS JSON serialization is not accepted in a header (KrakenD would: nobody sends it).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

from tidegate.components.jwt.config import ValidatorConfig
from tidegate.messages import Request

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_WHITESPACE = str.maketrans("", "", " \t\n\r")
_HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class Rejected(Exception):
    """A request the validator refuses: ``status`` (401 or 403) and why (for the logs)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Expired(Rejected):
    """The token's ``exp`` (plus the leeway) has passed: it will never be accepted again."""


class Token:
    """A parsed compact JWS: decoded header and payload, what was signed, the signature."""

    __slots__ = ("header", "payload", "signature", "signing_input")

    def __init__(self, header: dict[str, Any], payload: bytes, signing_input: bytes,
                 signature: bytes) -> None:
        self.header = header
        self.payload = payload
        self.signing_input = signing_input
        self.signature = signature


def _cookie(req: Request, name: str) -> str | None:
    """Go's ``r.Cookie(name)``: the first cookie of that name, quotes removed."""
    for line in req.header_values("cookie"):
        for part in line.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                if len(value) > 1 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                return value
    return None


def extract(req: Request, cfg: ValidatorConfig) -> str:
    """The raw token: the auth header (its ``Bearer `` prefix, any case, dropped) else the
    cookie. An empty header falls back to the cookie, as go-auth0's FromMultiple does."""
    name, raw = cfg.auth_header_name, ""
    for key, value in req.headers:  # Request.header's scan, inline (compiled, no call)
        if key == name:
            raw = value
            break
    if len(raw) > 7 and raw[:7].lower() == "bearer ":
        raw = raw[7:]
    if raw:
        return raw
    raw = _cookie(req, cfg.cookie_key) or ""
    if raw:
        return raw
    raise Rejected(401, "no token (neither the "
                        f"{cfg.auth_header_name} header nor the {cfg.cookie_key} cookie)")


def _b64(segment: str, what: str) -> bytes:
    """Go's RawURLEncoding after go-jose trims ``=``: the URL alphabet only, nothing skipped
    (Python's decoder would silently drop characters outside it)."""
    segment = segment.rstrip("=")
    if not _B64URL.fullmatch(segment):
        raise Rejected(401, f"malformed token: the {what} is not base64url")
    data = segment.encode("ascii").translate(_URL_TO_STD)
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise Rejected(401, f"malformed token: the {what} is not base64url") from None


def parse(raw: str) -> Token:
    """Split and decode a compact JWS (no verification yet)."""
    if " " in raw or "\t" in raw or "\n" in raw or "\r" in raw:
        raw = raw.translate(_WHITESPACE)
    if raw.startswith("{"):
        raise Rejected(401, "the JWS JSON serialization is not accepted as a bearer token")
    parts = raw.split(".")
    if len(parts) != 3:
        raise Rejected(401, "malformed token: compact JWS format must have three parts")
    header_bytes = _b64(parts[0], "header")
    try:
        header = orjson.loads(header_bytes)
    except orjson.JSONDecodeError:
        raise Rejected(401, "malformed token: the header is not JSON") from None
    if not isinstance(header, dict):
        raise Rejected(401, "malformed token: the header is not a JSON object")
    return Token(header, _b64(parts[1], "payload"), f"{parts[0]}.{parts[1]}".encode(),
                 _b64(parts[2], "signature"))


def check_header(token: Token, alg: str) -> None:
    """The token may not choose the algorithm: it must say exactly the configured one."""
    got = token.header.get("alg")
    if got != alg:
        raise Rejected(401, f"algorithm {got!r} is not the configured {alg!r}")
    if "crit" in token.header:
        raise Rejected(401, f"unsupported critical header extensions {token.header['crit']!r}")


def key_id(header: Mapping[str, Any], strategy: str) -> str:
    """krakend-jose's TokenIDGetter: which id of the JWK set the token names."""
    kid = header.get("kid")
    kid = kid if isinstance(kid, str) else ""
    if strategy == "kid":
        return kid
    name = "x5t#S256" if strategy == "x5t#S256" else "x5t"
    x5t = header.get(name)
    x5t = x5t if isinstance(x5t, str) else kid
    return kid + x5t if strategy == "kid_x5t" else x5t


def check_signature(token: Token, key: Key, alg: str) -> None:
    """joserfc's algorithm checks the key fits (type, curve, use, alg), then the signature."""
    model = JWSRegistry.algorithms[alg]
    try:
        model.check_key(key)
    except JoseError as exc:
        raise Rejected(401, f"the key cannot verify {alg}: {exc.description or exc}") from None
    need = _HMAC_BYTES.get(alg)
    if need is not None:
        secret = key.get_op_key("verify")
        size = len(secret) if isinstance(secret, bytes) else 0
        if size < need:
            raise Rejected(401, f"the HMAC secret has {size} bytes, {alg} needs at least {need} "
                                "(RFC 7518 section 3.2)")
    try:
        ok = model.verify(token.signing_input, token.signature, key)
    except (JoseError, ValueError) as exc:
        raise Rejected(401, f"bad signature: {exc}") from None
    if not ok:
        raise Rejected(401, "bad signature")


def decode_claims(token: Token) -> dict[str, Any]:
    """The payload as a JSON object (only after the signature was checked)."""
    try:
        claims = orjson.loads(token.payload)
    except orjson.JSONDecodeError:
        try:  # orjson refuses integers beyond 64 bits that Go (float64) and json accept
            claims = json.loads(token.payload)
        except ValueError:
            raise Rejected(401, "malformed token: the payload is not JSON") from None
    if not isinstance(claims, dict):
        raise Rejected(401, "malformed token: the payload is not a JSON object")
    return claims


def _date(claims: Mapping[str, Any], name: str) -> int | None:
    v = claims.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Rejected(401, f"claim {name!r} is not a number")
    try:
        return int(v)  # go-jose NumericDate: a float64 truncated to whole seconds
    except (OverflowError, ValueError):
        raise Rejected(401, f"claim {name!r} is not a finite number") from None


class Verified:
    """A token whose signature checked out, with its registered claims decoded once (the
    types go-jose insists on: strings for iss/sub/jti, a string or strings for aud, numbers
    for the dates). What it was verified against (the key set's ``index``, the ``strategy``
    that picked the ``key``) says which validators may reuse it; every check that depends on
    the time or on a validator's settings runs on each request anyway.
    """

    __slots__ = ("alg", "audience", "claims", "exp", "header", "iat", "index", "key", "nbf",
                 "size", "strategy")

    def __init__(self, header: dict[str, Any], key: Key, claims: dict[str, Any],
                 index: object = None, strategy: str = "kid", size: int = 0) -> None:
        for name in ("iss", "sub", "jti"):
            if claims.get(name) is not None and not isinstance(claims[name], str):
                raise Rejected(401, f"claim {name!r} is not a string")
        aud = claims.get("aud")
        if aud is None:
            self.audience: tuple[str, ...] = ()
        elif isinstance(aud, str):
            self.audience = (aud,)
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            self.audience = tuple(aud)
        else:
            raise Rejected(401, "claim 'aud' is neither a string nor a list of strings")
        self.exp, self.nbf, self.iat = _date(claims, "exp"), _date(claims, "nbf"), \
            _date(claims, "iat")
        self.header = header
        self.alg = header.get("alg")
        self.key = key
        self.claims = claims
        self.index = index
        self.strategy = strategy
        self.size = size


def check_times(token: Verified, leeway: float, now: float) -> None:
    """go-jose's ``ValidateWithLeeway`` dates: nbf, exp (only when present), iat not ahead."""
    if token.nbf is not None and now + leeway < token.nbf:
        raise Rejected(401, f"token not valid yet (nbf {token.nbf}, leeway {leeway:g}s)")
    if token.exp is not None and now - leeway > token.exp:
        raise Expired(401, f"token is expired (exp {token.exp}, leeway {leeway:g}s)")
    if token.iat is not None and now + leeway < token.iat:
        raise Rejected(401, f"token issued in the future (iat {token.iat}, leeway {leeway:g}s)")
