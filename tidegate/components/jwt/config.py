"""``auth/validator``: the raw section → a frozen `ValidatorConfig`, with located errors.

Field names, defaults and constraints are krakend-jose's (``jws.go`` ``SignatureConfig``,
``jose.go`` ``NewValidator``, ``jwk.go`` ``SecretProvider``). Where KrakenD silently falls back
(a malformed ``leeway`` becomes 1 s, an unknown ``key_identify_strategy`` becomes ``kid``, a
plain-http ``jwk_url`` answers 401 to every request) tidegate refuses the configuration and
says where, so the mistake is seen at ``check`` time instead of in production.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import ConfigValueError, PathPart

NAMESPACE = "auth/validator"

# jose.go supportedAlgorithms: one algorithm per endpoint, compared with the token's "alg".
ALGORITHMS = ("EdDSA", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
              "ES512", "PS256", "PS384", "PS512")
STRATEGIES = ("kid", "x5t", "x5t#S256", "kid_x5t")
SCOPES_MATCHERS = ("any", "all")
DEFAULT_CACHE_DURATION = 900.0  # jwk.go: 15 minutes when "cache" is on and no duration given
MIN_LEEWAY = 1.0  # go-auth0: NewValidatorWithLeeway raises anything smaller to one second

# Go's crypto/tls suite ids (TLS 1.0-1.2; TLS 1.3 suites are not configurable in Go) → OpenSSL.
CIPHER_SUITES: Mapping[int, str] = {
    0x0005: "RC4-SHA", 0x000A: "DES-CBC3-SHA", 0x002F: "AES128-SHA", 0x0035: "AES256-SHA",
    0x003C: "AES128-SHA256", 0x009C: "AES128-GCM-SHA256", 0x009D: "AES256-GCM-SHA384",
    0xC007: "ECDHE-ECDSA-RC4-SHA", 0xC009: "ECDHE-ECDSA-AES128-SHA",
    0xC00A: "ECDHE-ECDSA-AES256-SHA", 0xC011: "ECDHE-RSA-RC4-SHA",
    0xC012: "ECDHE-RSA-DES-CBC3-SHA", 0xC013: "ECDHE-RSA-AES128-SHA",
    0xC014: "ECDHE-RSA-AES256-SHA", 0xC023: "ECDHE-ECDSA-AES128-SHA256",
    0xC027: "ECDHE-RSA-AES128-SHA256", 0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384", 0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    # TLS 1.3 ids: accepted (Go ignores them in this list), nothing to configure.
    0x1301: "", 0x1302: "", 0x1303: "",
}
# jwk.go DefaultEnabledCipherSuites (TLS 1.2 part).
DEFAULT_CIPHER_SUITES = (0xC02F, 0xC02B, 0xC030, 0xC02C, 0xCCA8, 0xCCA9)


@dataclass(frozen=True, slots=True)
class ValidatorConfig:
    """One endpoint's ``auth/validator``, defaults applied. Durations are seconds."""

    alg: str
    jwk_url: str
    jwk_local_path: str
    local_jwks: bytes | None  # the content of jwk_local_path, read (and checked) when parsed
    jwk_local_ca: str
    disable_jwk_security: bool
    fingerprints: tuple[bytes, ...]
    cipher_suites: tuple[int, ...]
    cache: bool
    cache_duration: float
    failed_key_cooldown: float | None
    key_identify_strategy: str
    issuer: str
    audience: tuple[str, ...]
    roles: tuple[str, ...]
    roles_key: str
    roles_key_is_nested: bool
    scopes: tuple[str, ...]
    scopes_key: str
    scopes_matcher: str
    propagate_claims: tuple[tuple[str, str], ...]
    propagate_claims_preserve_array: bool
    auth_header_name: str  # lower-cased, for Request.header()
    cookie_key: str
    leeway: float
    operation_debug: bool

    def source_fingerprint(self) -> dict[str, Any]:
        """What a JWK set cache depends on (JSON-able): sharing one needs all of it equal."""
        return {
            "url": self.jwk_url, "ca": self.jwk_local_ca, "insecure": self.disable_jwk_security,
            "pins": sorted(base64.b64encode(f).decode() for f in self.fingerprints),
            "ciphers": list(self.cipher_suites), "cache": self.cache,
            "ttl": self.cache_duration, "cooldown": self.failed_key_cooldown,
        }


class _Reader:
    """Typed access to the section's keys; every error is located at its key."""

    def __init__(self, raw: Mapping[str, Any], path: tuple[PathPart, ...]) -> None:
        self.raw = raw
        self.path = path

    def error(self, key: str, msg: str) -> ConfigValueError:
        return ConfigValueError(msg, path=(*self.path, key))

    def string(self, key: str, default: str = "") -> str:
        v = self.raw.get(key, default)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.error(key, f"{key} must be a string, not {_kind(v)}")
        return v

    def boolean(self, key: str) -> bool:
        v = self.raw.get(key, False)
        if v is None:
            return False
        if not isinstance(v, bool):
            raise self.error(key, f"{key} must be true or false, not {_kind(v)}")
        return v

    def strings(self, key: str) -> tuple[str, ...]:
        v = self.raw.get(key)
        if v is None:
            return ()
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.error(key, f"{key} must be a list of strings")
        return tuple(v)

    def seconds(self, key: str) -> float | None:
        v = self.raw.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != int(v) \
                or v > 0xFFFFFFFF:
            raise self.error(key, f"{key} must be a whole number of seconds (uint32), not {v!r}")
        return float(v)

    def duration(self, key: str) -> float | None:
        v = self.raw.get(key)
        if v is None or v == "":
            return None
        try:
            return parse_duration(v)
        except DurationError as exc:
            raise self.error(key, f"{key}: {exc}") from None


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def parse(raw: Any, path: tuple[PathPart, ...]) -> ValidatorConfig:
    """The section at ``path`` as a `ValidatorConfig`; raises a located ConfigValueError."""
    if not isinstance(raw, Mapping):
        raise ConfigValueError(f"{NAMESPACE} must be an object", path=path)
    r = _Reader(raw, path)
    alg = r.string("alg")
    if alg not in ALGORITHMS:
        what = f"unknown algorithm {alg!r}" if alg else "alg is required"
        raise r.error("alg", f"{what}: one of {', '.join(ALGORITHMS)}")
    for unsupported in ("secret_url", "cypher_key"):
        if raw.get(unsupported):
            raise r.error(unsupported, f"{unsupported} (keys encrypted with gocloud secrets) is "
                                       "not supported: decrypt the key set into jwk_local_path")
    jwk_url = r.string("jwk_url")
    local_path = r.string("jwk_local_path")
    insecure = r.boolean("disable_jwk_security")
    cache = r.boolean("cache")
    local_jwks = None
    if local_path:
        if cache:
            raise r.error("cache", "cache cannot be used with jwk_local_path")
        local_jwks = _read_local(r, local_path)
    elif not jwk_url:
        raise r.error("jwk_url", "jwk_url (or jwk_local_path) is required")
    elif not jwk_url.startswith("https://") and not insecure:
        raise r.error("jwk_url", f"jwk_url {jwk_url!r} is not https: the keys could be "
                                 "replaced in transit (set disable_jwk_security: true to allow "
                                 "it, for development only)")
    elif not jwk_url.startswith(("https://", "http://")):
        raise r.error("jwk_url", f"jwk_url {jwk_url!r} must be an http(s) URL")
    local_ca = r.string("jwk_local_ca")
    if local_ca and not os.path.isfile(local_ca):
        raise r.error("jwk_local_ca", f"jwk_local_ca {local_ca!r}: no such file")
    strategy = r.string("key_identify_strategy") or "kid"
    if strategy not in STRATEGIES:
        raise r.error("key_identify_strategy",
                      f"unknown key_identify_strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    matcher = r.string("scopes_matcher") or "any"
    if matcher not in SCOPES_MATCHERS:
        raise r.error("scopes_matcher", f"scopes_matcher must be \"any\" or \"all\", not "
                                        f"{matcher!r}")
    leeway = r.duration("leeway")
    cooldown = r.duration("failed_jwk_key_cooldown")
    header = r.string("auth_header_name") or "Authorization"
    return ValidatorConfig(
        alg=alg, jwk_url=jwk_url if not local_path else "", jwk_local_path=local_path,
        local_jwks=local_jwks, jwk_local_ca=local_ca, disable_jwk_security=insecure,
        fingerprints=_fingerprints(r), cipher_suites=_cipher_suites(r), cache=cache,
        cache_duration=r.seconds("cache_duration") or DEFAULT_CACHE_DURATION,
        failed_key_cooldown=cooldown if cooldown is not None and cooldown >= 1 else None,
        key_identify_strategy=strategy, issuer=r.string("issuer"),
        audience=r.strings("audience"), roles=r.strings("roles"),
        roles_key=r.string("roles_key") or "roles",
        roles_key_is_nested=r.boolean("roles_key_is_nested"), scopes=r.strings("scopes"),
        scopes_key=r.string("scopes_key"), scopes_matcher=matcher,
        propagate_claims=_propagate(r),
        propagate_claims_preserve_array=r.boolean("propagate_claims_preserve_array"),
        auth_header_name=header.lower(), cookie_key=r.string("cookie_key") or "access_token",
        leeway=max(leeway if leeway is not None else MIN_LEEWAY, MIN_LEEWAY),
        operation_debug=r.boolean("operation_debug"),
    )


def _read_local(r: _Reader, local_path: str) -> bytes:
    """The JWK set file, read now so that a missing or broken file is a located error."""
    try:
        with open(local_path, "rb") as f:
            data = f.read((1 << 20) + 1)
    except OSError as exc:
        raise r.error("jwk_local_path", f"jwk_local_path {local_path!r}: "
                                        f"{exc.strerror or exc}") from None
    if len(data) > 1 << 20:
        raise r.error("jwk_local_path", f"jwk_local_path {local_path!r} is larger than 1 MiB")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise r.error("jwk_local_path", f"jwk_local_path {local_path!r} is not JSON: "
                                        f"{exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        raise r.error("jwk_local_path", f"jwk_local_path {local_path!r} is not a JWK set "
                                        "(an object with a non-empty \"keys\" list)")
    return data


def _fingerprints(r: _Reader) -> tuple[bytes, ...]:
    out = []
    for i, text in enumerate(r.strings("jwk_fingerprints")):
        try:
            out.append(base64.urlsafe_b64decode(text))  # Go: base64.URLEncoding (padded)
        except (binascii.Error, ValueError):
            raise ConfigValueError(f"decoding fingerprint #{i}: not base64 (URL alphabet)",
                                   path=(*r.path, "jwk_fingerprints", i)) from None
    return tuple(out)


def _cipher_suites(r: _Reader) -> tuple[int, ...]:
    v = r.raw.get("cipher_suites")
    if v is None or v == []:
        return DEFAULT_CIPHER_SUITES
    if not isinstance(v, list):
        raise r.error("cipher_suites", "cipher_suites must be a list of suite ids (numbers)")
    for i, suite in enumerate(v):
        if isinstance(suite, bool) or not isinstance(suite, int) or suite not in CIPHER_SUITES:
            raise ConfigValueError(f"unknown cipher suite {suite!r}",
                                   path=(*r.path, "cipher_suites", i))
    return tuple(v)


def _propagate(r: _Reader) -> tuple[tuple[str, str], ...]:
    v = r.raw.get("propagate_claims")
    if v is None:
        return ()
    if not isinstance(v, list):
        raise r.error("propagate_claims", "propagate_claims must be a list of "
                                          "[claim, header] pairs")
    out = []
    for i, pair in enumerate(v):
        if not _is_pair(pair):
            raise ConfigValueError("each propagate_claims entry must be [claim, header]",
                                   path=(*r.path, "propagate_claims", i))
        out.append((pair[0], pair[1]))
    return tuple(out)


def _is_pair(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2 \
        and all(isinstance(s, str) and s for s in v)
