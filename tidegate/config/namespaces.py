"""The `extra_config` namespaces tidegate knows, where each may appear, and its own schema.

A namespace tidegate implements declares its attributes (per scope, as `FieldSpec`s), so lint
can check them and name the alternatives. Every other namespace KrakenD documents is listed with
the levels where KrakenD accepts it: tidegate accepts it too (a KrakenD configuration must load
unchanged) but reports it as "not supported by tidegate yet", because it is ignored.

Scopes: ``service`` (root extra_config), ``endpoint`` and ``backend``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tidegate.config.aliases import LEGACY_NAMESPACES, current_name
from tidegate.config.fields import (
    CLIENT_CERT_FIELDS,
    CLIENT_TLS_FIELDS,
    TLS_FIELDS,
    TLS_KEY_FIELDS,
    FieldSpec,
)
from tidegate.config.sections import FLATMAP_TYPES, STATIC_STRATEGIES

SCOPE_NAMES = {"service": "the root", "endpoint": "an endpoint", "backend": "a backend"}


@dataclass(frozen=True)
class Namespace:
    """One component namespace."""

    name: str
    scopes: tuple[str, ...]
    supported: bool
    # scope -> attributes; only for supported namespaces (None: any value is accepted)
    fields: dict[str, dict[str, FieldSpec]] | None = None
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)
    replaced_by: str | None = None


_STATIC_FIELDS = {
    "strategy": FieldSpec("enum", "when the static data is merged", enum=STATIC_STRATEGIES),
    "data": FieldSpec("object", "the static data merged into the answer"),
}
_FLATMAP = FieldSpec("array", "array manipulation operations, applied in order",
                     items="flatmap_operation")
_FLATMAP_OPERATION_FIELDS = {
    "type": FieldSpec("enum", "the operation", enum=FLATMAP_TYPES),
    "args": FieldSpec("strings", "its dot-path arguments"),
}

_PROXY_FIELDS = {
    "endpoint": {
        "sequential": FieldSpec("boolean", "call the backends in order, chaining responses"),
        "strategy": FieldSpec("enum", "merger: parallel (default) or sequential",
                              enum=("parallel", "sequential")),
        "static": FieldSpec("shape", "static data merged into the answer",
                            items="static_proxy"),
        "flatmap_filter": _FLATMAP,
        "sequential_propagated_params": FieldSpec(
            "strings", "response values made available to the next backends"),
        "combiner": FieldSpec("string", "custom response combiner", supported=False),
        "max_payload": FieldSpec("integer", "request body limit (bytes): 413 beyond it",
                                 minimum=0),
        "decompress_gzip": FieldSpec("boolean", "decompress gzip requests", supported=False),
    },
    "backend": {
        "flatmap_filter": _FLATMAP,
        "shadow": FieldSpec("boolean", "shadow (mirror) backend", supported=False),
    },
}

_ROUTER_FIELDS = {
    "return_error_msg": FieldSpec("boolean", "answer backend error messages to the client"),
    "hide_version_header": FieldSpec("boolean", "X-Krakend says \"Version undefined\""),
    **{name: FieldSpec("boolean", "router option", supported=False) for name in (
        "app_engine", "auto_options", "disable_gzip",
        "disable_handle_method_not_allowed", "disable_health", "disable_path_decoding",
        "disable_redirect_fixed_path", "disable_redirect_trailing_slash",
        "remove_extra_slash", "use_h2c")},
    **{name: FieldSpec("integer", "router limit", supported=False, minimum=0)
       for name in ("decompress_gzip", "max_multipart_memory")},
    "max_payload": FieldSpec("integer", "request body limit (bytes): 413 beyond it", minimum=0),
    "forwarded_by_client_ip": FieldSpec(
        "boolean", "read the client address from remote_ip_headers of a trusted proxy"),
    "remote_ip_headers": FieldSpec(
        "strings", "headers a trusted proxy puts the client address in (default "
        "X-Forwarded-For, X-Real-IP)"),
    "trusted_proxies": FieldSpec(
        "strings", "addresses and CIDR ranges of the proxies whose headers tell the client "
        "address (none by default: the peer is the client)"),
    "logger_skip_paths": FieldSpec("strings", "paths the access log does not log"),
    "disable_access_log": FieldSpec("boolean", "no access log"),
    "health_path": FieldSpec("string", "path of the health endpoint", supported=False),
    "error_body": FieldSpec("object", "custom error bodies", supported=False),
}

_BACKEND_HTTP_FIELDS = {
    "return_error_details": FieldSpec("string", "answer backend failures under this key"),
    "return_error_code": FieldSpec("boolean", "answer the backend's status code and body"),
}

SUPPORTED: tuple[Namespace, ...] = (
    Namespace("router", ("service",), True, {"service": _ROUTER_FIELDS}),
    Namespace("proxy", ("endpoint", "backend"), True, _PROXY_FIELDS),
    Namespace("backend/http", ("backend",), True, {"backend": _BACKEND_HTTP_FIELDS}),
)

# KrakenD's namespaces (CE and Enterprise) by the levels that accept them: s, e, b.
_NOT_YET: dict[str, str] = {
    "ai/llm": "b", "ai/mcp": "se",
    "auth/api-keys": "se", "auth/aws-sigv4": "b", "auth/basic": "se",
    "auth/client-credentials": "b", "auth/gcp": "b", "auth/ntlm": "b", "auth/revoker": "s",
    "auth/signer": "e", "auth/validator": "se",
    "async/amqp": "s", "backend/amqp/consumer": "b", "backend/amqp/producer": "b",
    "backend/conditional": "b",
    "backend/graphql": "b", "backend/grpc": "b", "backend/http/client": "b",
    "backend/lambda": "b", "backend/pubsub/publisher": "b",
    "backend/pubsub/publisher/kafka": "b", "backend/pubsub/subscriber": "b",
    "backend/pubsub/subscriber/kafka": "b", "backend/soap": "b",
    "backend/static-filesystem": "b",
    "documentation/openapi": "se", "documentation/postman": "se",
    "governance/processors": "s", "governance/quota": "seb", "grpc": "s",
    "modifier/body-generator": "b", "modifier/jmespath": "eb", "modifier/lua-backend": "b",
    "modifier/lua-endpoint": "se", "modifier/lua-proxy": "e", "modifier/martian": "b",
    "modifier/request-body-extractor": "se", "modifier/request-body-extractor/early": "e",
    "modifier/request-body-generator": "eb", "modifier/response-body": "eb",
    "modifier/response-body-generator": "eb", "modifier/response-headers": "s",
    "plugin/http-client": "b", "plugin/http-server": "s", "plugin/middleware": "eb",
    "plugin/req-resp-modifier": "eb",
    "qos/circuit-breaker": "b", "qos/circuit-breaker/http": "b", "qos/http-cache": "b",
    "qos/ratelimit/proxy": "b", "qos/ratelimit/router": "e", "qos/ratelimit/router/redis": "e",
    "qos/ratelimit/service": "s", "qos/ratelimit/service/redis": "s",
    "qos/ratelimit/tiered": "se", "redis": "s",
    "security/bot-detector": "se", "security/cors": "se", "security/http": "se",
    "security/policies": "eb",
    "server/static-filesystem": "s", "server/virtualhost": "s",
    "telemetry/gelf": "s", "telemetry/influx": "s", "telemetry/influx2": "s",
    "telemetry/logging": "sb",
    "telemetry/logstash": "s", "telemetry/metrics": "s", "telemetry/moesif": "s",
    "telemetry/newrelic": "s", "telemetry/opencensus": "s", "telemetry/opentelemetry": "seb",
    "telemetry/opentelemetry-security": "s",
    "validation/cel": "eb", "validation/json-schema": "e",
    "validation/response-json-schema": "eb", "websocket": "e", "workflow": "b",
}
_LETTER = {"s": "service", "e": "endpoint", "b": "backend"}

_CURRENT: dict[str, Namespace] = {
    ns.name: ns for ns in (
        *SUPPORTED,
        *(Namespace(name, tuple(_LETTER[c] for c in letters), False)
          for name, letters in _NOT_YET.items()),
    )
}

# KrakenD v1 names: accepted where their current name is, applied as it is, linted for a rename.
NAMESPACES: dict[str, Namespace] = {
    **_CURRENT,
    **{old: replace(_CURRENT[new], name=old, replaced_by=new)
       for old, new in LEGACY_NAMESPACES.items()},
}

# Shapes referenced by name from the field tables (``FieldSpec.items``).
SHAPES: dict[str, dict[str, FieldSpec]] = {
    "static_proxy": _STATIC_FIELDS,
    "flatmap_operation": _FLATMAP_OPERATION_FIELDS,
    "tls": TLS_FIELDS,
    "tls_key": TLS_KEY_FIELDS,
    "client_tls": CLIENT_TLS_FIELDS,
    "client_cert": CLIENT_CERT_FIELDS,
}
SHAPE_REQUIRED: dict[str, tuple[str, ...]] = {"flatmap_operation": ("type", "args"),
                                              "tls_key": ("public_key", "private_key"),
                                              "client_cert": ("certificate", "private_key")}


# Families whose sections protect something: serving without them serves unprotected (see
# `tidegate.lint.failclosed`). Lua modifiers are here because their scripts can reject requests.
PROTECTING_FAMILIES = ("auth/", "security/", "qos/", "validation/", "governance/", "plugin/",
                       "modifier/lua-")
PROTECTING_NAMESPACES = frozenset({"backend/http/client"})  # EE: client TLS per backend


def protects(namespace: str) -> bool:
    """Whether serving without this namespace would serve something unprotected."""
    name = current_name(namespace)
    return name in PROTECTING_NAMESPACES or name.startswith(PROTECTING_FAMILIES)


# Root settings that protect something and tidegate does not implement: none (`tls` and
# `client_tls` are implemented by `config.tls`, `plugin` by the Python plugins).
PROTECTING_ROOT_SETTINGS: tuple[str, ...] = ()


def root_setting_protects(key: str, value: Any) -> bool:
    """Whether a root setting asks for a protection (an empty section does not)."""
    return key in PROTECTING_ROOT_SETTINGS and value is not None and value not in ({}, [])


def at_scope(scope: str) -> dict[str, Namespace]:
    """The namespaces accepted in the extra_config of this level."""
    return {name: ns for name, ns in NAMESPACES.items() if scope in ns.scopes}
