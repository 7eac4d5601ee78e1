"""The namespaces KrakenD's own engine reads (``router``, ``proxy``, ``backend/http``), typed.

lura reads these sections itself, not through a component, so the model parses them once and the
pipeline compiles the typed values. Where KrakenD reads a value of the wrong type as unset (a
``sequential: "yes"``, a ``return_error_code: 1``) so does tidegate, as the run time always did,
and lint reports it; what cannot be served (an unknown static strategy, a malformed flatmap
operation, a negative ``max_payload``) is an error located at its key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.config.aliases import source_key
from tidegate.config.reader import describe_value
from tidegate.errors import ConfigValueError, JsonPath

# lura proxy/static.go: when the static data is merged into the answer.
STATIC_STRATEGIES = ("always", "success", "complete", "errored", "incomplete")
# krakend/flatmap: the operations of a flatmap_filter.
FLATMAP_TYPES = ("move", "del", "append")

# One flatmap operation: its type and its arguments as dot paths split into keys.
FlatmapOp = tuple[str, tuple[tuple[str, ...], ...]]


@dataclass(frozen=True, slots=True)
class StaticProxy:
    """``proxy.static``: data merged into the answer when ``strategy`` matches."""

    strategy: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EndpointProxy:
    """An endpoint's ``proxy`` namespace, as lura's proxy factory reads it."""

    sequential: bool  # lura's getMergerFactory: `strategy` when it names a merger, else this
    propagated_params: tuple[str, ...]  # read for a sequential merge only
    static: StaticProxy | None
    flatmap: tuple[FlatmapOp, ...] | None  # read for a merge only (lura's newMulti)
    max_payload: int | None  # bytes; 0 is no limit (KrakenD EE)


NO_ENDPOINT_PROXY = EndpointProxy(False, (), None, None, None)


@dataclass(frozen=True, slots=True)
class BackendHTTP:
    """``backend/http``: lura's HTTP status handlers for a failed backend answer."""

    error_details: str | None  # answer failures under ``error_<name>`` (wins when present)
    error_code: bool  # answer the backend's own status and body


NO_BACKEND_HTTP = BackendHTTP(None, False)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# gin's default RemoteIPHeaders (KrakenD's when remote_ip_headers is absent or empty).
DEFAULT_REMOTE_IP_HEADERS = ("X-Forwarded-For", "X-Real-IP")


@dataclass(frozen=True, slots=True)
class RouterOptions:
    """The root ``router`` namespace, the part tidegate acts on."""

    return_error_msg: bool
    hide_version_header: bool  # X-Krakend says "Version undefined", as lura does
    max_payload: int | None
    # gin's client address settings (tidegate.pipeline.client_ip): none trusted by default
    trusted_proxies: tuple[Network, ...] = ()
    forwarded_by_client_ip: bool = True
    remote_ip_headers: tuple[str, ...] = DEFAULT_REMOTE_IP_HEADERS


NO_ROUTER = RouterOptions(False, False, None)


class _Section:
    """One namespace of a raw extra_config: its value and the path errors inside it get."""

    def __init__(self, raw_extra: Mapping[str, Any], extra: Mapping[str, Any], namespace: str,
                 path: JsonPath, errors: list[ConfigValueError]) -> None:
        value = extra.get(namespace)
        # A section that is no object is ignored, as KrakenD does (lint says it is wrong).
        self.data: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        self.raw_extra = raw_extra
        self.namespace = namespace
        self.path = path
        self.errors = errors

    def fail(self, message: str, *keys: str | int) -> None:
        """An error at a key of this section, under the name the section was written with."""
        where = (*self.path, "extra_config", source_key(self.raw_extra, self.namespace), *keys)
        self.errors.append(ConfigValueError(message, path=where))

    def max_payload(self) -> int | None:
        """``max_payload`` in bytes (KrakenD EE), None when absent."""
        if "max_payload" not in self.data:
            return None
        value = self.data["max_payload"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"expected a non-negative integer (bytes), got {describe_value(value)}",
                      "max_payload")
            return None
        return value

    def flatmap(self) -> tuple[FlatmapOp, ...] | None:
        """``flatmap_filter``: None when absent or empty (lura then uses the plain formatter)."""
        raw = self.data.get("flatmap_filter")
        if raw is None:
            return None
        if not isinstance(raw, list):
            self.fail(f"expected a list of operations, got {describe_value(raw)}",
                      "flatmap_filter")
            return None
        ops = [op for i, entry in enumerate(raw) if (op := self._operation(i, entry))]
        return tuple(ops) or None

    def _operation(self, i: int, entry: Any) -> FlatmapOp | None:
        where = ("flatmap_filter", i)
        if not isinstance(entry, Mapping):
            self.fail(f'expected an operation such as {{"type": "del", "args": ["a.b"]}}, got '
                      f"{describe_value(entry)}", *where)
            return None
        kind = entry.get("type")
        if not isinstance(kind, str):
            if "type" in entry:
                self.fail(f"expected a string, got {describe_value(kind)}", *where, "type")
            else:
                self.fail('an operation needs a "type" (move, del or append)', *where)
            return None
        if kind not in FLATMAP_TYPES:
            self.fail(f"unknown type {kind!r} (use move, del or append)", *where, "type")
            return None
        args = entry.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) and a for a in args):
            self.fail(f"expected a list of non-empty dot paths, got {describe_value(args)}",
                      *where, "args")
            return None
        if kind in ("move", "append") and len(args) != 2:
            self.fail(f"{kind} takes exactly 2 args (source, destination), got {len(args)}",
                      *where, "args")
            return None
        if kind == "del" and not args:
            self.fail("del takes at least 1 arg", *where, "args")
            return None
        return kind, tuple(tuple(a.split(".")) for a in args)


def router_options(raw_extra: Mapping[str, Any], extra: Mapping[str, Any],
                   errors: list[ConfigValueError]) -> RouterOptions:
    """The root ``router`` namespace."""
    section = _Section(raw_extra, extra, "router", (), errors)
    if not section.data:
        return NO_ROUTER
    # Any truthy return_error_msg turns it on, as the run time always read it; lura's gin
    # options read hide_version_header as a boolean.
    return RouterOptions(bool(section.data.get("return_error_msg")),
                         section.data.get("hide_version_header") is True,
                         section.max_payload(), *_client_address(section))


def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's net.ParseIP; an IPv4-mapped IPv6 address is the IPv4 one, as Go compares them."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _client_address(section: _Section) -> tuple[tuple[Network, ...], bool, tuple[str, ...]]:
    """``trusted_proxies`` (addresses or CIDRs, as gin's SetTrustedProxies parses them; gin
    drops the whole list on a bad entry, tidegate refuses it), ``forwarded_by_client_ip``,
    ``remote_ip_headers``."""
    data = section.data
    trusted: list[Network] = []
    raw = data.get("trusted_proxies", [])
    if not isinstance(raw, list):
        section.fail("trusted_proxies must be a list of addresses or CIDR ranges",
                     "trusted_proxies")
        raw = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            section.fail(f"expected a string, got {describe_value(item)}", "trusted_proxies", i)
            continue
        text = item
        if "/" not in text:
            ip = ip_address(text)
            if ip is None:
                section.fail(f"trusted_proxies: {item!r} is not an IP address or a CIDR range",
                             "trusted_proxies", i)
                continue
            text = f"{ip}/{ip.max_prefixlen}"
        try:
            trusted.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            section.fail(f"trusted_proxies: invalid CIDR address: {item}", "trusted_proxies", i)
    forwarded = data.get("forwarded_by_client_ip", True)
    if not isinstance(forwarded, bool):
        section.fail("forwarded_by_client_ip must be true or false", "forwarded_by_client_ip")
        forwarded = True
    headers = data.get("remote_ip_headers", [])
    if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
        section.fail("remote_ip_headers must be a list of header names", "remote_ip_headers")
        headers = []
    return tuple(trusted), forwarded, tuple(headers) or DEFAULT_REMOTE_IP_HEADERS


def endpoint_proxy(raw_extra: Mapping[str, Any], extra: Mapping[str, Any], path: JsonPath,
                   backends: int, errors: list[ConfigValueError]) -> EndpointProxy:
    """An endpoint's ``proxy`` namespace; ``backends`` decides what lura reads of it."""
    section = _Section(raw_extra, extra, "proxy", path, errors)
    options = section.data
    if not options:
        return NO_ENDPOINT_PROXY
    strategy = options.get("strategy")
    if isinstance(strategy, str) and strategy in ("parallel", "sequential"):
        sequential = strategy == "sequential"
    else:
        sequential = options.get("sequential") is True
    propagated: tuple[str, ...] = ()
    if backends > 1 and sequential:
        key = "sequential_propagated_params"
        value = options.get(key) or []
        if not isinstance(value, list):
            section.fail('expected a list of strings such as "resp0_user.id", got '
                         f"{describe_value(value)}", key)
        else:
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    section.fail(f"expected a string, got {describe_value(item)}", key, i)
            propagated = tuple(p for p in value if isinstance(p, str))
    return EndpointProxy(
        sequential=sequential, propagated_params=propagated, static=_static(section),
        flatmap=section.flatmap() if backends > 1 else None,
        max_payload=section.max_payload())


def _static(section: _Section) -> StaticProxy | None:
    static = section.data.get("static")
    if not static:
        return None
    if not isinstance(static, Mapping):
        section.fail('expected an object with "strategy" and "data", got '
                     f"{describe_value(static)}", "static")
        return None
    strategy = static.get("strategy", "always")
    if not isinstance(strategy, str) or strategy not in STATIC_STRATEGIES:
        section.fail(f"unknown static strategy {strategy!r}: expected one of "
                     f"{', '.join(STATIC_STRATEGIES)}", "static", "strategy")
        return None
    data = static.get("data") or {}
    if not isinstance(data, Mapping):
        section.fail(f"expected an object, got {describe_value(data)}", "static", "data")
        return None
    return StaticProxy(strategy, data)


def backend_flatmap(raw_extra: Mapping[str, Any], extra: Mapping[str, Any], path: JsonPath,
                    errors: list[ConfigValueError]) -> tuple[FlatmapOp, ...] | None:
    """A backend's ``proxy.flatmap_filter`` (it replaces allow, deny and mapping)."""
    return _Section(raw_extra, extra, "proxy", path, errors).flatmap()


def backend_http(raw_extra: Mapping[str, Any], extra: Mapping[str, Any], path: JsonPath,
                 errors: list[ConfigValueError]) -> BackendHTTP:
    """``backend/http``, as lura's GetHTTPStatusHandler: details win whenever the key is there."""
    options = _Section(raw_extra, extra, "backend/http", path, errors).data
    if "return_error_details" in options:
        details = options["return_error_details"]
        return BackendHTTP(details if isinstance(details, str) and details else None, False)
    if options.get("return_error_code") is True:
        return BackendHTTP(None, True)
    return NO_BACKEND_HTTP
