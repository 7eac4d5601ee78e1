"""`check -d/-dd/-ddd`: what tidegate understood, in the layout of `krakend check -d`.

The headers show routes the way KrakenD prints them (the router's ``/users/:id``, lura's
``{{.Id}}`` backend templates); from ``-dd`` on, the ``Endpoint:`` and ``URL:`` lines repeat them
as written in the configuration, so both views can be compared. Components tidegate does not
implement yet are marked on their line: they are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.config.durations import DurationError, format_duration, parse_duration
from tidegate.config.model import PLACEHOLDER, BackendConfig, EndpointConfig, ServiceConfig
from tidegate.config.namespaces import NAMESPACES
from tidegate.encoding.renderers import select_output_encoding
from tidegate.golang.sprint import sprint_float64
from tidegate.lint.implemented import implemented, registered_components

# Level 3 shows the HTTP server and client settings KrakenD parses (label, key, default).
_SERVER_SETTINGS = (
    ("Read timeout", "read_timeout", "duration"),
    ("Write timeout", "write_timeout", "duration"),
    ("Idle timeout", "idle_timeout", "duration"),
    ("Read header timeout", "read_header_timeout", "duration"),
    ("Idle connection timeout", "idle_connection_timeout", "duration"),
    ("Response header timeout", "response_header_timeout", "duration"),
    ("Expect continue timeout", "expect_continue_timeout", "duration"),
    ("Dialer timeout", "dialer_timeout", "duration"),
    ("Dialer fallback delay", "dialer_fallback_delay", "duration"),
    ("Dialer keep alive", "dialer_keep_alive", "duration"),
    ("Disable keep alives", "disable_keep_alives", False),
    ("Disable compression", "disable_compression", False),
    ("Max idle connections", "max_idle_connections", 0),
    ("Max idle connections per host", "max_idle_connections_per_host", 250),
)


def gin_route(endpoint: str) -> str:
    """``/users/{id}`` as KrakenD's router prints it: ``/users/:id``."""
    return PLACEHOLDER.sub(lambda m: ":" + m.group(1), endpoint)


def lura_url(url_pattern: str) -> str:
    """``/users/{id}`` as lura prints a backend URL template: ``/users/{{.Id}}``."""
    return PLACEHOLDER.sub(lambda m: "{{." + m.group(1)[:1].upper() + m.group(1)[1:] + "}}",
                           url_pattern)


def _duration(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return format_duration(raw / 1e9)
    if isinstance(raw, str):
        try:
            return format_duration(parse_duration(raw))
        except DurationError:
            return raw
    return "0s"


class _Out:
    def __init__(self, indent: str) -> None:
        self.indent = indent
        self.lines: list[str] = []

    def add(self, depth: int, text: str) -> None:
        self.lines.append(self.indent * depth + text)


def _components(out: _Out, depth: int, extra: Mapping[str, Any], label: str,
                level: int) -> None:
    out.add(depth, f"{len(extra)} {label} component configuration(s):")
    registered = registered_components()
    for name in sorted(extra):
        if name not in NAMESPACES:
            note = " (unknown: ignored)"
        elif not implemented(name, registered):
            note = " (not supported by tidegate yet)"
        else:
            note = ""
        out.add(depth, f"- {name}{note}")
        if level < 2:
            continue
        cfg = extra[name]
        if isinstance(cfg, Mapping):
            for key in sorted(cfg):
                out.add(depth + 1, f"{key}: {sprint_float64(cfg[key])}")
        else:
            out.add(depth + 1, sprint_float64(cfg))


def describe_service(service: ServiceConfig, level: int, indent: str = "\t",
                     source: str | None = None) -> str:
    """The `check -d` dump of a typed configuration (level 1 to 3)."""
    out = _Out(indent)
    raw = service.raw
    out.add(0, f"Parsing configuration file: {source or service.name}")
    out.add(0, "Global settings")
    out.add(1, f"Name: {service.name}")
    out.add(1, f"Port: {service.port}")
    if level >= 2:
        out.add(1, f"Default cache TTL: {format_duration(service.cache_ttl)}")
        out.add(1, f"Default timeout: {format_duration(service.timeout)}")
        out.add(1, f"Default backend hosts: {sprint_float64(list(service.host))}")
    if level >= 3:
        for label, key, default in _SERVER_SETTINGS:
            value = raw.get(key)
            if default == "duration":
                out.add(1, f"{label}: {_duration(value)}")
            else:
                out.add(1, f"{label}: {sprint_float64(default if value is None else value)}")
    if level >= 2:
        out.add(1, _tls_line(raw.get("tls")))
        out.add(1, "Plugin section defined (Python plugins)"
                if raw.get("plugin") else "No Plugin section defined")
    _components(out, 0, service.extra_config, "global", level)
    out.add(0, f"{len(service.endpoints)} API endpoints:")
    for ep in service.endpoints:
        _endpoint(out, ep, level)
    return "\n".join(out.lines)


def _tls_line(tls: Any) -> str:
    if not isinstance(tls, Mapping) or not tls:
        return "No TLS section defined"
    if tls.get("disabled") is True:
        return "TLS section defined, disabled: listening in plain HTTP"
    keys = tls.get("keys")
    count = (len(keys) if isinstance(keys, list) else 0) + bool(tls.get("public_key"))
    low, high = tls.get("min_version") or "TLS13", tls.get("max_version") or "TLS13"
    mtls = ", mutual TLS" if tls.get("enable_mtls") is True else ""
    return f"TLS: {count} certificate(s), {low} to {high}{mtls}"


def _endpoint(out: _Out, ep: EndpointConfig, level: int) -> None:
    out.add(1, f"- {ep.method} {gin_route(ep.endpoint)}")
    if level >= 2:
        out.add(1, f"Endpoint: {ep.method} {ep.endpoint}")
    out.add(1, f"Timeout: {format_duration(ep.timeout)}")
    if level >= 2:
        out.add(1, f"QueryString: {sprint_float64(list(ep.input_query_strings or ()))}")
        out.add(1, f"CacheTTL: {format_duration(ep.cache_ttl)}")
        out.add(1, f"Headers to pass: {sprint_float64(list(ep.input_headers or ()))}")
        encoding = select_output_encoding(ep.output_encoding, [b.encoding for b in ep.backend])
        out.add(1, f"OutputEncoding: {encoding}")
        out.add(1, f"Concurrent calls: {ep.concurrent_calls}")
    _components(out, 1, ep.extra_config, "endpoint", level)
    out.add(1, f"Connecting to {len(ep.backend)} backend(s):")
    for i, b in enumerate(ep.backend):
        if i:
            out.add(0, "")
        _backend(out, b, level)


def _backend(out: _Out, b: BackendConfig, level: int) -> None:
    out.add(2, f"[+] {b.method} {lura_url(b.url_pattern)}")
    if level >= 2:
        out.add(2, f"URL: {b.url_pattern}")
    out.add(2, f"Timeout: {format_duration(b.timeout)}")
    out.add(2, f"Hosts: {sprint_float64(list(b.host))}")
    if level >= 2:
        out.add(2, f"Concurrent calls: {b.concurrent_calls}")
        out.add(2, f"Host sanitization disabled: {sprint_float64(b.disable_host_sanitize)}")
        out.add(2, f"Target: {b.target or ''}")
        out.add(2, f"Deny: {sprint_float64(list(b.deny))}, Allow: {sprint_float64(list(b.allow))}")
        out.add(2, f"Mapping: {sprint_float64(dict(b.mapping))}")
        out.add(2, f"Group: {b.group or ''}")
        out.add(2, f"Encoding: {b.encoding}")
        out.add(2, f"Is collection: {sprint_float64(b.is_collection)}")
        out.add(2, f"SD: {sprint_float64(b.raw.get('sd', ''))}")
    _components(out, 2, b.extra_config, "backend", level)
