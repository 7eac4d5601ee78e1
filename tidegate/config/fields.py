"""The attributes of the root, an endpoint and a backend, as one declarative table.

This table, next to the model, is the single source the built-in JSON Schema, the linter, the
`run` warnings, the audit and the kinds of `KRAKEND_*` overrides read. It mirrors what
`tidegate.config.model` builds: the enumerations come from the model itself, and
`tests/test_schema.py` records every key the model builders read and asserts it is here, so the
table cannot drift from the code.

``supported=False`` marks a KrakenD attribute tidegate accepts (KrakenD would) but does not act
on yet: lint and `run` say so instead of letting users believe it works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidegate.config.model import BACKEND_ENCODINGS, HTTP_METHODS, OUTPUT_ENCODINGS
from tidegate.config.tls import CIPHER_SUITES, CURVES, TLS13_SUITES
from tidegate.config.tls import VERSIONS as TLS_VERSIONS

# Keys starting with one of these are comments or editor hints (``$schema``, ``@comment``);
# KrakenD's schema lets them through everywhere, and so does tidegate's.
COMMENT_KEY_PATTERN = "^[@$_#]"

# A Go duration as time.ParseDuration reads it: "2s", "1m30s", "1.5h", "150µs"; tidegate
# refuses negative durations, KrakenD reads a bare number as nanoseconds.
DURATION_PATTERN = r"^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"


@dataclass(frozen=True)
class FieldSpec:
    """One attribute: its kind (what the schema enforces) and whether tidegate uses it."""

    kind: str  # string, boolean, integer, duration, strings, object, enum, array, any, ...
    description: str
    supported: bool = True
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    replaced_by: str | None = None  # a deprecated (KrakenD v1) name: its current one
    ignored: str | None = None  # why KrakenD 2 reads the attribute but never uses it
    items: str | None = None  # for kind "array": the $defs name of each item
    extra: Mapping[str, Any] = field(default_factory=dict)


def _methods() -> tuple[str, ...]:
    # The model upper-cases the method before checking it, so "get" is accepted as "GET".
    upper = sorted(HTTP_METHODS)
    return (*upper, *(m.lower() for m in upper))


METHODS = _methods()

ROOT_FIELDS: dict[str, FieldSpec] = {
    "version": FieldSpec("const", "configuration format version: always 3", extra={"const": 3}),
    "name": FieldSpec("string", "a name for the gateway, shown in logs and -d output"),
    "port": FieldSpec("integer", "listening port", minimum=0, maximum=65535),
    "listen_ip": FieldSpec("string", "address to listen on (default 0.0.0.0)"),
    "timeout": FieldSpec("duration", "default endpoint timeout (default 2s)"),
    "cache_ttl": FieldSpec("duration", "default Cache-Control max-age of endpoints"),
    "host": FieldSpec("strings", "default backend hosts"),
    "output_encoding": FieldSpec("enum", "default output encoding of endpoints",
                                 enum=(*sorted(OUTPUT_ENCODINGS), "")),
    "debug_endpoint": FieldSpec("boolean", "enable /__debug/"),
    "echo_endpoint": FieldSpec("boolean", "enable /__echo/"),
    "endpoints": FieldSpec("array", "the endpoints", items="endpoint"),
    "extra_config": FieldSpec("extra_config", "service components, by namespace"),
    "disable_rest": FieldSpec("boolean", "allow non-RESTful endpoint paths", supported=False),
    # The HTTP server's bounds, with Go's meanings (config.model.EdgeLimits).
    "read_header_timeout": FieldSpec("duration", "time to receive a request head "
                                     "(default: read_timeout, else 60s)"),
    "read_timeout": FieldSpec("duration", "time to receive a whole request (default: none)"),
    "write_timeout": FieldSpec("duration", "time from a request head to the end of its "
                               "response (default: none)"),
    "idle_timeout": FieldSpec("duration", "keep-alive wait for the next request (default: "
                              "read_timeout, else read_header_timeout, else 60s)"),
    "max_header_bytes": FieldSpec("integer", "request head size limit (default 1 MiB)",
                                  minimum=0),
    "disable_keep_alives": FieldSpec("boolean", "close every connection after its response"),
    # KrakenD settings of the HTTP server and client that tidegate does not apply yet.
    **{name: FieldSpec("duration", "HTTP server or client timeout", supported=False)
       for name in ("idle_connection_timeout", "response_header_timeout",
                    "expect_continue_timeout", "dialer_timeout", "dialer_fallback_delay",
                    "dialer_keep_alive", "dns_cache_ttl", "max_shutdown_wait_time")},
    **{name: FieldSpec("boolean", "HTTP server or client switch", supported=False)
       for name in ("disable_compression", "use_h2c", "sequential_start")},
    **{name: FieldSpec("integer", "HTTP server or client limit", supported=False, minimum=0)
       for name in ("max_idle_connections", "max_idle_connections_per_host")},
    "tls": FieldSpec("shape", "TLS of the listener (HTTPS only when present)", items="tls"),
    "client_tls": FieldSpec("shape", "TLS of the connections to https backends",
                            items="client_tls"),
    "allow_insecure_connections": FieldSpec(
        "boolean", "do not verify backends' certificates (legacy name of "
        "client_tls.allow_insecure_connections)"),
    "plugin": FieldSpec("object", "plugin.folder: where Python plugins are looked for "
                        "(Go's .so pattern is ignored)"),
    "async_agent": FieldSpec("array", "async agents (queue consumers)", supported=False),
}

_VERSION = FieldSpec("enum", "TLS version (default TLS13)", enum=tuple(TLS_VERSIONS))
_TLS_COMMON: dict[str, FieldSpec] = {
    "min_version": _VERSION,
    "max_version": _VERSION,
    "cipher_suites": FieldSpec("array", "TLS 1.0-1.2 cipher suites by IANA number (TLS 1.3 "
                               "suites are always on)", extra={"items": {"enum": sorted(
                                   {*CIPHER_SUITES, *TLS13_SUITES})}, "uniqueItems": True}),
    "curve_preferences": FieldSpec("array", "key exchange curves by Go CurveID",
                                   extra={"items": {"enum": sorted(CURVES)},
                                          "uniqueItems": True}),
    "ca_certs": FieldSpec("strings", "CA certificate files (PEM)"),
    "disable_system_ca_pool": FieldSpec("boolean", "trust only ca_certs"),
}
TLS_KEY_FIELDS: dict[str, FieldSpec] = {
    "public_key": FieldSpec("string", "certificate chain file (PEM)"),
    "private_key": FieldSpec("string", "private key file (PEM)"),
}
TLS_FIELDS: dict[str, FieldSpec] = {
    "disabled": FieldSpec("boolean", "listen in plain HTTP (development only)"),
    "keys": FieldSpec("array", "certificates and keys, chosen by SNI", items="tls_key",
                      extra={"minItems": 1}),
    **TLS_KEY_FIELDS,
    **_TLS_COMMON,
    "enable_mtls": FieldSpec("boolean", "require a client certificate signed by ca_certs "
                             "(or the system's CAs)"),
    "prefer_server_cipher_suites": FieldSpec("boolean", "ignored, as Go ignores it"),
}
CLIENT_CERT_FIELDS: dict[str, FieldSpec] = {
    "certificate": FieldSpec("string", "client certificate file (PEM)"),
    "private_key": FieldSpec("string", "its private key file (PEM)"),
}
CLIENT_TLS_FIELDS: dict[str, FieldSpec] = {
    "allow_insecure_connections": FieldSpec("boolean", "do not verify backends' certificates"),
    **_TLS_COMMON,
    "client_certs": FieldSpec("array", "client certificates for backends asking for one "
                              "(the first is presented)", items="client_cert"),
}

ENDPOINT_FIELDS: dict[str, FieldSpec] = {
    "endpoint": FieldSpec("string", "the route, such as /users/{id}"),
    "method": FieldSpec("enum", "HTTP method of the route (default GET)", enum=METHODS),
    "backend": FieldSpec("array", "the backends this endpoint aggregates", items="backend",
                         extra={"minItems": 1}),
    "timeout": FieldSpec("duration", "endpoint timeout (default: the root timeout)"),
    "cache_ttl": FieldSpec("duration", "Cache-Control max-age of the answer"),
    "output_encoding": FieldSpec("enum", "how the answer is rendered",
                                 enum=(*sorted(OUTPUT_ENCODINGS), "")),
    "concurrent_calls": FieldSpec("integer", "identical requests per backend, first good wins",
                                  minimum=0),
    "input_headers": FieldSpec("strings", "headers forwarded to the backends"),
    "input_query_strings": FieldSpec("strings", "query strings forwarded to the backends"),
    "extra_config": FieldSpec("extra_config", "endpoint components, by namespace"),
    "headers_to_pass": FieldSpec("strings", "KrakenD v1 name", replaced_by="input_headers"),
    "querystring_params": FieldSpec("strings", "KrakenD v1 name",
                                    replaced_by="input_query_strings"),
}

BACKEND_FIELDS: dict[str, FieldSpec] = {
    "url_pattern": FieldSpec("string", "path requested from the backend, such as /users/{id}"),
    "host": FieldSpec("strings", "backend hosts (default: the root host)"),
    "method": FieldSpec("enum", "HTTP method of the backend request (default: the endpoint's)",
                        enum=METHODS),
    # KrakenD's schema lists fast-json and yaml (EE): decoded as json, as lura's register does.
    "encoding": FieldSpec("enum", "how the backend answer is decoded (others: as json)",
                          enum=(*sorted(BACKEND_ENCODINGS | {"fast-json", "yaml"}), "")),
    "timeout": FieldSpec("duration", "ignored: the endpoint's timeout applies",
                         ignored="lura overwrites a backend's timeout with its endpoint's"),
    "disable_host_sanitize": FieldSpec("boolean", "use the hosts exactly as written"),
    "is_collection": FieldSpec("boolean", "the answer is an array (served under collection)"),
    "group": FieldSpec("string", "wrap the answer under this key"),
    "target": FieldSpec("string", "extract this nested object of the answer"),
    "allow": FieldSpec("strings", "keep only these fields of the answer"),
    "deny": FieldSpec("strings", "remove these fields of the answer"),
    "mapping": FieldSpec("mapping", "rename fields of the answer (old name: new name)"),
    "input_headers": FieldSpec("strings", "headers forwarded to this backend"),
    "input_query_strings": FieldSpec("strings", "query strings forwarded to this backend"),
    "extra_config": FieldSpec("extra_config", "backend components, by namespace"),
    "whitelist": FieldSpec("strings", "KrakenD v1 name", replaced_by="allow"),
    "blacklist": FieldSpec("strings", "KrakenD v1 name", replaced_by="deny"),
    "sd": FieldSpec("enum", "service discovery", supported=False,
                    enum=("static", "dns", "dns-shared")),
    "sd_scheme": FieldSpec("string", "scheme of hosts found by service discovery",
                           supported=False),
}

# Which table describes which level; "scope" is also the namespace scope of its extra_config.
SCOPES: dict[str, dict[str, FieldSpec]] = {
    "service": ROOT_FIELDS,
    "endpoint": ENDPOINT_FIELDS,
    "backend": BACKEND_FIELDS,
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "service": ("version",),
    "endpoint": ("endpoint", "backend"),
    "backend": ("url_pattern",),
}
