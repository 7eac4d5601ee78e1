"""``security/cors``: rs/cors v1.11.1 as KrakenD CE configures it (krakend-cors, mux variant).

At the root it wraps the whole generation *before routing*, as krakend-ce's server chain does:
a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered here for any path,
existing or not, GET-only or not, with ``options_success_status`` (204) and no body; a refused
preflight is the same answer without the ``Access-Control-Allow-*`` headers (rs/cors refuses
silently). Every other request gets ``Vary: Origin`` and, when its origin and method are
allowed, ``Access-Control-Allow-Origin`` and the exposed headers, on whatever answers it (404s
included).

In an endpoint's ``extra_config`` (KrakenD EE) the section governs that endpoint's answers
instead of the root one; preflights are still answered before routing, by the root section.

Header lists are matched as rs/cors 1.11 does: the ``Access-Control-Request-Headers`` list must
be lower-case, sorted and without duplicates (what browsers send), so ``Content-Type,Origin``
is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from tidegate.components import answer_lines
from tidegate.components.seam import Build, Component, Level, answered
from tidegate.components.section import Section
from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import JsonPath
from tidegate.messages import (
    EndpointHandler,
    Request,
    Response,
    ServiceHandler,
    canonical_header,
    header_block,
)

NAMESPACE = "security/cors"

log = logging.getLogger("tidegate.cors")

_MAX_OWS = 1        # bytes of optional whitespace tolerated around a listed name
_MAX_EMPTY = 16     # empty list elements tolerated (RFC 9110 asks for "a reasonable number")
_SIMPLE_METHODS = ("GET", "POST", "HEAD")
_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
_VARY = ("Vary", "Origin")
_CACHE_SIZE = 1024  # (origin, method) pairs whose actual-request headers are kept
_METHODS_KEPT = 16  # methods whose lines are kept (a client may send any token as method)


# Where the sections add their headers to the answers (`answer_lines` refused them lines): the
# Vary an endpoint's own section adds carries an "Origin" that is a distinct string object
# (built at run time, never the interned constant), which tells the root section that the
# endpoint applied its own CORS: compared by identity, cheaper than a marker header. The string,
# not the pair, is compared: compiled code may rebuild the pair but passes strings by reference.
# With lines, the endpoint's replace the root's on the request instead.
_ENDPOINT_ORIGIN = "".join(("Orig", "in"))
_ENDPOINT_VARY = ("Vary", _ENDPOINT_ORIGIN)


@dataclass(frozen=True, slots=True)
class CorsConfig:
    """The section as krakend-cors reads it, defaults applied as its mux variant does."""

    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = _SIMPLE_METHODS
    allow_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    allow_private_network: bool = False
    options_passthrough: bool = False
    options_success_status: int = 204
    max_age: int = 0  # seconds; 0: no Access-Control-Max-Age
    debug: bool = False


def parse(raw: Any, path: JsonPath) -> CorsConfig:
    """The typed section; a value KrakenD would skip (or panic on) is an error at its key."""
    s = Section(raw, path, NAMESPACE)
    max_age = 0
    if "max_age" in s.raw:
        text = s.raw["max_age"]
        if not isinstance(text, str):
            raise s.error("max_age must be a duration string such as \"12h\"", "max_age")
        try:
            seconds = parse_duration(text)
        except DurationError as exc:
            raise s.error(f"max_age: {exc}", "max_age") from None
        # rs/cors: a negative max age is sent as 0; the duration is cut to whole seconds.
        max_age = -1 if seconds < 0 else int(seconds)
    return CorsConfig(
        allow_origins=s.strings("allow_origins") or ("*",),
        allow_methods=s.strings("allow_methods") or _SIMPLE_METHODS,
        allow_headers=s.strings("allow_headers") or ("*",),
        expose_headers=s.strings("expose_headers"),
        allow_credentials=s.bool("allow_credentials"),
        allow_private_network=s.bool("allow_private_network"),
        options_passthrough=s.bool("options_passthrough"),
        options_success_status=s.integer("options_success_status", 204, minimum=200,
                                         maximum=999),
        max_age=max_age,
        debug=s.bool("debug"),
    )


def _cut_at_comma(s: str, n: int) -> tuple[str, str, bool]:
    """rs/cors cutAtComma: only the first `n` bytes are searched for a comma."""
    i = s.find(",", 0, min(len(s), n))
    if i >= 0:
        return s[:i], s[i + 1:], True
    return s, "", False


def _trim_ows(s: str, n: int) -> tuple[str, bool]:
    """rs/cors trimOWS: at most `n` spaces/tabs on each side, else refused."""
    if not s:
        return s, True
    end = len(s)
    stripped = 0
    while end > 0:
        if stripped > n:
            return s, False
        if s[end - 1] not in " \t":
            break
        end -= 1
        stripped += 1
    start = 0
    stripped = 0
    while start < end:
        if stripped > n:
            return s, False
        if s[start] not in " \t":
            break
        start += 1
        stripped += 1
    return s[start:end], True


class SortedNames:
    """rs/cors internal.SortedSet: accepts a header list only if sorted, unique, all known."""

    __slots__ = ("_max", "_pos")

    def __init__(self, names: list[str]) -> None:
        self._pos: dict[str, int] = {}
        for name in sorted(names):
            self._pos.setdefault(name, len(self._pos))
        self._max = 2 * _MAX_OWS + max((len(n) for n in self._pos), default=0) + 1

    def accepts(self, values: list[str]) -> bool:
        """True if every listed name is known, in strictly increasing order."""
        last = -1
        empty = 0
        for s in values:
            while True:
                name, s, comma = _cut_at_comma(s, self._max)
                name, ok = _trim_ows(name, _MAX_OWS)
                if not ok:
                    return False
                if not name:
                    empty += 1
                    if empty > _MAX_EMPTY:
                        return False
                    if not comma:
                        break
                    continue
                pos = self._pos.get(name)
                if pos is None or pos <= last:
                    return False
                last = pos
                if not comma:
                    break
        return True


def _lone_origin(req: Request) -> tuple[str | None, bool]:
    """The request's first Origin, and whether it sent more than one (the answer then
    depends on all of them and is not remembered)."""
    origin = None
    for k, v in req.headers:
        if k == "origin":
            if origin is not None:
                return origin, True
            origin = v
    return origin, False


class Policy:
    """One section compiled: the headers a preflight or an actual request gets."""

    def __init__(self, cfg: CorsConfig, vary: tuple[str, str] = _VARY) -> None:
        self.cfg = cfg
        # Every actual request's answer gets it (rs/cors: "Vary: Origin", appended).
        self.vary = vary
        self._vary_only = [vary]
        self._vary_line = header_block(self._vary_only)
        self._actual: dict[tuple[str, str], list[tuple[str, str]]] = {}
        # The same headers as wire lines, by method then origin (no pair built per request).
        self._lines: dict[str, dict[str, bytes]] = {}
        self._lines_kept = 0
        self.all_origins = False
        wildcards: list[tuple[str, str]] = []
        plain: list[str] = []
        for origin in (o.lower() for o in cfg.allow_origins):
            if origin == "*":
                self.all_origins = True
                plain, wildcards = [], []
                break
            star = origin.find("*")
            if star >= 0:
                wildcards.append((origin[:star], origin[star + 1:]))
            else:
                plain.append(origin)
        self.origins = frozenset(plain)
        self.wildcards = tuple(wildcards)
        self.all_headers = "*" in cfg.allow_headers
        self.headers = SortedNames([] if self.all_headers else
                                   [h.lower() for h in cfg.allow_headers])
        self.methods = frozenset(cfg.allow_methods)
        self.expose = ", ".join(canonical_header(h) for h in cfg.expose_headers)
        self.status = cfg.options_success_status
        self.passthrough = cfg.options_passthrough
        preflight_vary = _PREFLIGHT_VARY
        if cfg.allow_private_network:
            preflight_vary += ", Access-Control-Request-Private-Network"
        self.preflight_vary = ("Vary", preflight_vary)
        self.max_age = None if cfg.max_age == 0 else str(max(cfg.max_age, 0))
        self.debug = cfg.debug

    def origin_allowed(self, origin: str) -> bool:
        """rs/cors isOriginAllowed (case-insensitive, one `*` per pattern)."""
        if self.all_origins:
            return True
        origin = origin.lower()
        if origin in self.origins:
            return True
        return any(len(origin) >= len(p) + len(s) and origin.startswith(p)
                   and origin.endswith(s) for p, s in self.wildcards)

    def method_allowed(self, method: str) -> bool:
        """OPTIONS always; otherwise exactly as listed."""
        return method == "OPTIONS" or method in self.methods

    def _refuse(self, why: str) -> None:
        if self.debug:
            log.debug("[CORS] %s", why)

    def preflight(self, req: Request) -> list[tuple[str, str]]:
        """The headers of a preflight answer (rs/cors handlePreflight)."""
        out = [self.preflight_vary]
        origin = req.header("origin")
        if not origin:
            self._refuse("Preflight aborted: empty origin")
            return out
        if not self.origin_allowed(origin):
            self._refuse(f"Preflight aborted: origin '{origin}' not allowed")
            return out
        method = req.header("access-control-request-method") or ""
        if not self.method_allowed(method):
            self._refuse(f"Preflight aborted: method '{method}' not allowed")
            return out
        asked = req.header_values("access-control-request-headers")
        if asked and not self.all_headers and not self.headers.accepts(asked):
            self._refuse(f"Preflight aborted: headers '{asked}' not allowed")
            return out
        if self.all_origins:
            out.append(("Access-Control-Allow-Origin", "*"))
        else:
            out += [("Access-Control-Allow-Origin", v) for v in req.header_values("origin")]
        out += [("Access-Control-Allow-Methods", v)
                for v in req.header_values("access-control-request-method")]
        if asked and asked[0]:
            out += [("Access-Control-Allow-Headers", v) for v in asked]
        if self.cfg.allow_credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if self.cfg.allow_private_network and \
                req.header("access-control-request-private-network") == "true":
            out.append(("Access-Control-Allow-Private-Network", "true"))
        if self.max_age is not None:
            out.append(("Access-Control-Max-Age", self.max_age))
        return out

    def actual(self, req: Request) -> list[tuple[str, str]]:
        """The headers an actual request's answer gets (rs/cors handleActualRequest).

        The answer depends only on the Origin and the method: it is computed once per pair
        (a bounded cache, emptied when full, so random origins cannot grow it)."""
        origin, more = _lone_origin(req)
        if not origin:
            return self._vary_only
        key = None if more else (origin, req.method)
        if key is not None:
            found = self._actual.get(key)
            if found is not None:
                return found
        out = self._actual_headers(req.header_values("origin"), req.method)
        if key is not None:
            if len(self._actual) >= _CACHE_SIZE:
                self._actual.clear()
            self._actual[key] = out
        return out

    def actual_lines(self, req: Request) -> bytes:
        """`actual`'s headers as the server writes them (`Request.head_lines`), encoded once
        per (origin, method), bounded the same way."""
        origin, more = _lone_origin(req)
        if not origin:
            return self._vary_line
        method = req.method
        if more:
            return header_block(self._actual_headers(req.header_values("origin"), method))
        by_origin = self._lines.get(method)
        if by_origin is None:
            if len(self._lines) >= _METHODS_KEPT:
                self._lines.clear()
                self._lines_kept = 0
            by_origin = {}
            self._lines[method] = by_origin
        found = by_origin.get(origin)
        if found is None:
            found = header_block(self._actual_headers([origin], method))
            if self._lines_kept >= _CACHE_SIZE:
                self._lines.clear()
                self._lines_kept = 0
                self._lines[method] = by_origin = {}
            by_origin[origin] = found
            self._lines_kept += 1
        return found

    def _actual_headers(self, origins: list[str], method: str) -> list[tuple[str, str]]:
        origin = origins[0]
        if not self.origin_allowed(origin):
            self._refuse(f"Actual request no headers added: origin '{origin}' not allowed")
            return self._vary_only
        if not self.method_allowed(method):
            self._refuse(f"Actual request no headers added: method '{method}' not allowed")
            return self._vary_only
        out = [self.vary]
        if self.all_origins:
            out.append(("Access-Control-Allow-Origin", "*"))
        else:
            out += [("Access-Control-Allow-Origin", v) for v in origins]
        if self.expose:
            out.append(("Access-Control-Expose-Headers", self.expose))
        if self.cfg.allow_credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        return out


def _with(headers: list[tuple[str, str]], resp: Response) -> Response:
    """`resp` with the CORS headers first (set before the handler ran, as in Go); a new
    object, since the inner answer may be a shared constant."""
    return Response(resp.status, headers + resp.headers, resp.body, resp.stream)


def is_preflight(req: Request) -> bool:
    """rs/cors: ``OPTIONS`` with a non-empty ``Access-Control-Request-Method``."""
    return req.method == "OPTIONS" and bool(req.header("access-control-request-method"))


def service_stage(policy: Policy, inner: ServiceHandler, *,
                  endpoints_override: bool = False, lines: bool = False) -> ServiceHandler:
    """The root section around the whole generation (before routing).

    ``endpoints_override``: some endpoint has its own section; its answers then carry that
    section's headers and not these. ``lines``: the headers go to the server as prepared
    lines (`answer_lines.root_cors`), the answer as it is.
    """
    if lines:
        return _service_lines(policy, inner)
    passthrough = policy.passthrough
    status = policy.status
    actual = policy.actual

    async def cors(req: Request) -> Response:
        if req.method == "OPTIONS" and req.header("access-control-request-method"):
            headers = policy.preflight(req)
            if passthrough:
                return _with(headers, await inner(req))
            return Response(status, headers)
        headers = actual(req)
        resp = await inner(req)
        if endpoints_override and any(h[1] is _ENDPOINT_ORIGIN for h in resp.headers):
            return resp
        return Response(resp.status, headers + resp.headers, resp.body, resp.stream)

    return cors


def _service_lines(policy: Policy, inner: ServiceHandler) -> ServiceHandler:
    """`service_stage` with the headers set as the request's `head_lines`: no coroutine and
    no new `Response` per request. This section is the first to set lines (nothing outside
    it does); an endpoint's own section replaces them, the sections inside append theirs."""
    passthrough = policy.passthrough
    status = policy.status
    lines = policy.actual_lines

    def cors(req: Request) -> Awaitable[Response]:
        if req.method == "OPTIONS" and req.header("access-control-request-method"):
            headers = policy.preflight(req)
            if passthrough:
                req.head_lines = header_block(headers)
                return inner(req)
            return answered(Response(status, headers))
        req.head_lines = lines(req)
        return inner(req)

    return cors


def endpoint_stage(policy: Policy, inner: EndpointHandler, *, lines: bool = False
                   ) -> EndpointHandler:
    """An endpoint's own section (KrakenD EE): its actual requests' answers (`policy` built
    with the endpoint's Vary marker, unless ``lines``: see `_endpoint_lines`)."""
    if lines:
        return _endpoint_lines(policy, inner)
    status = policy.status
    actual = policy.actual

    async def cors(req: Request, params: dict[str, str]) -> Response:
        # a preflight reaches an endpoint only if its method is OPTIONS
        if req.method == "OPTIONS" and req.header("access-control-request-method"):
            headers = policy.preflight(req)
            if policy.passthrough:
                return _with(headers, await inner(req, params))
            return Response(status, headers)
        headers = actual(req)
        resp = await inner(req, params)
        return Response(resp.status, headers + resp.headers, resp.body, resp.stream)

    return cors


def _endpoint_lines(policy: Policy, inner: EndpointHandler) -> EndpointHandler:
    """`endpoint_stage` with the headers as the request's `head_lines`: an actual request's
    replace the root section's (this section governs the endpoint's answers), a preflight
    passed on appends its own to them, as the answers were before."""
    status = policy.status
    lines = policy.actual_lines

    def cors(req: Request, params: dict[str, str]) -> Awaitable[Response]:
        if req.method == "OPTIONS" and req.header("access-control-request-method"):
            headers = policy.preflight(req)
            if policy.passthrough:
                req.head_lines += header_block(headers)
                return inner(req, params)
            return answered(Response(status, headers))
        req.head_lines = lines(req)
        return inner(req, params)

    return cors


_STRINGS = {"type": "array", "items": {"type": "string"}}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Cross-Origin Resource Sharing, as rs/cors in KrakenD CE (root: before "
                   "routing; endpoint: that endpoint's answers, as KrakenD EE)",
    "properties": {
        "allow_origins": {**_STRINGS, "description": "allowed origins; one `*` per entry, "
                          "`*` alone = any (default)"},
        "allow_methods": {"type": "array", "items": {"enum": [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]},
            "description": "methods allowed, exactly as browsers send them (default GET, "
                           "POST, HEAD; OPTIONS always)"},
        "allow_headers": {**_STRINGS, "description": "request headers allowed (default any)"},
        "expose_headers": {**_STRINGS, "description": "response headers browsers may read"},
        "allow_credentials": {"type": "boolean"},
        "allow_private_network": {"type": "boolean"},
        "options_passthrough": {"type": "boolean", "description": "let preflights reach the "
                                "router after the CORS headers are set"},
        "options_success_status": {"type": "integer", "minimum": 200, "maximum": 999,
                                   "description": "status of a preflight answer (204)"},
        "max_age": {"type": "string", "description": "Access-Control-Max-Age, a Go duration "
                    "cut to seconds (\"12h\")"},
        "debug": {"type": "boolean", "description": "log why CORS headers were not added"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


def build(ctx: Build[CorsConfig], inner: Any) -> Any:
    """The root section around routing, or an endpoint's around its handler."""
    if ctx.level is Level.SERVICE:
        override = any(NAMESPACE in ep.extra_config for ep in ctx.service.endpoints)
        return service_stage(Policy(ctx.config), inner, endpoints_override=override,
                             lines=answer_lines.root_cors(ctx.service))
    if ctx.endpoint is not None and answer_lines.endpoint_cors(ctx.service, ctx.endpoint):
        return endpoint_stage(Policy(ctx.config), inner, lines=True)
    return endpoint_stage(Policy(ctx.config, _ENDPOINT_VARY), inner)


# One registration per level, since the stacking differs (components/catalog.py): outermost at
# the root, as in krakend-ce's server chain; at an endpoint (EE), outside its bot detector.
COMPONENTS: tuple[Component[CorsConfig], ...] = (
    Component(NAMESPACE, frozenset({Level.SERVICE}), build, parse, SCHEMA, order=40),
    Component(NAMESPACE, frozenset({Level.ROUTER}), build, parse, SCHEMA, order=64),
)
