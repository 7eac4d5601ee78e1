"""The typed model of a KrakenD v3 configuration, with KrakenD's defaults applied.

`build_service` is the second stage of two-stage parsing: it takes the plain data a source parser
produced and returns frozen dataclasses, or raises `ConfigValueError` carrying the JSON path of
the offending value. It never turns a bad value into a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidegate.config.gourl import host_error, pattern_error
from tidegate.config.reader import Reader, describe_value
from tidegate.config.sections import (
    BackendHTTP,
    EndpointProxy,
    FlatmapOp,
    RouterOptions,
    backend_flatmap,
    backend_http,
    endpoint_proxy,
    router_options,
)
from tidegate.config.weak import WeakTypeError, lift, to_int, to_str
from tidegate.errors import ConfigErrors, ConfigValueError, JsonPath

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 2.0
DEFAULT_METHOD = "GET"
DEFAULT_ENCODING = "json"
# Unset means: the single backend's encoding when it names a renderer, else json (lura).
DEFAULT_OUTPUT_ENCODING = ""

BACKEND_ENCODINGS = frozenset({"json", "safejson", "xml", "rss", "string", "no-op"})
OUTPUT_ENCODINGS = frozenset({"json", "json-collection", "xml", "yaml", "negotiate", "string",
                              "no-op"})
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT",
                          "TRACE"})

# `{name}` placeholders in endpoints and url_patterns.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
_SEQUENTIAL_REF = re.compile(r"^resp(\d+)_(.+)$")


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One backend of an endpoint, defaults inherited from the endpoint and the service."""

    host: tuple[str, ...]
    url_pattern: str
    method: str
    encoding: str
    timeout: float
    concurrent_calls: int
    disable_host_sanitize: bool
    is_collection: bool
    group: str | None
    target: str | None
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    mapping: Mapping[str, str]
    input_headers: tuple[str, ...] | None
    input_query_strings: tuple[str, ...] | None
    flatmap: tuple[FlatmapOp, ...] | None  # extra_config.proxy.flatmap_filter
    http: BackendHTTP  # extra_config["backend/http"]
    extra_config: Mapping[str, Any]
    raw: Mapping[str, Any]
    path: JsonPath


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One endpoint: a route plus the backends it aggregates."""

    endpoint: str
    method: str
    backend: tuple[BackendConfig, ...]
    timeout: float
    cache_ttl: float
    output_encoding: str
    concurrent_calls: int
    input_headers: tuple[str, ...] | None
    input_query_strings: tuple[str, ...] | None
    proxy: EndpointProxy  # extra_config.proxy
    extra_config: Mapping[str, Any]
    params: tuple[str, ...]
    raw: Mapping[str, Any]
    path: JsonPath


# tidegate's own bound where KrakenD (Go) has none by default: a request head must arrive, and
# an idle keep-alive connection is closed, within this time (nginx: 60 s / 75 s).
DEFAULT_HEADER_TIMEOUT = 60.0
# Go's http.DefaultMaxHeaderBytes; Go reads up to 4 KiB more before it answers 431.
DEFAULT_MAX_HEADER_BYTES = 1 << 20
MAX_HEADER_SLACK = 4096


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The HTTP server's bounds, with Go's http.Server meanings and fallbacks already applied.

    0 means "no limit" for `read_timeout` and `write_timeout` (as in Go); the head and idle
    timeouts always have a value.
    """

    header_timeout: float  # the whole request head, from its first byte (or the connection)
    read_timeout: float  # the whole request, body included
    write_timeout: float  # from the end of the head to the end of the response
    idle_timeout: float  # a keep-alive connection waiting for its next request
    max_header_bytes: int  # request line + headers; beyond it 431
    keep_alive: bool

    @classmethod
    def from_go(cls, read_header: float, read: float, write: float, idle: float,
                max_header_bytes: int, disable_keep_alives: bool) -> EdgeLimits:
        """Go's fallbacks: the head timeout falls back on ReadTimeout, the idle one on
        ReadTimeout then ReadHeaderTimeout; tidegate bounds both where Go would not."""
        header = read_header or read or DEFAULT_HEADER_TIMEOUT
        return cls(header, read, write, idle or read or read_header or DEFAULT_HEADER_TIMEOUT,
                   (max_header_bytes or DEFAULT_MAX_HEADER_BYTES) + MAX_HEADER_SLACK,
                   not disable_keep_alives)


DEFAULT_EDGE = EdgeLimits.from_go(0, 0, 0, 0, 0, False)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The whole service: root settings plus endpoints, as KrakenD understands them."""

    version: int
    name: str
    port: int
    listen_ip: str
    timeout: float
    cache_ttl: float
    host: tuple[str, ...]
    output_encoding: str
    debug_endpoint: bool
    echo_endpoint: bool
    disable_rest: bool
    endpoints: tuple[EndpointConfig, ...]
    router: RouterOptions  # extra_config.router
    extra_config: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False)
    edge: EdgeLimits = DEFAULT_EDGE


# --- hosts and placeholders ------------------------------------------------------------------


def sanitize_host(host: str) -> str:
    """KrakenD's host clean-up: add ``http://`` when no scheme, drop a trailing slash."""
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/")


def _check_hosts(hosts: tuple[str, ...], path: JsonPath, errors: list[ConfigValueError],
                 written: tuple[str, ...]) -> None:
    """A host Go cannot parse fails every request: refused where it is written, quoting the
    value as written (an empty host is ``""``, not the ``http:`` it sanitizes to)."""
    for k, (host, as_written) in enumerate(zip(hosts, written, strict=True)):
        problem = (host_error(host) if as_written.strip("/")
                   else f"host {as_written!r}: invalid host (lura's host sanitizer finds none "
                        "in it)")
        if problem:
            errors.append(ConfigValueError(problem, path=(*path, k)))


def endpoint_params(endpoint: str) -> list[str]:
    """Parameter names of an endpoint path, in order (``/a/{id}/*`` → ``["id", "*"]``)."""
    names = PLACEHOLDER.findall(endpoint)
    if endpoint.endswith("/*"):
        names.append("*")
    return names


def _weak_int(value: Any) -> int | None:
    try:
        return to_int(value)
    except WeakTypeError:
        return None


# --- builders --------------------------------------------------------------------------------


def build_service(data: Mapping[str, Any]) -> ServiceConfig:
    """Type-check and default a decoded configuration; raises ConfigErrors listing every problem."""
    errors: list[ConfigValueError] = []
    if not isinstance(data, Mapping):
        raise ConfigValueError(f"the configuration must be an object, got {describe_value(data)}")
    root = Reader(data, (), errors, weak=True)
    version = data.get("version")
    if version is None:
        root.fail("version", "missing: KrakenD v2 configurations need \"version\": 3")
    elif _weak_int(version) != 3:  # lura: c.Version != ConfigVersion, decoded weakly
        root.fail("version", f"unsupported version {describe_value(version)}: expected 3")
    timeout = root.duration("timeout", DEFAULT_TIMEOUT)
    cache_ttl = root.duration("cache_ttl", 0.0)
    port = root.get("port", int, DEFAULT_PORT)
    if not 0 <= port <= 65535:
        root.fail("port", f"port {port} out of range 0-65535")
    output_encoding = root.choice("output_encoding", OUTPUT_ENCODINGS, DEFAULT_OUTPUT_ENCODING)
    hosts = root.strings("host") or ()
    _check_hosts(tuple(sanitize_host(h) for h in hosts), ("host",), errors, tuple(hosts))
    endpoints_raw = lift(data.get("endpoints") or [])
    endpoints: list[EndpointConfig] = []
    if not isinstance(endpoints_raw, list):
        root.fail("endpoints", f"expected a list of endpoints, got {describe_value(endpoints_raw)}")
        endpoints_raw = []
    defaults = {"timeout": timeout, "cache_ttl": cache_ttl, "output_encoding": output_encoding,
                "host": hosts}
    for i, raw in enumerate(endpoints_raw):
        if not isinstance(raw, dict):
            errors.append(ConfigValueError(
                f"expected an endpoint object, got {describe_value(raw)}", path=("endpoints", i)))
            continue
        ep = _build_endpoint(raw, ("endpoints", i), defaults, errors)
        if ep is not None:
            endpoints.append(ep)
    _check_collisions(endpoints, errors)
    raw_extra, extra = root.extra_config()
    service = ServiceConfig(
        version=3,
        name=root.get("name", str, ""),
        port=port,
        listen_ip=root.get("listen_ip", str, "") or "0.0.0.0",
        timeout=timeout,
        cache_ttl=cache_ttl,
        host=tuple(hosts),
        output_encoding=output_encoding,
        debug_endpoint=root.get("debug_endpoint", bool, False),
        echo_endpoint=root.get("echo_endpoint", bool, False),
        disable_rest=root.get("disable_rest", bool, False),
        endpoints=tuple(endpoints),
        router=router_options(raw_extra, extra, errors),
        extra_config=extra,
        raw=data,
        edge=_edge_limits(root),
    )
    if errors:
        raise ConfigErrors(errors)
    return service


def _edge_limits(root: Reader) -> EdgeLimits:
    max_header_bytes = root.get("max_header_bytes", int, 0)
    if max_header_bytes < 0:
        root.fail("max_header_bytes", f"expected at least 0, got {max_header_bytes}")
        max_header_bytes = 0
    return EdgeLimits.from_go(
        root.duration("read_header_timeout", 0.0), root.duration("read_timeout", 0.0),
        root.duration("write_timeout", 0.0), root.duration("idle_timeout", 0.0),
        max_header_bytes, root.get("disable_keep_alives", bool, False))


def _build_endpoint(raw: dict[str, Any], path: JsonPath, defaults: Mapping[str, Any],
                    errors: list[ConfigValueError]) -> EndpointConfig | None:
    r = Reader(raw, path, errors, weak=True)
    endpoint = r.get("endpoint", str, None)
    if endpoint is None:
        r.fail("endpoint",
               "missing: every endpoint needs an \"endpoint\" path such as \"/users/{id}\"")
        return None
    if not endpoint.startswith("/"):
        r.fail("endpoint", f"endpoint {endpoint!r} must start with '/'")
        return None
    params = endpoint_params(endpoint)
    for name in params:
        if name != "*" and not _PARAM_NAME.match(name):
            r.fail("endpoint", f"invalid parameter {{{name}}} in {endpoint!r}: "
                               "names use letters, digits, '_' and '-'")
    if "*" in endpoint[:-1] and not endpoint.endswith("/*"):
        r.fail("endpoint", f"a wildcard '*' is only allowed as the last segment: {endpoint!r}")
    method = r.get("method", str, DEFAULT_METHOD).upper() or DEFAULT_METHOD
    if method not in HTTP_METHODS:
        r.fail("method", f"unknown HTTP method {method!r}: expected one of "
                         f"{', '.join(sorted(HTTP_METHODS))}")
    timeout = r.duration("timeout", defaults["timeout"])
    if timeout == 0:
        timeout = defaults["timeout"]
    cache_ttl = r.duration("cache_ttl", defaults["cache_ttl"])
    output_encoding = r.choice("output_encoding", OUTPUT_ENCODINGS, defaults["output_encoding"])
    concurrent = r.get("concurrent_calls", int, 1) or 1
    if concurrent < 1:
        r.fail("concurrent_calls", f"expected at least 1, got {concurrent}")
    # KrakenD 2 ignores the v1 names (headers_to_pass, querystring_params): so does tidegate,
    # and lint says which v3 name to use.
    input_headers = r.strings("input_headers")
    input_query = r.strings("input_query_strings")
    raw_extra, extra = r.extra_config()
    backends_raw = raw.get("backend")
    if backends_raw is not None:
        backends_raw = lift(backends_raw)  # one backend object: a list of one (mapstructure)
    proxy = endpoint_proxy(raw_extra, extra, path,
                           len(backends_raw) if isinstance(backends_raw, list) else 0, errors)
    backends: list[BackendConfig] = []
    if backends_raw is None or backends_raw == []:
        r.fail("backend", f"endpoint {method} {endpoint} has no backends: declare at least one")
    elif not isinstance(backends_raw, list):
        r.fail("backend", f"expected a list of backends, got {describe_value(backends_raw)}")
    else:
        if output_encoding == "no-op" and len(backends_raw) > 1:
            r.fail("output_encoding", "no-op cannot be used with more than one backend on the "
                                      "same endpoint")
        inherited = {"host": defaults["host"], "method": method, "timeout": timeout,
                     "concurrent_calls": concurrent,
                     "force_no_op": output_encoding == "no-op"}
        for j, braw in enumerate(backends_raw):
            bpath = (*path, "backend", j)
            if not isinstance(braw, dict):
                errors.append(ConfigValueError(
                    f"expected a backend object, got {describe_value(braw)}", path=bpath))
                continue
            backend = _build_backend(braw, bpath, inherited, errors)
            _check_placeholders(backend, params, j, proxy.sequential, errors)
            backends.append(backend)
    return EndpointConfig(
        endpoint=endpoint, method=method, backend=tuple(backends), timeout=timeout,
        cache_ttl=cache_ttl, output_encoding=output_encoding, concurrent_calls=concurrent,
        input_headers=input_headers, input_query_strings=input_query, proxy=proxy,
        extra_config=extra,
        params=tuple(params), raw=raw, path=path,
    )


def _build_backend(raw: dict[str, Any], path: JsonPath, inherited: Mapping[str, Any],
                   errors: list[ConfigValueError]) -> BackendConfig:
    r = Reader(raw, path, errors, weak=True)
    # lura's CleanPath: a missing url_pattern is "/", a relative one gets its leading slash.
    url_pattern = "/" + r.get("url_pattern", str, "").removeprefix("/")
    disable_sanitize = r.get("disable_host_sanitize", bool, False)
    own_hosts = r.strings("host")
    hosts = own_hosts or tuple(inherited["host"])
    # No host anywhere: KrakenD starts and this backend's requests fail ("no hosts
    # available"); `run` and `check` warn (tidegate.lint.linter). With disable_host_sanitize
    # the hosts are used verbatim: one Go's client cannot use fails at request time too.
    if not disable_sanitize:
        written = hosts
        hosts = tuple(sanitize_host(h) for h in hosts)
        if own_hosts:  # inherited ones are checked once, at the root
            _check_hosts(hosts, (*path, "host"), errors, written)
    problem = pattern_error(hosts[0] if hosts else "", url_pattern)
    if problem:
        r.fail("url_pattern", problem)
    method = (r.get("method", str, "") or inherited["method"]).upper()
    if method not in HTTP_METHODS:
        r.fail("method", f"unknown HTTP method {method!r}")
    # lura's initBackendDefaults overwrites a backend's own timeout with its endpoint's.
    timeout = inherited["timeout"]
    raw_extra, extra = r.extra_config()
    mapping: dict[str, str] = {}
    for key, value in r.mapping("mapping").items():
        try:
            mapping[key] = to_str(value)
        except WeakTypeError as exc:
            errors.append(ConfigValueError(str(exc), path=(*path, "mapping", key)))
    return BackendConfig(
        host=tuple(hosts), url_pattern=url_pattern, method=method,
        encoding="no-op" if inherited["force_no_op"] else _encoding(r),
        timeout=timeout, concurrent_calls=inherited["concurrent_calls"],
        disable_host_sanitize=disable_sanitize,
        is_collection=r.get("is_collection", bool, False),
        group=r.get("group", str, None) or None, target=r.get("target", str, None) or None,
        allow=r.strings("allow") or (),  # KrakenD 2 ignores the v1 whitelist / blacklist
        deny=r.strings("deny") or (),
        mapping=mapping,
        input_headers=r.strings("input_headers"),
        input_query_strings=r.strings("input_query_strings"),
        flatmap=backend_flatmap(raw_extra, extra, path, errors),
        http=backend_http(raw_extra, extra, path, errors),
        extra_config=extra, raw=raw, path=path,
    )


def _encoding(r: Reader) -> str:
    """lura's DecoderRegister.Get: a name without a decoder (``fast-json``, ``yaml``,
    ``form``) gets the JSON one."""
    name = r.get("encoding", str, DEFAULT_ENCODING)
    return name if name in BACKEND_ENCODINGS else DEFAULT_ENCODING


def _check_placeholders(backend: BackendConfig, params: list[str], index: int, sequential: bool,
                        errors: list[ConfigValueError]) -> None:
    """Every ``{x}`` of a url_pattern must come from the endpoint (or an earlier response)."""
    known = {p.lower() for p in params}
    for name in PLACEHOLDER.findall(backend.url_pattern):
        if name.lower() in known or name.startswith("JWT."):
            continue
        ref = _SEQUENTIAL_REF.match(name)
        if ref and sequential and int(ref.group(1)) < index:
            continue
        hint = ""
        if ref and not sequential:
            hint = " (response references need \"sequential\": true in extra_config.proxy)"
        elif ref:
            hint = f" (resp{ref.group(1)} is not an earlier backend of this endpoint)"
        available = ", ".join("{" + p + "}" for p in params) or "none"
        errors.append(ConfigValueError(
            f"undefined parameter {{{name}}} in url_pattern {backend.url_pattern!r}{hint}; "
            f"the endpoint defines: {available}",
            path=(*backend.path, "url_pattern")))


def route_key(endpoint: str) -> str:
    """The shape of a route, parameter names erased: ``/a/{x}`` and ``/a/{y}`` collide."""
    return PLACEHOLDER.sub("{}", endpoint)


def _check_collisions(endpoints: list[EndpointConfig], errors: list[ConfigValueError]) -> None:
    seen: dict[tuple[str, str], EndpointConfig] = {}
    for ep in endpoints:
        key = (ep.method, route_key(ep.endpoint))
        first = seen.get(key)
        if first is not None:
            errors.append(ConfigValueError(
                f"route {ep.method} {ep.endpoint} collides with {first.method} {first.endpoint} "
                f"declared at endpoints[{first.path[1]}]", path=(*ep.path, "endpoint")))
        else:
            seen[key] = ep
