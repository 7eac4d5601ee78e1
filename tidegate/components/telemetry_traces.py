"""`telemetry/opentelemetry` traces: krakend-otel's spans, with the official OpenTelemetry SDK.

One request that is sampled gives the spans krakend-otel gives, linked parent to child:

* **server** (SERVICE level, around the whole generation): named after the request path, kind
  SERVER, ``krakend.stage=global``; the route pattern (set by the ROUTER stage, or
  ``404 Not Found``), status code and body size when it ends; status OK;
* **proxy** (PROXY level): named after the endpoint pattern (``/users/:id``),
  ``krakend.stage=proxy``, the status code and ``complete`` when it ends, ``error`` on failure;
* **backend** (BACKEND level): named after the backend's url_pattern, ``krakend.stage=backend``
  and the endpoint's route and method;
* **client** (CLIENT level, one HTTP exchange): kind CLIENT, ``krakend.stage=backend-request``,
  ``url.full``, status code, ``response-duration``; the W3C ``traceparent`` of this span goes to
  the backend (unless ``layers.global.disable_propagation``).

Every span carries ``tidegate.generation`` and ``tidegate.config_hash``: the configuration
that served it. An incoming ``traceparent`` is continued (its sampled flag decides, as
krakend-otel's parent-based sampler, unless the rate is 1); otherwise a request is sampled with
probability ``trace_sample_rate``. The decision is taken once, before any SDK call: a request
that is not sampled costs a context-variable read per stage and nothing else.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from http import HTTPStatus
from random import random
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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
    canonical_header,
)
from tidegate.telemetry.otel_config import (
    NAMESPACE,
    Attributes,
    OtelConfig,
    from_service,
    parse_otel,
)
from tidegate.telemetry.tracing import TraceRuntime, provider_settings

# Stacking: outermost of the telemetry places (krakend-ce puts otel outside everything).
ORDER_SERVICE = 55
ORDER_ROUTER = 75
ORDER_PROXY = 55
ORDER_BACKEND = 55
ORDER_CLIENT = 17  # outside the HTTP cache (a hit is an exchange too), inside martian

_PROPAGATOR = TraceContextTextMapPropagator()
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


class Active:
    """The span a request's next stages nest under (None: not sampled, no stage records)."""

    __slots__ = ("context", "route", "span", "static")

    def __init__(self, span: Span | None, context: Context) -> None:
        self.span = span
        self.context = context
        self.route = ""
        self.static: Attributes = ()


_ACTIVE: ContextVar[Active | None] = ContextVar("tidegate_trace", default=None)


def endpoint_route(endpoint: str) -> str:
    """The endpoint as lura's gin router names it (``/users/{id}`` → ``/users/:id``)."""
    return _PLACEHOLDER.sub(lambda m: ":" + m.group(1), endpoint)


def backend_route(url_pattern: str) -> str:
    """krakend-otel's NormalizeURLPattern of lura's ``{{.Id}}``: ``/u/{id}`` → ``/u/:id``."""
    return _PLACEHOLDER.sub(lambda m: ":" + m.group(1).lower(), url_pattern)


def _parse(raw: Any, path: JsonPath) -> OtelConfig:
    return parse_otel(raw, path)


def _root(ctx: Build[OtelConfig]) -> OtelConfig | None:
    """The root section (exporters, sampling, skip_paths), with the service's name."""
    return from_service(ctx.service.extra_config, ctx.service.name)


def _own(ctx: Build[OtelConfig]) -> OtelConfig | None:
    """The section of the endpoint or backend itself (its layer overrides), if any."""
    return None if ctx.path == ("extra_config", NAMESPACE) else ctx.config


def _runtime(ctx: Build[OtelConfig], root: OtelConfig) -> Lease[TraceRuntime] | None:
    """The worker's provider for these exporters (None: nothing exports traces, or the rate
    is 0 and nothing would be sampled)."""
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


def _headers(prefix: str, headers: Any, skip: frozenset[str]) -> dict[str, list[str]]:
    """``http.request.header.x-y`` attributes (skip_headers by canonical name)."""
    out: dict[str, list[str]] = {}
    items = headers.items() if isinstance(headers, dict) else (
        (k, [v]) for k, v in headers)
    for k, vs in items:
        name = canonical_header(k)
        if name not in skip:
            out.setdefault(prefix + name.lower(), []).extend(vs)
    return out


# --- server span ---------------------------------------------------------------------------

def build_service(ctx: Build[OtelConfig], nxt: ServiceHandler) -> ServiceHandler:
    """The server span around everything (404s and preflights included)."""
    root = _root(ctx)
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
    fixed = _tags(ctx, ("krakend.stage", "global"), *layer.traces_static_attributes)

    async def traced(request: Request) -> Response:
        if request.path in skip:
            return await nxt(request)
        parent: Context | None = None
        if extract:
            header = request.header("traceparent")
            if header is not None:
                parent = _continued(header, request.header_values("tracestate"))
        if parent is None:
            if rate < 1.0 and random() >= rate:
                return await nxt(request)
            parent = Context()
        elif rate < 1.0 and not get_current_span(parent).get_span_context().trace_flags.sampled:
            return await nxt(request)
        if not record:  # no server span; the proxy and backend spans still are
            token = _ACTIVE.set(Active(None, parent))
            try:
                return await nxt(request)
            finally:
                _ACTIVE.reset(token)
        return await _serve(request, parent)

    async def _serve(request: Request, parent: Context) -> Response:
        attrs = dict(fixed)
        attrs.update(_incoming(request))
        if report:
            attrs.update(_headers("http.request.header.", request.headers, skip_headers))
        span = lease.value.tracer.start_span(request.path, context=parent,
                                             kind=SpanKind.SERVER, attributes=attrs)
        active = Active(span, set_span_in_context(span, parent))
        token = _ACTIVE.set(active)
        try:
            response = await nxt(request)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.end()
            raise
        finally:
            _ACTIVE.reset(token)
        status = response.status
        end: dict[str, Any] = {
            "http.route": active.route or _status_text(status),
            "http.response.status_code": status,
            "http.response.body.size": _body_size(response)}
        end.update(active.static)
        if report:
            end.update(_headers("http.response.header.", response.headers, skip_headers))
        span.set_attributes(end)
        span.set_status(Status(StatusCode.OK))
        span.end()
        return response

    return traced


def _continued(header: str, state: list[str]) -> Context | None:
    """The context of an incoming ``traceparent`` (None when it does not parse)."""
    carrier = {"traceparent": header}
    if state:
        carrier["tracestate"] = ",".join(state)
    parent = _PROPAGATOR.extract(carrier)
    return parent if get_current_span(parent).get_span_context().is_valid else None


def _incoming(request: Request) -> dict[str, Any]:
    """krakend-otel's TraceIncomingRequestAttrs."""
    attrs: dict[str, Any] = {"url.full": request.raw_target, "server.address": request.host,
                             "http.request.method": request.method}
    length = request.header("content-length")
    if length is not None and length.isdigit():
        attrs["http.request.body.size"] = int(length)
    elif request.stream is None:
        attrs["http.request.body.size"] = len(request.body)
    agent = request.header("user-agent")
    if agent:
        attrs["user_agent.original"] = agent
    if request.client_ip:
        attrs["client.address"] = request.client_ip
    return attrs


def _status_text(status: int) -> str:
    """Go's ``strconv.Itoa(code) + " " + http.StatusText(code)`` (route of an unmatched path)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


def _body_size(response: Response) -> int:
    if response.stream is None:
        return len(response.body)
    length = response.stream.length
    return length if length is not None else -1


# --- router: the matched route ---------------------------------------------------------------

def build_router(ctx: Build[OtelConfig], nxt: EndpointHandler) -> EndpointHandler:
    """krakend-otel's gin endpoint wrapper: tells the server span which route matched (and
    the endpoint's own ``layers.global.traces_static_attributes``)."""
    root = _root(ctx)
    if root is None or ctx.endpoint is None or _runtime(ctx, root) is None or _skip(ctx, root):
        return nxt
    route = endpoint_route(ctx.endpoint.endpoint)
    own = _overrides(ctx, "global")
    static = own.layers.global_.traces_static_attributes if own is not None else ()

    async def handler(request: Request, params: dict[str, str]) -> Response:
        active = _ACTIVE.get()
        if active is not None:
            active.route = route
            active.static = static
        return await nxt(request, params)

    return handler


# --- proxy and backend spans -------------------------------------------------------------------

def _finish(span: Span, status: int | None, complete: bool, error: BaseException | None
            ) -> None:
    """krakend-otel's middlewareTracer.end."""
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            span.set_attribute("canceled", True)
        else:
            span.set_attribute("error", str(error))
        span.set_attribute("http.response.status_code", 500)
    elif status is not None:
        span.set_attribute("http.response.status_code", status)
    span.set_attribute("complete", complete)
    span.end()


def build_proxy(ctx: Build[OtelConfig], nxt: Proxy) -> Proxy:
    """The proxy span: one per endpoint call, parent of its backends' spans."""
    root = _root(ctx)
    ep = ctx.endpoint
    if root is None or ep is None or _skip(ctx, root):
        return nxt
    lease = _runtime(ctx, root)
    own = _overrides(ctx, "proxy")
    layer = (own or root).layers.proxy
    if lease is None or layer.disable_traces:
        return nxt
    name = endpoint_route(ep.endpoint)
    attrs = _tags(ctx, ("http.request.method", ep.method), ("http.route", name),
                  *layer.traces_static_attributes, ("krakend.stage", "proxy"))
    report = layer.report_headers
    skip_headers = frozenset(canonical_header(h) for h in layer.skip_headers)

    async def proxy(req: ProxyRequest
                    ) -> tuple[ProxyResponse | None, BaseException | None]:
        active = _ACTIVE.get()
        if active is None:
            return await nxt(req)
        span = lease.value.tracer.start_span(name, context=active.context, attributes=attrs)
        if report:
            span.set_attributes(_headers("http.request.header.", req.headers, skip_headers))
        token = _ACTIVE.set(Active(span, set_span_in_context(span, active.context)))
        try:
            resp, err = await nxt(req)
        except BaseException as exc:
            _finish(span, None, False, exc)
            raise
        finally:
            _ACTIVE.reset(token)
        if report and resp is not None and err is None:
            span.set_attributes(_headers("http.response.header.", resp.headers, skip_headers))
        _finish(span, resp.status if resp is not None else None,
                resp is not None and resp.complete, err)
        return resp, err

    return proxy


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


def build_backend(ctx: Build[OtelConfig], nxt: BackendProxy) -> BackendProxy:
    """The backend span: one per backend call (a concurrent call makes one each)."""
    root = _root(ctx)
    ep, be = ctx.endpoint, ctx.backend
    if root is None or ep is None or be is None or _skip(ctx, root):
        return nxt
    lease = _runtime(ctx, root)
    detail = (_overrides(ctx, "backend") or root).layers.backend_traces
    if lease is None or detail.disable_stage:
        return nxt
    name = backend_route(be.url_pattern)
    attrs = _tags(ctx, ("http.request.method", be.method), ("http.route", name),
                  ("krakend.endpoint.route", endpoint_route(ep.endpoint)),
                  ("krakend.endpoint.method", ep.method),
                  *detail.static_attributes, ("krakend.stage", "backend"))
    report = detail.report_headers
    skip_headers = frozenset(canonical_header(h) for h in detail.skip_headers)

    async def backend(req: ProxyRequest) -> ProxyResponse:
        active = _ACTIVE.get()
        if active is None:
            return await nxt(req)
        span = lease.value.tracer.start_span(name, context=active.context, attributes=attrs)
        if report:
            span.set_attributes(_headers("http.request.header.", req.headers, skip_headers))
        token = _ACTIVE.set(Active(span, set_span_in_context(span, active.context)))
        try:
            resp = await nxt(req)
        except BaseException as exc:
            _finish(span, None, False, exc)
            raise
        finally:
            _ACTIVE.reset(token)
        if report:
            span.set_attributes(_headers("http.response.header.", resp.headers, skip_headers))
        _finish(span, resp.status, resp.complete, None)
        return resp

    return backend


# --- the HTTP exchange: client span and propagation ----------------------------------------

def build_client(ctx: Build[OtelConfig], nxt: Exchange) -> Exchange:
    """The client span of one HTTP exchange, and the ``traceparent`` the backend receives."""
    root = _root(ctx)
    ep, be = ctx.endpoint, ctx.backend
    if root is None or ep is None or be is None or _skip(ctx, root):
        return nxt
    lease = _runtime(ctx, root)
    detail = (_overrides(ctx, "backend") or root).layers.backend_traces
    spans = detail.round_trip or detail.read_payload
    inject = not root.layers.global_.disable_propagation
    if lease is None or not (spans or inject):
        return nxt
    name = backend_route(be.url_pattern)
    fixed = _tags(ctx, ("http.request.method", be.method), ("http.route", name),
                  ("krakend.endpoint.route", endpoint_route(ep.endpoint)),
                  ("krakend.endpoint.method", ep.method),
                  ("krakend.stage", "backend-request"), *detail.static_attributes)
    report = detail.report_headers
    skip_headers = frozenset(canonical_header(h) for h in detail.skip_headers)

    async def exchange(creq: ClientRequest) -> ClientResponse:
        active = _ACTIVE.get()
        if active is None:
            return await nxt(creq)
        span: Span | None = None
        context = active.context
        if spans:
            attrs = dict(fixed)
            attrs.update(_outgoing(creq))
            if report:
                attrs.update(_headers("http.request.header.", creq.headers, skip_headers))
            span = lease.value.tracer.start_span(name, context=context, kind=SpanKind.CLIENT,
                                                 attributes=attrs)
            context = set_span_in_context(span, context)
        if inject:
            creq = _with_trace_headers(creq, context)
        if span is None:
            return await nxt(creq)
        started = time.perf_counter()
        try:
            resp = await nxt(creq)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.end()
            raise
        end: dict[str, Any] = {"http.response.status_code": resp.status,
                               "http.response.body.size": _response_size(resp),
                               "response-duration": time.perf_counter() - started}
        if report:
            end.update(_headers("http.response.header.", resp.headers, skip_headers))
        span.set_attributes(end)
        span.set_status(Status(StatusCode.OK))
        span.end()
        return resp

    return exchange


def _with_trace_headers(creq: ClientRequest, context: Context) -> ClientRequest:
    """The request with this trace's ``Traceparent`` (and ``Tracestate``) instead of any the
    client sent."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    if not carrier:
        return creq
    headers = [(k, v) for k, v in creq.headers
               if k.lower() not in ("traceparent", "tracestate")]
    headers.extend((canonical_header(k), v) for k, v in carrier.items())
    return replace(creq, headers=headers)


def _outgoing(creq: ClientRequest) -> dict[str, Any]:
    """krakend-otel's TraceRequestAttrs of the backend request."""
    host = creq.url.split("://", 1)[-1].split("/", 1)[0]
    attrs: dict[str, Any] = {"url.full": creq.url, "server.address": host,
                             "http.request.method": creq.method}
    if creq.stream is None:
        attrs["http.request.body.size"] = len(creq.body)
    for k, v in creq.headers:
        if k.lower() == "user-agent":
            attrs["user_agent.original"] = v
            break
    return attrs


def _response_size(resp: ClientResponse) -> int:
    length = resp.header("content-length")
    if length is not None and length.isdigit():
        return int(length)
    return len(resp.body) if resp.stream is None else -1


COMPONENTS: list[Component[Any]] = [
    Component(NAMESPACE, frozenset({Level.SERVICE}), build_service, parse=_parse,
              order=ORDER_SERVICE),
    Component(NAMESPACE, frozenset({Level.ROUTER}), build_router, parse=_parse,
              order=ORDER_ROUTER, service_wide=True),
    Component(NAMESPACE, frozenset({Level.PROXY}), build_proxy, parse=_parse,
              order=ORDER_PROXY, service_wide=True),
    Component(NAMESPACE, frozenset({Level.BACKEND}), build_backend, parse=_parse,
              order=ORDER_BACKEND, service_wide=True),
    Component(NAMESPACE, frozenset({Level.CLIENT}), build_client, parse=_parse,
              order=ORDER_CLIENT, service_wide=True),
]
