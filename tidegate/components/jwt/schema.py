"""JSON schema (draft-07) of an endpoint's ``auth/validator`` section, as KrakenD CE 2.13 reads it
(krakend-jose ``SignatureConfig``; ``secret_url``/``cypher_key`` are refused by `config`)."""

from __future__ import annotations

from typing import Any

from tidegate.components.jwt.config import ALGORITHMS, CIPHER_SUITES, SCOPES_MATCHERS, STRATEGIES

_STRINGS = {"type": "array", "items": {"type": "string"}}
_UNIT = r"[0-9.]+(ns|ms|us|µs|s|m|h)"
_DURATION = {"type": "string", "pattern": f"^({_UNIT})+$"}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "JWT validation (auth/validator)",
    "type": "object",
    "properties": {
        "alg": {"enum": list(ALGORITHMS), "description": "The one algorithm tokens must use."},
        "jwk_url": {"type": "string", "description": "URL of the JWK set (https)."},
        "jwk_local_path": {"type": "string", "description": "A JWK set file instead of a URL."},
        "jwk_local_ca": {"type": "string", "description": "PEM CA file added to the system CAs."},
        "disable_jwk_security": {"type": "boolean"},
        "jwk_fingerprints": {**_STRINGS, "description": "base64url SHA-256 of pinned SPKIs."},
        "cipher_suites": {"type": "array", "items": {"enum": sorted(CIPHER_SUITES)}},
        "cache": {"type": "boolean"},
        "cache_duration": {"type": "integer", "minimum": 0, "maximum": 4294967295},
        "failed_jwk_key_cooldown": _DURATION,
        "key_identify_strategy": {"enum": list(STRATEGIES)},
        "issuer": {"type": "string"},
        "audience": _STRINGS,
        "roles": _STRINGS,
        "roles_key": {"type": "string"},
        "roles_key_is_nested": {"type": "boolean"},
        "scopes": _STRINGS,
        "scopes_key": {"type": "string"},
        "scopes_matcher": {"enum": list(SCOPES_MATCHERS)},
        "propagate_claims": {"type": "array", "items": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "minItems": 2, "maxItems": 2}},
        "propagate_claims_preserve_array": {"type": "boolean"},
        "auth_header_name": {"type": "string"},
        "cookie_key": {"type": "string"},
        "leeway": _DURATION,
        "operation_debug": {"type": "boolean"},
        "shared_cache_duration": {"type": "integer", "minimum": 0,
                                  "description": "Service level only (always shared here)."},
        "secret_url": {"type": "string"},
        "cypher_key": {"type": "string"},
    },
    # As KrakenD's schema: an endpoint's validator names its algorithm and its key set; the
    # root section (the shared JWK cache) holds shared_cache_duration alone.
    "anyOf": [{"required": ["alg", "jwk_url"]}, {"required": ["alg", "jwk_local_path"]},
              {"required": ["shared_cache_duration"]}],
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}
