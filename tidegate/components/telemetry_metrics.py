"""The metrics recorder as seam components: krakend-otel's layers, named as it names them.

* SERVICE (krakend-otel's global layer, outermost): ``http.server.duration`` and
  ``http.server.response.size`` by method, scheme, route and status. The route is the endpoint's
  pattern, set on the request by the ROUTER stage below; a request no endpoint took is labelled
  ``"404 Not Found"`` (status and text), as krakend-otel does. `skip_paths` are not recorded.
  No stage around the request: this level puts a `ServerMeter` on the request and the
  protocol records the answer into it (it knows the start, the answer, and a failure).
* ROUTER: only tags the request with its endpoint's precomputed series.
* PROXY: ``krakend.proxy.duration`` by method, route, error, canceled, complete. When the
  endpoint's proxy is its one backend's call and nothing else, the backend's stage records
  it with its own (same call, same outcome): no PROXY stage.
* BACKEND: ``krakend.backend.duration``, with the backend's method and URL pattern and the
  endpoint's route and method.
* CLIENT (the round trip, `layers.backend.metrics.round_trip`): ``http.client.duration``,
  ``http.client.response.size`` and the ``http.client.request.*.count`` counters. This stage
  is an `ExchangeTap`: when nothing else changes the exchange, the backend reports to it
  around its own send (no stage frame, no ClientRequest/ClientResponse per call).

Every label tuple but the status is built at compile time; per request a layer appends the
value to its series' pending observations (`tidegate.telemetry.recorder.Histogram`), in
compiled code.
``telemetry/metrics`` and ``telemetry/influx`` feed the same series: one layer is recorded
once whichever asks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from time import perf_counter
from typing import Any, Final

from tidegate.components.lone_backend import LoneBackends
from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.messages import (
    BackendFailure,
    BackendProxy,
    BackendTap,
    BackendTimeout,
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
    tapped,
)
from tidegate.telemetry.metrics_config import (
    INFLUX,
    METRICS,
    MetricsPlan,
    parse_influx,
    parse_legacy,
    plan_for,
)
from tidegate.telemetry.otel_config import NAMESPACE as OTEL
from tidegate.telemetry.otel_config import Attributes, Layers, parse_layers, parse_otel
from tidegate.telemetry.recorder import Family, Histogram, Series, ServerMeter, table
from tidegate.upstream.client import UpstreamTimeout

SERVER_LABELS = ("http.request.method", "url.scheme", "http.route",
                 "http.response.status_code")
STAGE_FLAGS = ("error", "canceled", "complete")
# Module constants the compiled request path reads are Final: mypyc then inlines them instead of
# looking each up in the module's dict on every request.
STATUS_SLOTS: Final = 600  # status codes whose series are found by index
# The clock, as a C static: a module attribute read from the module's dict costs ~130
# instructions a call, a Final one nothing.
_CLOCK: Final = perf_counter
VALID_METHODS = frozenset(("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST",
                           "PUT", "TRACE"))


class EndpointSeries(ServerMeter):
    """The server series of one endpoint (or of unrouted requests with one method and
    status), by status code: what the protocol records this endpoint's answers into."""

    __slots__ = ("by_status", "duration", "extra", "prefix", "size", "skip")

    def __init__(self, duration: Family, size: Family, prefix: tuple[str, ...],
                 skip: frozenset[str] = frozenset()) -> None:
        self.duration = duration
        self.size = size
        self.prefix = prefix  # static attribute values, method, scheme, route
        self.skip = skip  # request paths a failed request is not recorded for
        # (duration, size) series by status code, made on first use: a list for the codes
        # HTTP defines (an index, not a hash), a dict for any other.
        self.by_status: list[tuple[Histogram, Histogram] | None] = [None] * STATUS_SLOTS
        self.extra: dict[int, tuple[Histogram, Histogram]] = {}

    def pair(self, status: int) -> tuple[Histogram, Histogram]:
        """The (duration, size) series of `status` (created on first use)."""
        if 0 <= status < STATUS_SLOTS:
            found = self.by_status[status]
            if found is not None:
                return found
        else:
            other = self.extra.get(status)
            if other is not None:
                return other
        labels = (*self.prefix, str(status))
        pair = (self.duration.hist(labels), self.size.hist(labels))
        if 0 <= status < STATUS_SLOTS:
            self.by_status[status] = pair
        else:
            self.extra[status] = pair
        return pair

    def record(self, request: Request, response: Response, started: float) -> None:
        elapsed = _CLOCK() - started
        pair = self.pair(response.status)
        pair[0].observe(elapsed)
        if response.stream is None:
            pair[1].observe(len(response.body))
        else:
            pair[1].observe(_content_length(response.headers))

    def failed(self, request: Request, started: float) -> None:
        if request.path in self.skip:
            return
        pair = self.pair(500)
        pair[0].observe(_CLOCK() - started)
        pair[1].observe(0)  # an answer of no bytes


class Unrouted(ServerMeter):
    """The series of the requests no endpoint took (404, 405, redirects), labelled as
    krakend-otel does: route "404 Not Found" (the status and its text)."""

    __slots__ = ("by_method", "duration", "size", "skip")

    def __init__(self, duration: Family, size: Family, skip: frozenset[str]) -> None:
        self.duration = duration
        self.size = size
        self.skip = skip
        self.by_method: dict[tuple[str, int], EndpointSeries] = {}

    def series(self, request: Request, status: int) -> EndpointSeries:
        method = request.method if request.method in VALID_METHODS else "_OTHER"
        series = self.by_method.get((method, status))
        if series is None:
            series = self.by_method[(method, status)] = EndpointSeries(
                self.duration, self.size, (method, "http", _status_text(status)), self.skip)
        return series

    def record(self, request: Request, response: Response, started: float) -> None:
        if request.path in self.skip:
            return
        self.series(request, response.status).record(request, response, started)

    def failed(self, request: Request, started: float) -> None:
        if request.path in self.skip:
            return
        self.series(request, 500).failed(request, started)



def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


def _static(attrs: Attributes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys, values) of static attributes with both set (krakend-otel drops empty ones)."""
    kept = [(k, v) for k, v in attrs if k and v]
    return tuple(k for k, _ in kept), tuple(v for _, v in kept)


# parse -------------------------------------------------------------------------------------
def _parse(raw: Any, path: JsonPath) -> Layers | None:
    """The root section is validated whole (`plan_for` reads it); an endpoint's or backend's
    own section is krakend-otel's `layers` override."""
    if path == ("extra_config", OTEL):
        parse_otel(raw, path)
        return None
    return parse_layers(raw, path)


def _owner(ctx: Build[Any]) -> bool:
    """Whether this namespace's component records (one layer is recorded once): the
    OpenTelemetry one when the root has it, else the legacy one."""
    if ctx.namespace == OTEL:
        return True
    extra = ctx.service.extra_config
    if OTEL in extra:
        return False
    return ctx.namespace == METRICS or METRICS not in extra


def _plan(ctx: Build[Any]) -> MetricsPlan | None:
    if not _owner(ctx):
        return None
    plan = plan_for(ctx.service.extra_config, ctx.service.name)
    return plan if plan.records else None


def _override(ctx: Build[Any]) -> Layers | None:
    return ctx.config if isinstance(ctx.config, Layers) else None


# SERVICE: http.server.* --------------------------------------------------------------------
def build_service(ctx: Build[Any], nxt: ServiceHandler) -> ServiceHandler:
    """krakend-otel's global layer: duration and size of every answer, recorded by the
    protocol into the meter this stage (a plain function: no coroutine frame) puts on the
    request; the ROUTER stage replaces it with its endpoint's."""
    _LONE.clear()  # the last level a generation builds: its backends' meters are placed
    plan = _plan(ctx)
    if plan is None or not plan.server:
        return nxt
    t = table()
    unrouted = Unrouted(t.histogram("http.server.duration", SERVER_LABELS, plan.time_buckets),
                        t.histogram("http.server.response.size", SERVER_LABELS,
                                    plan.size_buckets),
                        plan.skip_paths)

    def enter_server(request: Request) -> Awaitable[Response]:
        request.metrics_route = unrouted
        return nxt(request)

    return enter_server


def _content_length(headers: list[tuple[str, str]]) -> int:
    for k, v in headers:
        if k.lower() == "content-length" and v.isdigit():
            return int(v)
    return 0


# ROUTER: the endpoint's series on the request ----------------------------------------------
def build_router(ctx: Build[Any], nxt: EndpointHandler) -> EndpointHandler:
    """Set the endpoint's precomputed server series on the request (krakend-otel's
    `SetEndpointPattern`), for the SERVICE stage to record into."""
    plan = _plan(ctx)
    if plan is None or not plan.server or ctx.endpoint is None:
        return nxt
    ep = ctx.endpoint
    override = _override(ctx)
    tag: EndpointSeries | None = None  # None: this endpoint's answers are not recorded
    if not ((override is not None and override.global_.disable_metrics)
            or ep.endpoint in plan.skip_paths):
        attrs = plan.otel.layers.global_.metrics_static_attributes if plan.otel else ()
        if override is not None and override.global_.metrics_static_attributes:
            attrs = override.global_.metrics_static_attributes
        keys, values = _static(attrs)
        t = table()
        tag = EndpointSeries(
            t.histogram("http.server.duration", (*keys, *SERVER_LABELS), plan.time_buckets),
            t.histogram("http.server.response.size", (*keys, *SERVER_LABELS),
                        plan.size_buckets),
            (*values, ep.method, "http", ep.endpoint), plan.skip_paths)

    def tag_route(request: Request, params: dict[str, str]) -> Awaitable[Response]:
        # a plain function handing back the handler's awaitable: no coroutine frame of its own
        request.metrics_route = tag
        return nxt(request, params)

    return tag_route


# PROXY and BACKEND: krakend.<stage>.duration -----------------------------------------------
class StageSeries:
    """The 8 (error, canceled, complete) series of one stage, created on first use."""

    __slots__ = ("family", "prefix", "slots")

    def __init__(self, family: Family, prefix: tuple[str, ...]) -> None:
        self.family = family
        self.prefix = prefix
        self.slots: list[Histogram | None] = [None] * 8

    def get(self, index: int) -> Histogram:
        series = self.slots[index]
        if series is None:
            flags = ("true" if index & 4 else "false", "true" if index & 2 else "false",
                     "true" if index & 1 else "false")
            series = self.slots[index] = self.family.hist((*self.prefix, *flags))
        return series

    def record(self, index: int, elapsed: float) -> None:
        """One call of the stage: `index` is error·4 + canceled·2 + complete."""
        series = self.slots[index]
        if series is None:
            series = self.get(index)
        series.observe(elapsed)


ERROR: Final = 4
CANCELED_CALL: Final = 2
COMPLETE: Final = 1
PROXY_ORDER = 50  # this recorder's place at the PROXY level (`BUILDERS`)


class BackendMeter:
    """What one backend's stage records: its `krakend.backend.duration`, and the endpoint's
    `krakend.proxy.duration` too when the endpoint's proxy is that backend's call and
    nothing else (`proxy`, set by the PROXY level, which then adds no stage of its own)."""

    __slots__ = ("proxy", "stage")

    def __init__(self, stage: StageSeries) -> None:
        self.stage = stage
        self.proxy: StageSeries | None = None

    def done(self, response: ProxyResponse, started: float) -> None:
        elapsed = _CLOCK() - started
        index = COMPLETE if response.complete else 0
        self.stage.record(index, elapsed)
        proxy = self.proxy
        if proxy is not None:
            proxy.record(index, elapsed)

    def failed(self, exc: BaseException, started: float) -> None:
        elapsed = _CLOCK() - started
        canceled = isinstance(exc, asyncio.CancelledError)
        self.stage.record(CANCELED_CALL if canceled else ERROR, elapsed)
        proxy = self.proxy
        if proxy is not None:
            # The endpoint's proxy answers a backend failure as an error and lets anything
            # else through unrecorded, as the proxy stage did.
            if canceled:
                proxy.record(CANCELED_CALL, elapsed)
            elif isinstance(exc, BackendFailure):
                proxy.record(ERROR, elapsed)


# Backends whose stage records, until their endpoint's PROXY level takes the meter back.
_LONE: LoneBackends[BackendMeter] = LoneBackends()


def _stage_series(name: str, labels: tuple[str, ...], values: tuple[str, ...],
                  attrs: Attributes, bounds: tuple[float, ...]) -> StageSeries:
    keys, static = _static(attrs)
    family = table().histogram(name, (*labels, *keys, *STAGE_FLAGS), bounds)
    return StageSeries(family, (*values, *static))


def build_proxy(ctx: Build[Any], nxt: Proxy) -> Proxy:
    """krakend-otel's proxy layer: `krakend.proxy.duration` of the endpoint's pipe."""
    plan = _plan(ctx)
    if plan is None or not plan.proxy or ctx.endpoint is None:
        return nxt
    ep = ctx.endpoint
    override = _override(ctx)
    if ep.endpoint in plan.skip_paths or (override is not None
                                          and override.proxy.disable_metrics):
        return nxt
    attrs = plan.otel.layers.proxy.metrics_static_attributes if plan.otel else ()
    if override is not None and override.proxy.metrics_static_attributes:
        attrs = override.proxy.metrics_static_attributes
    series = _stage_series("krakend.proxy.duration", ("http.request.method", "http.route"),
                           (ep.method, ep.endpoint), attrs, plan.time_buckets)
    # the endpoint's proxy is its one backend's call: its stage records this layer too
    lone = _LONE.take(ctx, ep, own=(OTEL, METRICS, INFLUX), proxy_order=PROXY_ORDER)
    if lone is not None:
        lone.proxy = series  # recorded with the backend's stage: no stage here
        return nxt

    async def record_proxy(request: ProxyRequest
                           ) -> tuple[ProxyResponse | None, BaseException | None]:
        started = _CLOCK()
        try:
            answer = await nxt(request)
        except asyncio.CancelledError:
            series.record(CANCELED_CALL, _CLOCK() - started)
            raise
        response = answer[0]
        index = 0 if answer[1] is None else ERROR
        if response is not None and response.complete:
            index += COMPLETE
        series.record(index, _CLOCK() - started)
        return answer  # the same tuple: nothing allocated here

    return record_proxy


def backend_route(url_pattern: str) -> str:
    """A backend's URL pattern as krakend-otel labels it: lura turns ``{id}`` into
    ``{{.Id}}`` and krakend-otel's `NormalizeURLPattern` that into ``:id``."""
    return _PARAM.sub(lambda m: ":" + m.group(1).lower(), url_pattern)


_PARAM = re.compile(r"\{([^{}]*)\}")


def _backend_place(ctx: Build[Any]) -> tuple[str, str] | None:
    """(endpoint method, endpoint route) of a backend, from its scope "GET /x #0"."""
    method, _, rest = ctx.scope.partition(" ")
    route = rest.rsplit(" #", 1)[0]
    return (method, route) if route else None


def build_backend(ctx: Build[Any], nxt: BackendProxy) -> BackendProxy:
    """krakend-otel's backend layer: `krakend.backend.duration` (the whole backend stage)."""
    plan = _plan(ctx)
    backend = ctx.backend
    place = _backend_place(ctx)
    if plan is None or not plan.backend or backend is None or place is None:
        return nxt
    override = _override(ctx)
    detail = override.backend_metrics if override is not None and plan.otel else (
        plan.otel.layers.backend_metrics if plan.otel else None)
    if place[1] in plan.skip_paths or (detail is not None and detail.disable_stage):
        return nxt
    meter = BackendMeter(_stage_series(
        "krakend.backend.duration",
        ("http.request.method", "http.route", "krakend.endpoint.route",
         "krakend.endpoint.method"),
        (backend.method, backend_route(backend.url_pattern), place[1], place[0]),
        detail.static_attributes if detail is not None else (), plan.time_buckets))
    _LONE.leave(backend, meter)
    return RecordedBackend(meter, nxt)


class RecordedBackend:
    """The BACKEND stage: `krakend.backend.duration` of each call of `nxt`. It only
    watches, so it offers its meter as a `BackendTap`: a compiled backend whose only
    BACKEND stage this is reports its calls to the meter itself and never calls this stage
    (no coroutine frame per call); under another stage (the traces', a Lua script's) it is
    awaited as here, with the same values."""

    __slots__ = ("backend_tap", "meter", "nxt")

    def __init__(self, meter: BackendMeter, nxt: BackendProxy) -> None:
        self.meter = meter
        self.nxt = nxt
        self.backend_tap = BackendTap(nxt, meter.done, meter.failed)

    async def __call__(self, request: ProxyRequest) -> ProxyResponse:
        started = _CLOCK()
        try:
            response = await self.nxt(request)
        except BaseException as exc:
            self.meter.failed(exc, started)
            raise
        self.meter.done(response, started)
        return response


# CLIENT: http.client.* ---------------------------------------------------------------------
# `started` is the duration histogram's count (derived when a snapshot is taken); the others
# move only on errors, bodies sent or answers streamed without a length.
CLIENT_COUNTERS = ("http.client.request.failed.count", "http.client.request.canceled.count",
                   "http.client.request.timedout.count", "http.client.request.size",
                   "http.client.response.no-content-length")
FAILED: Final = 0
CANCELED: Final = 1
TIMEDOUT: Final = 2
REQUEST_SIZE: Final = 3
NO_LENGTH: Final = 4
CLIENT_LABELS = ("clientname", "server.address", "server.port", "http.response.status_code")
class ClientEntry:
    """The series of one (target, status): counters, duration, response size (a compiled
    object: its fields are read as C fields, a tuple's items would be unpacked and checked)."""

    __slots__ = ("counters", "duration", "size")

    def __init__(self, counters: tuple[Series, ...], duration: Histogram, size: Histogram
                 ) -> None:
        self.counters = counters
        self.duration = duration
        self.size = size


class ClientSeries:
    """The client families of one backend; series by target, then status (by index for the
    codes HTTP defines, as `EndpointSeries`)."""

    __slots__ = ("counters", "duration", "extra", "last", "last_target", "prefix", "series",
                 "size")

    def __init__(self, counters: tuple[Family, ...], duration: Family, size: Family,
                 prefix: tuple[str, ...]) -> None:
        self.counters = counters
        self.duration = duration
        self.size = size
        self.prefix = prefix
        # (host, port) -> entries by status code: one per origin, as the series' labels (a
        # target a component's URL names past the backend's kept origins is a new object
        # per request: keyed by identity, each would add an entry)
        self.series: dict[tuple[str, str], list[ClientEntry | None]] = {}
        self.extra: dict[tuple[str, str, int], ClientEntry] = {}  # (host, port, other status)
        self.last_target: Any = None  # most backends have one host: skip the outer lookup
        self.last: list[ClientEntry | None] = []

    def of(self, target: Any) -> list[ClientEntry | None]:
        """The entries of `target` by status code (None: not made yet)."""
        if target is self.last_target:
            return self.last
        key = _origin(target)
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = [None] * STATUS_SLOTS
        self.last_target, self.last = target, found
        return found

    def entry(self, target: Any, status: int) -> ClientEntry:
        """The series of one (target, status), created at zero."""
        by_status = self.of(target)
        if 0 <= status < STATUS_SLOTS:
            found = by_status[status]
            if found is not None:
                return found
        else:
            other = self.extra.get((*_origin(target), status))
            if other is not None:
                return other
        host, port = _origin(target)
        labels = (*self.prefix, host, port, str(status))
        entry = ClientEntry(tuple(c.get(labels) for c in self.counters),
                            self.duration.hist(labels), self.size.hist(labels))
        if 0 <= status < STATUS_SLOTS:
            by_status[status] = entry
        else:
            self.extra[(host, port, status)] = entry
        return entry


def _origin(target: Any) -> tuple[str, str]:
    """A target's ``server.address`` and ``server.port`` label values."""
    return str(getattr(target, "host", "")), str(getattr(target, "port", 0))


def build_client(ctx: Build[Any], nxt: Exchange) -> Exchange:
    """krakend-otel's instrumented HTTP client (`round_trip`): one backend exchange."""
    plan = _plan(ctx)
    backend = ctx.backend
    place = _backend_place(ctx)
    if (plan is None or not plan.client or backend is None or place is None
            or place[1] in plan.skip_paths):
        return nxt
    override = _override(ctx)
    detail = override.backend_metrics if override is not None else (
        plan.otel.layers.backend_metrics if plan.otel else None)
    if detail is None or not detail.round_trip:
        return nxt
    keys, static = _static(detail.static_attributes)
    labels = ("http.request.method", "http.route", "krakend.endpoint.route",
              "krakend.endpoint.method", *keys, *CLIENT_LABELS)
    t = table()
    duration = t.histogram("http.client.duration", labels, plan.time_buckets)
    t.count_of("http.client.request.started.count", duration)
    series = ClientSeries(
        tuple(t.counter(name, labels) for name in CLIENT_COUNTERS), duration,
        t.histogram("http.client.response.size", labels, plan.size_buckets),
        (backend.method, backend_route(backend.url_pattern), place[1], place[0], *static,
         backend_route(backend.url_pattern)))

    def failed(target: Any, method: str, body: bytes, exc: BaseException, started: float
               ) -> None:
        elapsed = _CLOCK() - started
        entry = series.entry(target, 0)
        counters = entry.counters
        if body:
            counters[REQUEST_SIZE][0] += len(body)
        if isinstance(exc, asyncio.CancelledError):
            counters[CANCELED][0] += 1
        else:
            counters[FAILED][0] += 1
            if isinstance(exc, UpstreamTimeout | BackendTimeout | TimeoutError):
                counters[TIMEDOUT][0] += 1
        entry.duration.observe(elapsed)

    def done(target: Any, method: str, body: bytes, status: int,
             headers: list[tuple[str, str]], resp_body: bytes, stream: Any, started: float
             ) -> None:
        elapsed = _CLOCK() - started
        by_status = series.last if target is series.last_target else series.of(target)
        entry = by_status[status] if 0 <= status < STATUS_SLOTS else None
        if entry is None:
            entry = series.entry(target, status)
        entry.duration.observe(elapsed)
        if body:
            entry.counters[REQUEST_SIZE][0] += len(body)
        if method != "HEAD":
            if stream is None:
                entry.size.observe(len(resp_body))
            else:
                header = _header(headers, "content-length")
                if header is not None and header.isdigit():
                    entry.size.observe(int(header))
                else:
                    entry.counters[NO_LENGTH][0] += 1

    async def record_client(request: ClientRequest) -> ClientResponse:
        # The chain's form (under a component that is not a tap, or a sampled trace); the
        # backend calls `done`/`failed` itself otherwise (`ExchangeTap`).
        started = _CLOCK()
        try:
            response = await nxt(request)
        except BaseException as exc:
            failed(request.target, request.method, request.body, exc, started)
            raise
        done(request.target, request.method, request.body, response.status, response.headers,
             response.body, response.stream, started)
        return response

    return tapped(record_client, nxt, done, failed)


def _header(headers: list[tuple[str, str]], lname: str) -> str | None:
    """`ClientResponse.header` over a header list."""
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


# registration ------------------------------------------------------------------------------
Builder = Callable[[Build[Any], Any], Any]
BUILDERS: dict[Level, tuple[Builder, int]] = {
    Level.SERVICE: (build_service, 50),
    Level.ROUTER: (build_router, 70),
    Level.PROXY: (build_proxy, PROXY_ORDER),
    Level.BACKEND: (build_backend, 50),
    Level.CLIENT: (build_client, 15),
}


def components(namespace: str, parse: Callable[[Any, JsonPath], Any]) -> list[Component[Any]]:
    """One component per level for `namespace` (the registry keeps one per level)."""
    # `bounded`: the backend and client stages await nothing but the next stage.
    return [Component(namespace, frozenset({level}), build, parse=parse, order=order,
                      service_wide=level is not Level.SERVICE,
                      bounded=level in (Level.BACKEND, Level.CLIENT))
            for level, (build, order) in BUILDERS.items()]


COMPONENTS: list[Component[Any]] = [
    *components(OTEL, _parse),
    *components(METRICS, parse_legacy),
    *components(INFLUX, parse_influx),
]
