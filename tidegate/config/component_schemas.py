"""JSON Schemas of KrakenD component sections, written from KrakenD's documented fields.

`check -l` looks inside every namespace section as KrakenD's own schema (v2.13) does. A
component tidegate registers brings its schema (`Component.schema`, which usually points
here); a namespace tidegate does not implement is checked against the one written here, so
lint refuses what KrakenD's lint refuses. Facts (attribute names, types, required ones,
closed objects, enumerations) come from KrakenD's documentation and published schema; the
schemas are tidegate's own, smaller, and say nothing about behaviour. A namespace without an
entry is accepted as any object.
"""

from __future__ import annotations

from typing import Any

from tidegate.config.fields import COMMENT_KEY_PATTERN

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
OBJ: Schema = {"type": "object"}
STRS: Schema = {"type": "array", "items": STR}
# KrakenD's schema writes its durations as one number and one unit ("2s", "100ms").
TIMEUNIT: Schema = {"type": "string", "pattern": "^[0-9]+(ns|ms|us|µs|s|m|h)$"}
JWT_ALGS = ("EdDSA", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
            "ES512", "PS256", "PS384", "PS512")
SECRET_URL: Schema = {"type": "string",
                      "pattern": "(base64key|awskms|azurekeyvault|gcpkms|hashivault)://(.*)"}


def enum(*values: Any) -> Schema:
    return {"enum": list(values)}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def closed(props: dict[str, Schema], *required: str, **extra: Any) -> Schema:
    """An object with these attributes only (and comment keys), as KrakenD's are."""
    out: Schema = {"type": "object", "properties": props,
                   "patternProperties": {COMMENT_KEY_PATTERN: True},
                   "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


def one_of_required(*groups: tuple[str, ...]) -> list[Schema]:
    return [{"required": list(group)} for group in groups]


# --- modifier/martian: a modifier, recursively (groups and filters hold modifiers) -----------

_SCOPE = enum(["request", "response"], ["request"], ["response"])
_REQUEST = {"const": ["request"]}
_MODIFIER_REF: Schema = {"$ref": "#/$defs/martian_modifier"}
_FILTER = {"modifier": _MODIFIER_REF, "else": _MODIFIER_REF}


def _martian(props: dict[str, Schema], *required: str, **extra: Any) -> Schema:
    return {"type": "object", "properties": props, **(
        {"required": list(required)} if required else {}), **extra}


MARTIAN_MODIFIERS: dict[str, Schema] = {
    "body.Modifier": _martian({"scope": _SCOPE, "body": STR, "contentType": STR},
                              "scope", "body"),
    "cookie.Filter": _martian({"scope": _REQUEST, "name": STR, "value": {}, **_FILTER},
                              "scope", "modifier", "name"),
    "cookie.Modifier": _martian({"scope": _SCOPE, "name": STR, "value": STR, "path": STR,
                                 "domain": STR, "expires": STR, "secure": BOOL,
                                 "httpOnly": BOOL, "maxAge": INT}, "scope", "name", "value"),
    "fifo.Group": _martian({"scope": _SCOPE, "aggregateErrors": BOOL,
                            "modifiers": array(_MODIFIER_REF)}, "scope", "modifiers"),
    "priority.Group": _martian({"scope": _SCOPE, "modifiers": array(OBJ)},
                               "scope", "modifiers"),
    "header.Append": _martian({"scope": _SCOPE, "name": STR, "value": STR},
                              "scope", "name", "value"),
    "header.Blacklist": _martian({"scope": _SCOPE, "names": STRS}, "scope", "names"),
    "header.Copy": _martian({"scope": _SCOPE, "from": STR, "to": STR}, "scope", "from", "to"),
    "header.Filter": _martian({"scope": _SCOPE, "name": STR, "value": STR, **_FILTER},
                              "scope", "modifier", "name"),
    "header.Id": _martian({"scope": _REQUEST, "header": STR}, "scope"),
    "header.Modifier": _martian({"scope": _SCOPE, "name": STR, "value": STR},
                                "scope", "name", "value"),
    "header.RegexFilter": _martian({"scope": _SCOPE, "header": STR, "regex": STR,
                                    "modifier": _MODIFIER_REF},
                                   "scope", "modifier", "header", "regex"),
    "port.Filter": _martian({"scope": _REQUEST, "port": INT, **_FILTER},
                            "scope", "modifier", "port"),
    "port.Modifier": _martian({"scope": _REQUEST, "port": INT, "defaultForScheme": BOOL,
                               "remove": BOOL}, oneOf=one_of_required(
                                   ("scope", "port"), ("scope", "defaultForScheme"),
                                   ("scope", "remove"))),
    "querystring.Filter": _martian({"scope": _SCOPE, "name": STR, "value": STR, **_FILTER},
                                   "scope", "modifier", "name"),
    "querystring.Modifier": _martian({"scope": _SCOPE, "name": STR, "value": STR},
                                     "scope", "name", "value"),
    "stash.Modifier": _martian({"scope": _SCOPE, "headerName": STR}, "scope", "headerName"),
    "url.Filter": _martian({"scope": _SCOPE, "scheme": STR, "host": STR, "path": STR,
                            "query": STR, **_FILTER}, "scope", "modifier"),
    "url.Modifier": _martian({"scope": _SCOPE, "scheme": STR, "host": STR, "path": STR,
                              "query": STR}, "scope"),
    "url.RegexFilter": _martian({"scope": _SCOPE, "regex": STR, **_FILTER},
                                "scope", "modifier", "regex"),
}
MARTIAN: Schema = {"type": "object", "properties": MARTIAN_MODIFIERS,
                   "additionalProperties": False}

# Shapes the schemas above refer to by name (added to the built-in schema's $defs).
DEFS: dict[str, Schema] = {"martian_modifier": MARTIAN}


# --- the namespaces, by current name ---------------------------------------------------------

_JOSE_COMMON: dict[str, Schema] = {
    "alg": enum(*JWT_ALGS), "jwk_url": STR, "jwk_local_path": STR, "jwk_local_ca": STR,
    "jwk_fingerprints": STRS, "cipher_suites": array(INT), "disable_jwk_security": BOOL,
    "cypher_key": STR, "secret_url": SECRET_URL, "leeway": TIMEUNIT,
}

SCHEMAS: dict[str, Schema] = {
    "modifier/martian": MARTIAN,
    "plugin/http-server": {"type": "object", "required": ["name"],
                           "properties": {"name": STRS}},
    "plugin/http-client": {"type": "object", "properties": {"name": STR}},
    "plugin/req-resp-modifier": {"type": "object", "properties": {"name": STRS}},
    "auth/signer": closed(
        {**_JOSE_COMMON, "kid": STR, "keys_to_sign": STRS, "full": BOOL},
        "alg", "kid", "keys_to_sign",
        oneOf=one_of_required(("alg", "jwk_local_path", "disable_jwk_security"),
                              ("alg", "jwk_url"))),
    "auth/api-keys": closed(
        {"keys": array(closed({"key": STR, "roles": STRS})), "identifier": STR,
         "strategy": enum("header", "query_string"), "propagate_role": STR,
         "hash": enum("plain", "fnv128", "sha256", "sha1"), "salt": STR}, "keys"),
    "telemetry/metrics": closed(
        {"collection_time": TIMEUNIT, "listen_address": {"type": "string",
                                                         "pattern": "^:[0-9]+$"},
         "backend_disabled": BOOL, "endpoint_disabled": BOOL, "proxy_disabled": BOOL,
         "router_disabled": BOOL}),
    "telemetry/gelf": closed({"address": STR, "enable_tcp": BOOL}, "address", "enable_tcp"),
    "telemetry/influx": closed(
        {"address": STR, "ttl": TIMEUNIT, "buffer_size": {"type": "integer", "minimum": 0},
         "db": STR, "username": STR, "password": STR}, "address", "ttl"),
    "telemetry/logging": closed(
        {"level": enum("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "prefix": STR,
         "syslog": BOOL, "stdout": BOOL, "format": STR, "custom_format": STR,
         "syslog_facility": enum(*(f"local{i}" for i in range(8))),
         "access_log_format": enum("", "default", "httpdCommon", "httpdCombine", "json",
                                   "custom", "logfmt"),  # logfmt: tidegate's
         "access_log_custom_format": STR, "access_log_missing_key_marker": STR,
         "backend": OBJ}, "level"),
    "telemetry/opencensus": closed(
        {"sample_rate": {"type": "integer", "minimum": 0, "maximum": 100},
         "reporting_period": INT,
         "enabled_layers": closed({"backend": BOOL, "pipe": BOOL, "router": BOOL}),
         "exporters": closed({
             "jaeger": closed({"endpoint": STR, "agent_endpoint": STR, "service_name": STR,
                               "buffer_max_count": INT},
                              oneOf=one_of_required(("endpoint", "service_name"),
                                                    ("agent_endpoint", "service_name"))),
             "zipkin": closed({"collector_url": STR, "service_name": STR},
                              "collector_url", "service_name"),
             "prometheus": closed({"port": INT, "namespace": STR, "tag_host": BOOL,
                                   "tag_path": BOOL, "tag_method": BOOL,
                                   "tag_statuscode": BOOL}, "port"),
             "logger": closed({"spans": BOOL, "stats": BOOL}),
             "influxdb": closed({"address": STR, "db": STR, "username": STR,
                                 "password": STR, "timeout": TIMEUNIT}, "address", "db"),
             "ocagent": closed({"address": STR, "service_name": STR, "headers": OBJ,
                                "insecure": BOOL, "enable_compression": BOOL,
                                "reconnection": TIMEUNIT}, "address", "service_name"),
             "datadog": OBJ, "stackdriver": OBJ, "xray": OBJ})},
        "exporters"),
    "modifier/lua-endpoint": closed(
        {"sources": STRS, "pre": STR, "post": STR, "live": BOOL, "allow_open_libs": BOOL,
         "skip_next": BOOL, "md5": OBJ}),
    "websocket": closed(
        {"input_headers": STRS, "subprotocols": STRS, "connect_event": BOOL,
         "disconnect_event": BOOL, "disable_otel_metrics": BOOL,
         "enable_direct_communication": BOOL, "return_error_details": BOOL,
         "read_buffer_size": INT, "write_buffer_size": INT, "message_buffer_size": INT,
         "max_message_size": INT, "max_retries": INT,
         "backoff_strategy": enum("linear", "linear-jitter", "exponential",
                                  "exponential-jitter", "fallback"),
         "ping_period": TIMEUNIT, "pong_wait": TIMEUNIT, "timeout": TIMEUNIT,
         "write_wait": TIMEUNIT}),
}
SCHEMAS["modifier/lua-proxy"] = SCHEMAS["modifier/lua-backend"] = (
    SCHEMAS["modifier/lua-endpoint"])

# documentation/openapi: only the shape of its response definitions, keyed by status code.
_RESPONSE = closed({"description": STR, "content_type": STR, "example": {},
                    "examples": OBJ, "example_schema": {"type": ["string", "object"]},
                    "ref": STR})
SCHEMAS["documentation/openapi"] = {
    "type": "object",
    "properties": {"response_definition": {
        "type": "object", "patternProperties": {"default|^[0-9]+$": _RESPONSE},
        "additionalProperties": False}},
}

# Where a level reads the namespace differently: (namespace, scope) -> its schema there.
SCOPED: dict[tuple[str, str], Schema] = {
    # An endpoint names the roles its keys need; the keys are declared at the root.
    ("auth/api-keys", "endpoint"): closed(
        {"roles": STRS, "identifier": STR, "strategy": enum("header", "query_string"),
         "client_max_rate": NUM}, "roles"),
    # A backend's logging section only configures the backend log.
    ("telemetry/logging", "backend"): closed({"backend": OBJ}),
}


def schema_of(namespace: str, scope: str | None = None) -> Schema | None:
    """The schema of a namespace section (current name) at a level, None when none is
    written."""
    return SCOPED.get((namespace, scope or "")) or SCHEMAS.get(namespace)
