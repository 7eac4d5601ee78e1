"""JWS tokens byte for byte as krakend-jose's signer makes them (go-jose v3).

The signature algorithms come from joserfc; the bytes around them are Go's: the protected
header is ``{"alg","kid","typ"}`` marshalled by ``encoding/json`` (a map: sorted keys, ``<>&``
escaped), the payload is ``json.Marshal`` of the object being signed, base64url without padding.
Clients compare tokens and cache them, so the same claims must give the same string as KrakenD.
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from tidegate.golang.json_wire import dumps

__all__ = ["SIGNING_ALGS", "JoseSigner", "SigningKeyError", "select_key"]

# go-jose v3's signature algorithms (``none`` is not one of them).
SIGNING_ALGS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                "ES512", "PS256", "PS384", "PS512", "EdDSA")
_KEY_TYPES: dict[str, type[Any]] = {"HS": OctKey, "RS": RSAKey, "PS": RSAKey, "ES": ECKey,
                                    "Ed": OKPKey}
_HMAC_MIN = {"HS256": 32, "HS384": 48, "HS512": 64}


class SigningKeyError(ValueError):
    """The key set holds no key the signer can sign with (KrakenD then answers 401)."""


def b64url(raw: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def select_key(key_set: Any, kid: str, alg: str) -> Any:
    """The key named ``kid`` in a JWK set (its JSON value), checked for signing with ``alg``.

    go-auth0 picks the key by ``kid`` alone; tidegate also refuses what go-jose would sign with
    but nobody should: a public key, a key of another type, a JWK whose own ``alg`` names
    another algorithm, and an HMAC secret shorter than its hash (RFC 7518 §3.2).
    """
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
        raise SigningKeyError("the JWK set is not an object with a \"keys\" array")
    found = [k for k in key_set["keys"] if isinstance(k, dict) and k.get("kid", "") == kid]
    if not found:
        raise SigningKeyError(f"no key with kid {kid!r} in the JWK set")
    raw = found[0]
    if raw.get("alg") not in (None, "", alg):
        raise SigningKeyError(f"the key {kid!r} is for {raw['alg']}, not {alg}")
    try:
        with warnings.catch_warnings():  # joserfc warns about short keys: refused below
            warnings.simplefilter("ignore")
            key = KeySet.import_key_set({"keys": [raw]}).keys[0]
    except Exception as exc:  # joserfc raises several types for a malformed JWK
        raise SigningKeyError(f"the key {kid!r} cannot be read: {exc}") from exc
    if not isinstance(key, _KEY_TYPES[alg[:2]]):
        raise SigningKeyError(f"the key {kid!r} ({raw.get('kty')}) cannot sign {alg}")
    if not key.is_private:
        raise SigningKeyError(f"the key {kid!r} is a public key: it cannot sign")
    if isinstance(key, OctKey) and len(key.raw_value) < _HMAC_MIN[alg]:
        raise SigningKeyError(f"the key {kid!r} is {len(key.raw_value)} bytes long: {alg} "
                              f"needs at least {_HMAC_MIN[alg]}")
    if isinstance(key, OKPKey) and key.curve_name != "Ed25519":
        raise SigningKeyError(f"the key {kid!r} is on {key.curve_name}: EdDSA signs with "
                              "Ed25519 here")
    return key


@dataclass(frozen=True)
class JoseSigner:
    """Signs JSON objects into compact (or, with ``full``, JSON) JWS serializations."""

    alg: str
    kid: str
    typ: str
    key: Any
    full: bool = False

    def __post_init__(self) -> None:
        header = dumps({"alg": self.alg, "kid": self.kid, "typ": self.typ})
        object.__setattr__(self, "_protected", b64url(header))
        object.__setattr__(self, "_algorithm", JWSRegistry.algorithms[self.alg])

    def sign(self, claims: Any) -> str:
        """The token for ``claims`` (``json.Marshal``-ed as go-jose's caller does)."""
        protected: bytes = self._protected  # type: ignore[attr-defined]
        payload = b64url(dumps(claims))
        signing_input = protected + b"." + payload
        signature = b64url(self._algorithm.sign(signing_input, self.key))  # type: ignore[attr-defined]
        if not self.full:
            return (signing_input + b"." + signature).decode()
        # go-jose's FullSerialize: rawJSONWebSignature's field order, empty ones omitted.
        return (b'{"payload":"' + payload + b'","protected":"' + protected
                + b'","signature":"' + signature + b'"}').decode()

