"""A JWK set as an index: key id (by ``key_identify_strategy``) → verification key.

Built once per download (or once per local file) and then only read, so requests look keys up
in a dict. Keys that cannot verify anything safely are left out here, with the reason logged:
an unknown ``kty``, broken parameters, an empty ``oct`` secret (joserfc refuses it, and an HMAC
with an empty key is forgeable), a public key in PEM form passed off as an ``oct`` secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from joserfc.jwk import JWKRegistry, Key

log = logging.getLogger("tidegate.jwt")

# Below this many bytes joserfc warns; RFC 7518 §3.2 asks for the hash size, which `verify`
# enforces per algorithm. Anything shorter is dropped from the index outright.
MIN_OCT_BYTES = 14


class KeySetError(ValueError):
    """A document that is not a usable JWK set (no JSON object, no keys, no usable key)."""


def _b64_raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _thumbprints(jwk: Mapping[str, Any]) -> tuple[str, str]:
    """(x5t, x5t#S256) as go-jose exposes them: the JWK's members, else the first x5c's."""
    raw_x5t, raw_s256 = jwk.get("x5t"), jwk.get("x5t#S256")
    x5t = raw_x5t if isinstance(raw_x5t, str) else ""
    s256 = raw_s256 if isinstance(raw_s256, str) else ""
    chain = jwk.get("x5c")
    if (not x5t or not s256) and isinstance(chain, list) and chain and isinstance(chain[0], str):
        try:
            der = base64.b64decode(chain[0], validate=True)
        except (binascii.Error, ValueError):
            der = b""
        if der:
            x5t = x5t or _b64_raw(hashlib.sha1(der).digest())  # x5t is SHA-1 by definition
            s256 = s256 or _b64_raw(hashlib.sha256(der).digest())
    return x5t, s256


def _oct_length(jwk: Mapping[str, Any]) -> int:
    k = jwk.get("k")
    if not isinstance(k, str):
        return 0
    try:
        return len(base64.urlsafe_b64decode(k + "=" * (-len(k) % 4)))
    except (binascii.Error, ValueError):
        return 0


class KeyIndex:
    """The usable keys of one JWK set, by every key-identify strategy."""

    __slots__ = ("_maps", "size")

    def __init__(self, keys: list[tuple[Key, str, str, str]]) -> None:
        maps: dict[str, dict[str, Key]] = {"kid": {}, "x5t": {}, "x5t#S256": {}, "kid_x5t": {}}
        for key, kid, x5t, s256 in keys:
            # The first key of a set wins for an id, as go-auth0's key cacher picks it.
            maps["kid"].setdefault(kid, key)
            maps["x5t"].setdefault(x5t, key)
            maps["x5t#S256"].setdefault(s256, key)
            maps["kid_x5t"].setdefault(kid + x5t, key)
        self._maps = maps
        self.size = len(keys)

    def get(self, strategy: str, key_id: str) -> Key | None:
        """The key a token names (its id computed with the same strategy), or None."""
        return self._maps[strategy].get(key_id)

    @classmethod
    def from_document(cls, doc: Any, origin: str) -> KeyIndex:
        """Index a decoded JWK set; raises KeySetError when no key is usable."""
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise KeySetError(f"{origin}: not a JWK set (an object with a \"keys\" list)")
        if not doc["keys"]:
            raise KeySetError(f"{origin}: no Keys have been found")
        usable: list[tuple[Key, str, str, str]] = []
        for i, jwk in enumerate(doc["keys"]):
            reason = _unusable(jwk)
            key = None
            if reason is None:
                try:
                    key = JWKRegistry.import_key(jwk)
                except Exception as exc:  # joserfc raises several types for bad parameters
                    reason = f"invalid key: {exc}"
            if key is None:
                kid = jwk.get("kid") if isinstance(jwk, dict) else None
                log.debug("JWK set %s: key #%d (kid %r) left out: %s", origin, i, kid, reason)
                continue
            kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else ""
            usable.append((key, kid, *_thumbprints(jwk)))
        if not usable:
            raise KeySetError(f"{origin}: none of the {len(doc['keys'])} keys is usable")
        return cls(usable)


def _unusable(jwk: Any) -> str | None:
    if not isinstance(jwk, dict):
        return "not a JSON object"
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP", "oct"):
        return f"unsupported kty {kty!r}"
    if kty == "oct" and _oct_length(jwk) < MIN_OCT_BYTES:
        return f"HMAC secret of {_oct_length(jwk)} bytes is too short to be safe"
    return None
