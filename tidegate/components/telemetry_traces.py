"""`telemetry/opentelemetry` traces: krakend-otel's spans, exported over OTLP.

One request that is sampled gives the spans krakend-otel gives, linked parent to child:

* **server** (SERVICE level, around the whole generation): named after the request path, kind
  SERVER, ``krakend.stage=global``; the route pattern (set by the ROUTER stage, or
  ``404 Not Found``), status code and body size when it ends; status OK;
* **proxy** (PROXY level): named after the endpoint pattern (``/users/:id``),
  ``krakend.stage=proxy``, the status code and ``complete`` when it ends, ``error`` on failure;
  when the endpoint's proxy is its one backend's call and nothing else, the backend's stage
  makes it (same times and outcome as that call) and the PROXY level adds no stage;
* **backend** (BACKEND level): named after the backend's url_pattern, ``krakend.stage=backend``
  and the endpoint's route and method;
* **client** (CLIENT level, one HTTP exchange): kind CLIENT, ``krakend.stage=backend-request``,
  ``url.full``, status code, ``response-duration``; the W3C ``traceparent`` of this span goes to
  the backend (unless ``layers.global.disable_propagation``).

Every span carries ``tidegate.generation`` and ``tidegate.config_hash``: the configuration
that served it. An incoming ``traceparent`` is continued (its sampled flag decides, as
krakend-otel's parent-based sampler, unless the rate is 1); otherwise a request is sampled with
probability ``trace_sample_rate``. The decision is taken once, at the server stage: a request
that is not sampled costs a context-variable read per stage and allocates nothing. A sampled
one appends each span as it ends to the request's pieces (`SpanTemplate`: what a stage's spans
share is encoded at compile time, `Attr`: each attribute key), queued as one item when the
server span ends, joined into one bytes object (`tidegate.telemetry.tracing`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from random import random
from typing import Any

from tidegate.components.lone_backend import LoneBackends
from tidegate.components.seam import Build, Component, JsonPath, Lease, Level
from tidegate.messages import (
    BackendProxy,
    ClientRequest,
    ClientResponse,
    EndpointHandler,
    Exchange,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    Request,
    Response,
    ServiceHandler,
    backend_tap_over,
    canonical_header,
    tapped,
)
from tidegate.telemetry.otel_config import (
    NAMESPACE,
    BackendDetail,
    OtelConfig,
    from_service,
    parse_otel,
)
from tidegate.telemetry.otlp_encode import (
    CLIENT,
    INTERNAL,
    SERVER,
    SpanTemplate,
    field,
    name_field,
    span_attributes,
)
from tidegate.telemetry.trace_spans import (
    DURATION,
    OK_STATUS,
    RESPONSE_SIZE,
    ROUTE,
    STATUS_CODE,
    Active,
    ClientSpan,
    Sink,
    active_trace,
    add_trace_headers,
    backend_route,
    body_size,
    clock,
    clock_ns,
    endpoint_route,
    failed,
    incoming,
    outcome,
    outgoing,
    parse_traceparent,
    reported_headers,
    reset_active,
    response_size,
    set_active,
    status_text,
    with_trace_headers,
)
from tidegate.telemetry.tracing import TraceRuntime, provider_settings

# Stacking: outermost of the telemetry places (krakend-ce puts otel outside everything).
ORDER_SERVICE = 55
ORDER_ROUTER = 75
ORDER_PROXY = 55
ORDER_BACKEND = 55
ORDER_CLIENT = 17  # outside the HTTP cache (a hit is an exchange too), inside martian

def _parse(raw: Any, path: JsonPath) -> OtelConfig:
    return parse_otel(raw, path)


def _root(ctx: Build[OtelConfig]) -> OtelConfig | None:
    """The root section (exporters, sampling, skip_paths), with the service's name."""
    return from_service(ctx.service.extra_config, ctx.service.name)


def _own(ctx: Build[OtelConfig]) -> OtelConfig | None:
    """The section of the endpoint or backend itself (its layer overrides), if any."""
    return None if ctx.path == ("extra_config", NAMESPACE) else ctx.config


def _overrides(ctx: Build[OtelConfig], layer: str) -> OtelConfig | None:
    """The endpoint's or backend's own section when it sets this layer: krakend-otel then
    uses it instead of the service's, whole (attributes are not merged)."""
    own = _own(ctx)
    owner = ctx.backend if ctx.level in (Level.BACKEND, Level.CLIENT) else ctx.endpoint
    if own is None or owner is None:
        return None
    raw = owner.extra_config.get(NAMESPACE)
    layers = raw.get("layers") if isinstance(raw, Mapping) else None
    return own if isinstance(layers, Mapping) and layers.get(layer) is not None else None


def _runtime(ctx: Build[OtelConfig], root: OtelConfig) -> Lease[TraceRuntime] | None:
    """The worker's exporters (None: nothing exports traces, or the rate is 0 and nothing
    would be sampled)."""
    settings = provider_settings(root)
    if settings is None or root.trace_sample_rate <= 0.0:
        return None
    return ctx.state(settings.fingerprint, lambda: TraceRuntime(settings), scope="service")


def _tags(ctx: Build[OtelConfig], *attrs: tuple[str, Any]) -> dict[str, Any]:
    """Fixed attributes of a span, then the generation's."""
    out: dict[str, Any] = {k: v for k, v in attrs if k}
    out["tidegate.generation"] = ctx.generation
    out["tidegate.config_hash"] = ctx.resources.config_hash
    return out


def _skip(ctx: Build[OtelConfig], root: OtelConfig) -> bool:
    """krakend-otel's SkipEndpoint: an endpoint listed in skip_paths has no spans."""
    ep = ctx.endpoint
    return ep is not None and (ep.endpoint in root.skip_paths
                               or endpoint_route(ep.endpoint) in root.skip_paths)


# --- server span ---------------------------------------------------------------------------

def build_service(ctx: Build[OtelConfig], nxt: ServiceHandler) -> ServiceHandler:
    """The server span around everything (404s and preflights included)."""
    root = _root(ctx)
    _LONE.clear()  # the endpoints are built: what their backends left is stale
    if root is None:
        return nxt
    lease = _runtime(ctx, root)
    if lease is None:
        return nxt
    rate = root.trace_sample_rate
    layer = root.layers.global_
    extract = not layer.disable_propagation
    record = not layer.disable_traces
    skip = frozenset(root.skip_paths)
    report = layer.report_headers
    skip_headers = frozenset(canonical_header(h) for h in layer.skip_headers)
    template = SpanTemplate("", SERVER, _tags(ctx, ("krakend.stage", "global"),
                                                 *layer.traces_static_attributes))

    routes: dict[str, str] = {}

    def route_of(pattern: str) -> str:
        """krakend-otel's ``http.route`` of the endpoint `pattern` that answered ("" for
        none, or one in skip_paths)."""
        if not pattern:
            return ""
        route = routes.get(pattern)
        if route is None:
            route = endpoint_route(pattern)
            if pattern in skip or route in skip:
                route = ""
            if len(routes) < 4096:  # one per endpoint
                routes[pattern] = route
        return route

    def traced(request: Request) -> Awaitable[Response]:
        # A plain function: a request that is not sampled gets the next stage's awaitable,
        # no coroutine frame of this stage around it, and nothing allocated.
        if skip and request.path in skip:
            return nxt(request)
        parent = None
        if extract:
            for k, v in request.headers:
                if k == "traceparent":
                    parent = parse_traceparent(v)
                    break
        if parent is None:
            if rate < 1.0 and random() >= rate:
                return nxt(request)
            sink = Sink(lease.value.emit, record)
            trace_id, parent_id, state = sink.ids[:16], b"", ""
        else:
            trace_id, parent_int, sampled = parent
            if rate < 1.0 and not sampled:  # krakend-otel's parent-based sampler
                return nxt(request)
            sink = Sink(lease.value.emit, record)
            parent_id = parent_int.to_bytes(8, "big")
            state = ",".join(request.header_values("tracestate"))
        state_field = field(3, state.encode()) if state else b""
        if not record:  # no server span; the proxy and backend spans still are
            return unrecorded(request, Active(trace_id, parent_id, state, state_field, sink))
        return serve(request, sink, trace_id, parent_id, state, state_field)

    async def unrecorded(request: Request, active: Active) -> Response:
        token = set_active(active)
        try:
            return await nxt(request)
        finally:
            reset_active(token)

    async def serve(request: Request, sink: Sink, trace_id: bytes, parent_id: bytes,
                    state: str, state_field: bytes) -> Response:
        span_id = sink.new_id()
        active = Active(trace_id, span_id, state, state_field, sink)
        links = state_field + b"\x22\x08" + parent_id if parent_id else state_field
        start = clock_ns()
        token = set_active(active)
        try:
            response = await nxt(request)
        except BaseException as exc:
            end = clock_ns()
            sink.add(template, active.trace, span_id, links, start, end, incoming(request),
                     failed(exc, end), name_field(request.path))
            sink.close()
            raise
        finally:
            reset_active(token)
        code = response.status
        attrs = incoming(request)
        if report:
            attrs.append(span_attributes(
                reported_headers("http.request.header.", request.headers, skip_headers)))
        attrs.append(ROUTE.text_memo(route_of(request.route) or status_text(code)))
        attrs.append(STATUS_CODE.integer(code))
        attrs.append(RESPONSE_SIZE.integer(body_size(response)))
        if active.static:
            attrs.append(span_attributes(dict(active.static)))
        if report:
            attrs.append(span_attributes(
                reported_headers("http.response.header.", response.headers, skip_headers)))
        sink.add(template, active.trace, span_id, links, start, clock_ns(), attrs, OK_STATUS,
                 name_field(request.path))
        sink.close()
        return response

    return traced


# --- router: the matched route ---------------------------------------------------------------

def build_router(ctx: Build[OtelConfig], nxt: EndpointHandler) -> EndpointHandler:
    """krakend-otel's gin endpoint wrapper, for an endpoint whose own section sets
    ``layers.global.traces_static_attributes``: gives them to the server span. (The matched
    route the server span reads from the request, where the generation notes it.)"""
    root = _root(ctx)
    if root is None or ctx.endpoint is None or _runtime(ctx, root) is None or _skip(ctx, root):
        return nxt
    own = _overrides(ctx, "global")
    static = own.layers.global_.traces_static_attributes if own is not None else ()
    if not static:
        return nxt

    def handler(request: Request, params: dict[str, str]) -> Awaitable[Response]:
        active = active_trace()
        if active is not None:
            active.static = static
        return nxt(request, params)

    return handler


# --- proxy and backend spans -------------------------------------------------------------------

def build_proxy(ctx: Build[OtelConfig], nxt: Proxy) -> Proxy:
    """The proxy span: one per endpoint call, parent of its backends' spans."""
    root = _root(ctx)
    ep = ctx.endpoint
    if root is None or ep is None or _skip(ctx, root):
        return nxt
    lease = _runtime(ctx, root)
    layer = (_overrides(ctx, "proxy") or root).layers.proxy
    if lease is None or layer.disable_traces:
        return nxt
    name = endpoint_route(ep.endpoint)
    template = SpanTemplate(name, INTERNAL, _tags(
        ctx, ("http.request.method", ep.method), ("http.route", name),
        *layer.traces_static_attributes, ("krakend.stage", "proxy")))
    report = layer.report_headers
    skip_headers = frozenset(canonical_header(h) for h in layer.skip_headers)
    # the proxy span covers nothing but its one backend's stage, above the backend span
    fold = None if report else _LONE.take(ctx, ep, own=(NAMESPACE,),
                                          proxy_order=ORDER_PROXY,
                                          backend_order=ORDER_BACKEND)
    if fold is not None:
        fold.proxy = template  # the backend's stage makes this span too: no stage here
        return nxt

    def proxy(req: ProxyRequest
              ) -> Awaitable[tuple[ProxyResponse | None, BaseException | None]]:
        active = active_trace()
        return nxt(req) if active is None else traced_proxy(req, active)

    async def traced_proxy(req: ProxyRequest, active: Active
                           ) -> tuple[ProxyResponse | None, BaseException | None]:
        span_id = active.sink.new_id()
        start = clock_ns()
        token = set_active(active.child(span_id))
        try:
            resp, err = await nxt(req)
        except BaseException as exc:
            active.sink.add(template, active.trace, span_id, active.links, start, clock_ns(),
                            outcome(None, False, exc))
            raise
        finally:
            reset_active(token)
        attrs = outcome(resp.status if resp is not None else None,
                         resp is not None and resp.complete, err)
        if report:
            reported = reported_headers("http.request.header.", req.headers, skip_headers)
            if resp is not None and err is None:
                reported.update(reported_headers("http.response.header.", resp.headers,
                                                 skip_headers))
            attrs.append(span_attributes(reported))
        active.sink.add(template, active.trace, span_id, active.links, start, clock_ns(), attrs)
        return resp, err

    return proxy


def _backend_spans(ctx: Build[OtelConfig]
                   ) -> tuple[OtelConfig, BackendDetail, str, tuple[tuple[str, Any], ...]] | None:
    """What a backend's two spans (backend stage, HTTP exchange) share: the root section, the
    backend's trace detail, the span name and its first attributes. None where no span is
    made (no root section, a skipped endpoint, nothing exports traces)."""
    root = _root(ctx)
    ep, be = ctx.endpoint, ctx.backend
    if root is None or ep is None or be is None or _skip(ctx, root):
        return None
    if _runtime(ctx, root) is None:
        return None
    detail = (_overrides(ctx, "backend") or root).layers.backend_traces
    name = backend_route(be.url_pattern)
    attrs = (("http.request.method", be.method), ("http.route", name),
             ("krakend.endpoint.route", endpoint_route(ep.endpoint)),
             ("krakend.endpoint.method", ep.method))
    return root, detail, name, attrs


def build_backend(ctx: Build[OtelConfig], nxt: BackendProxy) -> BackendProxy:
    """The backend span: one per backend call (a concurrent call makes one each)."""
    spans = _backend_spans(ctx)
    if spans is None or spans[1].disable_stage:
        return nxt
    _, detail, name, attrs = spans
    template = SpanTemplate(name, INTERNAL, _tags(
        ctx, *attrs, *detail.static_attributes, ("krakend.stage", "backend")))
    report = detail.report_headers
    skip_headers = frozenset(canonical_header(h) for h in detail.skip_headers)

    fold = Fold()
    if ctx.backend is not None:
        _LONE.leave(ctx.backend, fold)
    return TracedBackend(nxt, BackendStage(template, report, skip_headers, fold))


class BackendStage:
    """What a backend's spans share (their template, the reported headers, the proxy span
    folded into them), and the beginning of one call's spans (`BackendSpans`)."""

    __slots__ = ("fold", "report", "skip", "template")

    def __init__(self, template: SpanTemplate, report: bool, skip: frozenset[str],
                 fold: Fold) -> None:
        self.template = template
        self.report = report
        self.skip = skip
        self.fold = fold

    def begin(self, req: ProxyRequest) -> BackendSpans | None:
        """The spans of a call of `req` when the request is sampled (`BackendTrace`)."""
        active = active_trace()
        return None if active is None else BackendSpans(self, active, req)


class BackendSpans:
    """One sampled call's backend span, and its endpoint's proxy span when the backend's
    stage makes it (`Fold`): begun as the call starts, what the call records (its exchange's
    client span) nests under the backend span until `done` or `failed` ends them."""

    __slots__ = ("active", "links", "proxy", "proxy_id", "req", "span_id", "stage", "start",
                 "token")

    def __init__(self, stage: BackendStage, active: Active, req: ProxyRequest) -> None:
        sink = active.sink
        self.stage = stage
        self.active = active
        self.req = req
        proxy = self.proxy = stage.fold.proxy
        self.links = active.links  # the backend span's parent: the proxy span when made here
        self.proxy_id = b""
        if proxy is not None:
            self.proxy_id = sink.new_id()
            self.links = active.state_field + b"\x22\x08" + self.proxy_id
        self.span_id = span_id = sink.new_id()
        self.start = clock_ns()
        self.token = set_active(active.child(span_id))

    def done(self, resp: ProxyResponse) -> None:
        reset_active(self.token)
        end = clock_ns()
        attrs = outcome(resp.status, resp.complete, None)
        stage = self.stage
        own = attrs
        if stage.report:
            reported = reported_headers("http.request.header.", self.req.headers, stage.skip)
            reported.update(reported_headers("http.response.header.", resp.headers,
                                             stage.skip))
            own = [*attrs, span_attributes(reported)]
        self._add(end, own, attrs)

    def failed(self, error: BaseException) -> None:
        reset_active(self.token)
        attrs = outcome(None, False, error)
        self._add(clock_ns(), attrs, attrs)

    def _add(self, end: int, own: list[bytes], proxy_attrs: list[bytes]) -> None:
        active = self.active
        sink = active.sink
        sink.add(self.stage.template, active.trace, self.span_id, self.links, self.start, end,
                 own)
        if self.proxy is not None:  # the proxy's answer is this one
            sink.add(self.proxy, active.trace, self.proxy_id, active.links, self.start, end,
                     proxy_attrs)


class TracedBackend:
    """The BACKEND stage of the traces. It only watches the call, so it offers its spans'
    beginning as a `BackendTap` (with the metrics' tap below it, if any): a compiled backend
    whose BACKEND stages are these begins and ends the spans itself around its own call, no
    coroutine frame per call. Called as a stage, a request that is not sampled gets the next
    stage's awaitable, and a sampled one a coroutine that begins its spans in its own task."""

    __slots__ = ("backend_tap", "nxt", "stage")

    def __init__(self, nxt: BackendProxy, stage: BackendStage) -> None:
        self.nxt = nxt
        self.stage = stage
        self.backend_tap = backend_tap_over(nxt, trace=stage.begin)

    def __call__(self, req: ProxyRequest) -> Awaitable[ProxyResponse]:
        return self.nxt(req) if active_trace() is None else self._traced(req)

    async def _traced(self, req: ProxyRequest) -> ProxyResponse:
        spans = self.stage.begin(req)
        if spans is None:
            return await self.nxt(req)
        try:
            resp = await self.nxt(req)
        except BaseException as exc:
            spans.failed(exc)
            raise
        spans.done(resp)
        return resp


class Fold:
    """The proxy span's template when the endpoint's proxy is its one backend's call and
    nothing else (`LoneBackends.take`): the backend's stage then makes that span too, with the
    same outcome, and the PROXY level adds no stage (the endpoint may await its backend
    directly, decision 67)."""

    __slots__ = ("proxy",)

    def __init__(self) -> None:
        self.proxy: SpanTemplate | None = None


# Backends whose stage may make their endpoint's proxy span, until its PROXY level is built.
_LONE: LoneBackends[Fold] = LoneBackends()


# --- the HTTP exchange: client span and propagation ----------------------------------------

def build_client(ctx: Build[OtelConfig], nxt: Exchange) -> Exchange:
    """The client span of one HTTP exchange, and the ``traceparent`` the backend receives."""
    shared = _backend_spans(ctx)
    if shared is None:
        return nxt
    root, detail, name, attrs = shared
    spans = detail.round_trip or detail.read_payload
    inject = not root.layers.global_.disable_propagation
    if not (spans or inject):
        return nxt
    template = SpanTemplate(name, CLIENT, _tags(
        ctx, *attrs, ("krakend.stage", "backend-request"), *detail.static_attributes))
    report = detail.report_headers
    skip_headers = frozenset(canonical_header(h) for h in detail.skip_headers)

    def exchange(creq: ClientRequest) -> Awaitable[ClientResponse]:
        active = active_trace()
        return nxt(creq) if active is None else traced_exchange(creq, active)

    async def traced_exchange(creq: ClientRequest, active: Active) -> ClientResponse:
        span_id = active.sink.new_id() if spans else active.span_id
        if inject and span_id:
            creq = with_trace_headers(creq, active.trace_id, span_id, active.state)
        if not spans:
            return await nxt(creq)
        start = clock_ns()
        started = clock()
        try:
            resp = await nxt(creq)
        except BaseException as exc:
            end = clock_ns()
            active.sink.add(template, active.trace, span_id, active.links, start, end,
                            outgoing(creq), failed(exc, end))
            raise
        attrs = outgoing(creq)
        if report:
            reported = reported_headers("http.request.header.", creq.headers, skip_headers)
            reported.update(reported_headers("http.response.header.", resp.headers, skip_headers))
            attrs.append(span_attributes(reported))
        attrs.append(STATUS_CODE.integer(resp.status))
        attrs.append(RESPONSE_SIZE.integer(response_size(resp)))
        attrs.append(DURATION.double(clock() - started))
        active.sink.add(template, active.trace, span_id, active.links, start, clock_ns(), attrs,
                        OK_STATUS)
        return resp

    def trace(base: str, path: str, req: ProxyRequest, headers: list[tuple[str, str]]
              ) -> ClientSpan | None:
        # The backend's inline form of `traced_exchange` (its tap): the same headers and span.
        active = active_trace()
        if active is None:
            return None
        span_id = active.sink.new_id() if spans else active.span_id
        if inject and span_id:
            add_trace_headers(headers, active.trace_id, span_id, active.state)
        if not spans:
            return None
        return ClientSpan(template, active, span_id, base + path, req.method, headers,
                          req.body if req.stream is None else None, report, skip_headers)

    # Where nothing else is below, the backend calls `trace` inline instead of `exchange`.
    return tapped(exchange, nxt, trace=trace)


COMPONENTS: list[Component[Any]] = [
    Component(NAMESPACE, frozenset({Level.SERVICE}), build_service, parse=_parse,
              order=ORDER_SERVICE),
    Component(NAMESPACE, frozenset({Level.ROUTER}), build_router, parse=_parse,
              order=ORDER_ROUTER, service_wide=True),
    Component(NAMESPACE, frozenset({Level.PROXY}), build_proxy, parse=_parse,
              order=ORDER_PROXY, service_wide=True),
    Component(NAMESPACE, frozenset({Level.BACKEND}), build_backend, parse=_parse,
              order=ORDER_BACKEND, service_wide=True, bounded=True),
    Component(NAMESPACE, frozenset({Level.CLIENT}), build_client, parse=_parse,
              order=ORDER_CLIENT, service_wide=True, bounded=True),
]
