"""One endpoint compiled into a request handler (lura's endpoint handler + proxy factory).

Stages, in lura's and krakend-ce's order: router components → request builder (params,
input_headers, input_query_strings, X-Forwarded-*, User-Agent) → endpoint proxy components →
static proxy → endpoint flatmap → merge of backends (parallel or sequential) or the single
backend with the endpoint timeout → per-backend stacks; then the router's rendering
(X-KrakenD-Completed, Cache-Control, output encoding, status code rules). Components come from
:mod:`tidegate.components` and are chosen here, once.

A request body that arrives as a stream is sent on as it arrives when one backend receives it
(as Go does); when several do (a merge, ``concurrent_calls``) it is held, up to ``max_payload``
or `HELD_BODY_LIMIT`, and 413 answers a larger one. ``max_payload`` (KrakenD EE: root
``router`` or endpoint ``proxy`` namespace) bounds every body, held or streamed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any, Final
from urllib.parse import parse_qsl

from tidegate import KRAKEND_COMPAT_VERSION
from tidegate.bodies import BodyTooLarge
from tidegate.components import Assembly, EndpointParts, Level
from tidegate.config.model import PLACEHOLDER, EndpointConfig
from tidegate.encoding.renderers import renderer_for, select_output_encoding
from tidegate.messages import (
    BackendFailure,
    BackendProxy,
    BackendTimeout,
    EndpointHandler,
    PayloadTooLarge,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    Request,
    Response,
    canonical_header,
)
from tidegate.pipeline.backend import BackendCall, CompiledBackend, param_key
from tidegate.pipeline.flatmap import compile_flatmap
from tidegate.pipeline.manipulation import Formatter
from tidegate.pipeline.merge import (
    MERGE_SHARE,
    merge_parallel,
    merge_sequential,
    sequential_replacements,
)
from tidegate.pipeline.static import compile_static

COMPLETED_HEADER = "X-Krakend-Completed"
# KrakenD stamps every endpoint answer with its version; tidegate states the version it follows.
VERSION_HEADER = ("X-Krakend", f"Version {KRAKEND_COMPAT_VERSION}")
# router.hide_version_header: lura keeps the header, with the version obfuscated.
HIDDEN_VERSION_HEADER = ("X-Krakend", "Version undefined")
DEFAULT_INPUT_HEADERS = ("Content-Type",)
# The largest request body held whole when no max_payload says otherwise (several backends
# need it more than once; Go holds it without bound).
HELD_BODY_LIMIT = 32 << 20
ProxyAnswer = tuple[ProxyResponse | None, BaseException | None]
# Framing headers are recomputed by the server; the rest of a no-op answer passes as is.
_NOT_PASSED = frozenset({"Content-Length", "Transfer-Encoding", "Connection", "Date",
                         "Keep-Alive"})
# The clock the backend tap's start is read from, as a C static (a module attribute read
# from the module's dict costs ~130 instructions a call).
_CLOCK: Final = perf_counter
# Header pairs every answer carries, as objects made once: the server finds the bytes of a
# pair it saw before by identity (`wire.serialize`), and compiled, a `tuple[str, str]` value
# would be a new tuple each time it is stored in a list (held as `Any`, it is the same one).
_COMPLETE: Final[Any] = (COMPLETED_HEADER, "true")
_INCOMPLETE: Final[Any] = (COMPLETED_HEADER, "false")
# Content-Type pairs by value (a renderer gives one of a few), bounded.
_CONTENT_TYPES: Final[dict[str, Any]] = {}


def _content_type(value: str) -> Any:
    pair = _CONTENT_TYPES.get(value)
    if pair is None:
        pair = ("Content-Type", value)
        if len(_CONTENT_TYPES) < 64:
            _CONTENT_TYPES[value] = pair
    return pair


_HTML_SIGNATURES = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1",
                    b"<DIV", b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY",
                    b"<BR", b"<P", b"<!--")
_BINARY = frozenset(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12\x13\x14"
                    b"\x15\x16\x17\x18\x19\x1a\x1c\x1d\x1e\x1f")


def compile_request_builder(cfg: EndpointConfig, user_agent: str, *,
                            trusted_proxies: bool = False
                            ) -> Callable[[Request, dict[str, str]], ProxyRequest]:
    """lura's ``NewRequest``: what of the client request reaches the backends.

    ``trusted_proxies``: the root router trusts some proxies, so ``X-Forwarded-For`` is the
    client's address alone, as from KrakenD; otherwise the peer is appended to the list the
    client sent (`tidegate.pipeline.client_ip`).
    """
    names = cfg.input_headers if cfg.input_headers else DEFAULT_INPUT_HEADERS
    all_headers = "*" in names
    wanted = {canonical_header(n).lower(): canonical_header(n) for n in names}
    queries = cfg.input_query_strings or ()
    all_query = "*" in queries
    wanted_query = frozenset(queries)
    may_hold_host = all_headers or "host" in wanted  # else no Host is copied to drop

    def build(req: Request, route_params: dict[str, str]) -> ProxyRequest:
        headers: dict[str, list[str]] = {}
        sent_for: list[str] | None = None  # X-Forwarded-For values, read in the same pass
        for lname, value in req.headers:
            if all_headers:
                headers.setdefault(canonical_header(lname), []).append(value)
            else:
                canon = wanted.get(lname)
                if canon is not None:
                    headers.setdefault(canon, []).append(value)
            if lname == "x-forwarded-for" and not trusted_proxies:
                if sent_for is None:
                    sent_for = [value]
                else:
                    sent_for.append(value)
        if may_hold_host:
            headers.pop("Host", None)
        # `client_ip.forwarded_for`, without a second scan of the headers.
        if sent_for is None:
            headers["X-Forwarded-For"] = [req.client_ip]
        else:
            sent_for.append(req.client_ip)
            headers["X-Forwarded-For"] = [", ".join(sent_for)]
        headers["X-Forwarded-Host"] = [req.host]
        if "User-Agent" in headers:
            headers["X-Forwarded-Via"] = [user_agent]
        else:
            headers["User-Agent"] = [user_agent]
        query: list[tuple[str, str]] = []
        if req.query and (all_query or wanted_query):
            pairs = parse_qsl(req.query, keep_blank_values=True)
            query = pairs if all_query else [(k, v) for k, v in pairs if k in wanted_query]
        params = {param_key(k): v for k, v in route_params.items()} if route_params else {}
        return ProxyRequest(req.method, req.path, params, headers, query, req.body, req.stream)

    return build


def compile_proxy(cfg: EndpointConfig, backends: Sequence[BackendCall],
                  registry: Assembly | None = None) -> Proxy:
    """The endpoint's proxy, as lura's defaultFactory plus krakend-ce's proxy components:
    merge (or the single backend) → endpoint flatmap → static → proxy components."""
    proxy = _unwrapped_proxy(cfg, backends)
    if registry is None:
        return proxy
    return registry.wrap(Level.PROXY, proxy, cfg.extra_config, endpoint=cfg)


def _unwrapped_proxy(cfg: EndpointConfig, backends: Sequence[BackendCall]) -> Proxy:
    """The endpoint's proxy without its components."""
    options = cfg.proxy
    inner: Proxy
    if len(backends) > 1:
        timeout = cfg.timeout * MERGE_SHARE
        if options.sequential:
            reps = sequential_replacements([b.url_pattern for b in cfg.backend],
                                           options.propagated_params, PLACEHOLDER.findall)
            inner = merge_sequential(backends, reps, timeout)
        else:
            inner = merge_parallel(backends, timeout)
        if options.flatmap is not None:
            inner = _with_flatmap(inner, compile_flatmap(options.flatmap))
    else:
        inner = _single(backends[0], cfg.timeout if _needs_timeout(cfg, backends) else None)
    return compile_static(options.static, inner)


def _with_flatmap(inner: Proxy, flatmap: Formatter) -> Proxy:
    """lura's NewFlatmapMiddleware: only a merge without errors is flattened."""

    async def proxy(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        resp, err = await inner(req)
        if err is None and resp is not None:
            resp.data = flatmap(resp.data)
        return resp, err

    return proxy


def _needs_timeout(cfg: EndpointConfig, backends: Sequence[BackendCall]) -> bool:
    """The backend enforces its own deadline; the endpoint's is needed around it only when
    it is shorter, or when backend components run outside that deadline."""
    backend = cfg.backend[0]
    return backend.timeout > cfg.timeout or bool(getattr(
        backends[0], "outside_deadline", bool(backend.extra_config)))


def _direct_backend(cfg: EndpointConfig, backends: Sequence[BackendCall],
                    unwrapped: bool) -> CompiledBackend | None:
    """The one backend whose call the handler awaits itself when the endpoint's proxy is
    nothing but `_single` without a timeout (no static data, no proxy component wrapped
    it: `unwrapped`; one that only records, as the metrics of a lone backend, may leave it
    as it is), if it can be called so."""
    first = backends[0] if len(backends) == 1 else None
    if not isinstance(first, CompiledBackend) or cfg.proxy.static is not None:
        return None
    if not unwrapped:
        return None
    if _needs_timeout(cfg, backends):
        return None
    return first if first.direct() is not None else None


def _check_before(proxy: Proxy, unwrapped: Proxy
                  ) -> Callable[[ProxyRequest], Awaitable[ProxyAnswer] | None] | None:
    """The check of a proxy made of one component that only checks the request before the
    unwrapped proxy (its `check_before`: (check, next), as JSON Schema's stage offers), so
    the handler can run it and then call a lone backend itself: `check(req)` is None when
    the request goes on, else the proxy's answer to await. None for any other proxy."""
    offered = getattr(proxy, "check_before", None)
    if type(offered) is not tuple or len(offered) != 2 or offered[1] is not unwrapped:
        return None
    check: Callable[[ProxyRequest], Awaitable[ProxyAnswer] | None] = offered[0]
    return check


def _single(backend: BackendCall, timeout: float | None) -> Proxy:
    """The proxy of one backend: its answer, or its failure as the error. A compiled backend
    is awaited through `CompiledBackend.once`, without the frame of its `__call__`."""
    once = backend.once() if isinstance(backend, CompiledBackend) else None
    call: BackendProxy = backend if once is None else once
    if timeout is None:
        async def direct(req: ProxyRequest
                         ) -> tuple[ProxyResponse | None, BaseException | None]:
            try:
                return await call(req), None
            except BackendFailure as exc:
                return None, exc

        return direct

    async def proxy(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        try:
            async with asyncio.timeout(timeout):
                return await call(req), None
        except BackendFailure as exc:
            return None, exc
        except TimeoutError:
            return None, BackendTimeout()

    return proxy


def _body_limit(max_payloads: tuple[int | None, int | None], holds: bool) -> int:
    """The bound on this endpoint's request bodies (0: none): the smaller of the service's
    and the endpoint's max_payload; a held body is bounded even without one."""
    limits = [n for n in max_payloads if n]
    if limits:
        return min(limits)
    return HELD_BODY_LIMIT if holds else 0


def compile_endpoint(cfg: EndpointConfig, backends: Sequence[BackendCall], user_agent: str,
                     return_error_msg: bool, *, registry: Assembly | None = None,
                     max_payloads: tuple[int | None, int | None] = (None, None),
                     version_header: tuple[str, str] = VERSION_HEADER,
                     trusted_proxies: bool = False) -> EndpointHandler:
    """The whole endpoint as one coroutine function of (client request, route params)."""
    # One backend, called once, reads a body once: it can take it as it arrives.
    holds = len(backends) != 1 or cfg.backend[0].concurrent_calls > 1
    limit = _body_limit(max_payloads, holds)
    build = compile_request_builder(cfg, user_agent, trusted_proxies=trusted_proxies)
    unwrapped = _unwrapped_proxy(cfg, backends)
    proxy = unwrapped if registry is None else registry.wrap(
        Level.PROXY, unwrapped, cfg.extra_config, endpoint=cfg)
    check = _check_before(proxy, unwrapped)
    alone = _direct_backend(cfg, backends, proxy is unwrapped or check is not None)
    # The backend's call, and its tap (the metrics' backend layer) reported to here around
    # the await (no coroutine of the backend's for it).
    direct = None if alone is None else alone.direct(watched=False)
    watched = alone is not None and alone.watched
    watch_done = None if alone is None else alone.watch_done
    watch_failed = None if alone is None else alone.watch_failed
    watch_trace = None if alone is None else alone.watch_trace
    if direct is None:
        check = None
    output = select_output_encoding(cfg.output_encoding, [b.encoding for b in cfg.backend])
    render = renderer_for(output)
    no_op = output == "no-op"
    negotiates = output == "negotiate"
    memo_slot = _memo_slot(cfg, backends, output, registry)
    version_item: Any = version_header  # one object for every answer (see `_COMPLETE`)
    cache_header = ("Cache-Control", f"public, max-age={int(cfg.cache_ttl)}") \
        if int(cfg.cache_ttl) else None

    async def handle(req: Request, route_params: dict[str, str]) -> Response:
        stream = req.stream
        if stream is not None:
            try:
                if holds:
                    req.body = await stream.read_all(limit)
                    req.stream = None
                elif limit:
                    if stream.length is not None and stream.length > limit:
                        raise BodyTooLarge(limit)
                    stream.limit = limit  # the backend exchange fails past it
            except BodyTooLarge:
                return too_large()
        elif limit and len(req.body) > limit:
            return too_large()
        resp: ProxyResponse | None
        err: BaseException | None
        if direct is not None:  # what `_single` would do, one coroutine frame shorter
            preq = build(req, route_params)
            pending = None if check is None else check(preq)
            if pending is not None:  # the check answered (or reads the body first)
                resp, err = await pending
            elif not watched:
                try:
                    resp, err = await direct(preq), None
                except BackendFailure as failure:
                    resp, err = None, failure
            else:  # as above, reported to the backend's tap as its stage would
                span = None if watch_trace is None else watch_trace(preq)
                started = _CLOCK()
                try:
                    answer = await direct(preq)
                except BaseException as raised:
                    if watch_failed is not None:
                        watch_failed(raised, started)
                    if span is not None:
                        span.failed(raised)
                    if not isinstance(raised, BackendFailure):
                        raise
                    resp, err = None, raised
                else:
                    if watch_done is not None:
                        watch_done(answer, started)
                    if span is not None:
                        span.done(answer)
                    resp, err = answer, None
        else:
            resp, err = await proxy(build(req, route_params))
        if resp is not None and resp.rendered is not None:
            code, fixed, stored = resp.rendered
            return Response(code, list(fixed), stored)
        headers: list[tuple[str, str]] = [version_item]
        completed = _INCOMPLETE
        if resp is not None and resp.data:
            if resp.complete:
                completed = _COMPLETE
                if cache_header is not None:
                    headers.append(cache_header)
            for k, vs in resp.headers.items():
                headers.extend((k, v) for v in vs)
        headers.append(completed)
        if resp is None:
            return error_response(err, headers, return_error_msg)
        if no_op:
            return _render_no_op(resp, headers)
        # Only content negotiation reads the client's Accept (no scan of the headers else).
        status, body, content_type = render(resp.data,
                                            req.header("accept") if negotiates else None)
        headers.append(_content_type(content_type))
        if resp.memo is not None and memo_slot is not None:
            resp.memo.remember(memo_slot, (status or 200, tuple(headers), body))
        return Response(status or 200, headers, body)

    def too_large() -> Response:
        headers = [version_item, _INCOMPLETE]
        return error_response(PayloadTooLarge(), headers, return_error_msg)

    if registry is None:
        return handle
    return registry.wrap(Level.ROUTER, handle, cfg.extra_config, endpoint=cfg,
                         parts=EndpointParts(proxy, build, cfg.timeout))


def _memo_slot(cfg: EndpointConfig, backends: Sequence[BackendCall], output: str,
               registry: Assembly | None) -> object | None:
    """The key under which this endpoint remembers its rendering of a cache hit, or None when
    the same stored answer may render differently: several backends, proxy components that
    see the request, an output chosen by the client's Accept, no-op."""
    if registry is None or len(backends) != 1 or output in ("no-op", "negotiate"):
        return None
    if registry.applied(Level.PROXY, cfg.extra_config):
        return None
    slot: object | None = getattr(backends[0], "memo_slot", None)
    return slot


def error_response(err: BaseException | None, headers: list[tuple[str, str]],
                   return_error_msg: bool) -> Response:
    """lura's endpoint handler without a response: the error's status (500 unless it carries
    one) and, with ``return_error_msg``, its text under its own or a sniffed Content-Type."""
    if isinstance(err, BackendFailure):
        status, body, ctype = err.status, err.body(), err.content_type
    else:
        status, body, ctype = 500, str(err or "").encode(), ""
    if not return_error_msg or err is None:
        return Response(status, headers)
    ctype = ctype or sniff_content_type(body)
    if ctype:
        headers.append(("Content-Type", ctype))
    return Response(status, headers, body)


def sniff_content_type(body: bytes) -> str:
    """The part of Go's ``http.DetectContentType`` an error text can hit (none when empty)."""
    if not body:
        return ""
    head = body[:512].lstrip(b"\t\n\x0c\r ")
    upper = head[:16].upper()
    for sig in _HTML_SIGNATURES:
        if upper.startswith(sig) and len(head) > len(sig) and head[len(sig)] in b" >":
            return "text/html; charset=utf-8"
    if head.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if any(c in _BINARY for c in body[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def _render_no_op(resp: ProxyResponse, headers: list[tuple[str, str]]) -> Response:
    """no-op output: the backend's status, headers and body, untouched."""
    if not resp.data:  # the handler copied nothing: copy the backend's headers here
        for k, vs in resp.headers.items():
            if k in _NOT_PASSED:
                continue
            headers.extend((k, v) for v in vs)
    return Response(resp.status, headers, resp.raw or b"", resp.stream)

