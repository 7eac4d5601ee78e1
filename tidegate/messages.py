"""The values every layer speaks: a client request and its response, what the proxy stages
pass to the backends and back, and the seam's stage signatures.

They sit at the bottom so that the wire (`server/`), the stages (`pipeline/`) and the
components all import them from below: the protocol fills a `Request`, the pipeline answers a
`Response`; between them `ProxyRequest`/`ProxyResponse` are lura's proxy.Request/Response and
`BackendFailure` is a backend call that produced no data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tidegate.bodies import BodyStream

class Request:
    """One parsed client request. Header names are kept lower-cased for lookups.

    ``client_ip`` is the client's address, the one every component reads (IP rate limits,
    IP rules, ``X-Forwarded-For``): the connection's peer, replaced before the generation's
    components run when the peer is a trusted proxy (`tidegate.pipeline.client_ip`).
    ``tls``: it arrived on a TLS connection (``security/http`` sends STS, does not redirect).
    """

    # ``metrics_route``: the metrics recorder's `ServerMeter` the protocol records the answer
    # into (set by its SERVICE and ROUTER stages; None: not recorded). ``route`` is the
    # endpoint pattern the access log prints.
    __slots__ = ("body", "client_ip", "head_lines", "headers", "host", "jwt_claims", "method",
                 "metrics_route", "path", "query", "raw_target", "route", "stream", "tls",
                 "version")

    def __init__(self, method: str, raw_target: str, path: str, query: str,
                 headers: list[tuple[str, str]], body: bytes, client_ip: str,
                 version: str, stream: BodyStream | None = None, tls: bool = False) -> None:
        self.method = method
        self.raw_target = raw_target
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_ip = client_ip
        self.version = version
        self.host = self.header("host") or ""
        # A body too large to arrive with its head flows here instead (``body`` stays b"").
        self.stream = stream
        # The verified claims of the request's JWT, set by ``auth/validator`` before the later
        # stages run (CEL ``JWT``, rate limits by claim, the revoker); None without a validator.
        self.jwt_claims: dict[str, Any] | None = None
        self.tls = tls
        # The endpoint pattern it was routed to ("" until routed; the access log reads it).
        self.route = ""
        # Header lines on the wire's form that the answer's head starts with (`security/http`
        # prepares its lines once per generation); not written on the server's own 500.
        self.head_lines = b""
        self.metrics_route: object = None

    def header(self, lname: str) -> str | None:
        """First value of a header (name given lower-case)."""
        for k, v in self.headers:
            if k == lname:
                return v
        return None

    def header_values(self, lname: str) -> list[str]:
        """Every value of a header (name given lower-case)."""
        return [v for k, v in self.headers if k == lname]


class ChunkSource(Protocol):
    """A body read in pieces (`tidegate.bodies.BodyStream` or a decoding view of one)."""

    length: int | None

    async def read(self) -> bytes: ...

    def abandon(self) -> None: ...


class Response:
    """What the pipeline answers: status, headers in order, and the body as bytes or, for an
    answer passed through as it arrives, as a `ChunkSource` the server copies out."""

    __slots__ = ("body", "headers", "status", "stream")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"", stream: ChunkSource | None = None) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.stream = stream

    @classmethod
    def text(cls, status: int, body: str, content_type: str = "text/plain") -> Response:
        """A plain-text answer such as gin's ``404 page not found``."""
        return cls(status, [("Content-Type", content_type)], body.encode())


def header_block(headers: list[tuple[str, str]]) -> bytes:
    """`headers` as the server writes them in an answer's head (`server.wire`): a component
    that adds the same lines to every answer prepares them once (`Request.head_lines`)."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1", "replace")
                    for name, value in headers)


_CANONICAL: dict[str, str] = {}


def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` (``x-y-z`` → ``X-Y-Z``), cached."""
    out = _CANONICAL.get(name)
    if out is not None:
        return out
    if any(c in name for c in " \t\r\n:") or not name.isascii():
        out = name
    else:
        out = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
    if len(_CANONICAL) < 4096:
        _CANONICAL[name] = out
    return out


@dataclass(slots=True)
class ProxyRequest:
    """What the backends of one endpoint are asked: built once per client request.

    ``params`` are keyed like lura's (first letter upper-cased: ``{foo}`` → ``Foo``);
    ``headers`` use canonical names; ``query`` keeps repeated keys in order. A body sent on
    as it arrives is ``stream`` (then ``body`` is empty); only a single backend gets one.
    """

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, list[str]]
    query: list[tuple[str, str]]
    body: bytes
    stream: BodyStream | None = None
    # Backend level only: the whole URL a component (Lua's ``req:url(...)``) set; it then
    # decides the host and the request target, as lura's request URL does.
    url: str | None = None

    def clone(self) -> ProxyRequest:
        """A shallow copy a backend may modify (sequential proxies add params)."""
        return ProxyRequest(self.method, self.path, dict(self.params), self.headers,
                            self.query, self.body)


Rendered = tuple[int, tuple[tuple[str, str], ...], bytes]  # status, headers, body


class Memo(Protocol):
    """What a stored answer (an HTTP cache entry) remembers of the work done on it.

    A fresh cache hit is the same bytes every time: its decoded, manipulated and rendered form
    is the same too, so the endpoint that rendered it once keeps the result under its `slot`
    for as long as the entry lives (and is counted in the cache's size).
    """

    def recall(self, slot: object) -> Rendered | None:
        """What `slot` remembered of this answer, if anything."""
        ...

    def remember(self, slot: object, value: Rendered) -> None:
        """Keep `value` for `slot` while the answer stays stored (or not, if it is gone)."""
        ...


@dataclass(slots=True)
class ProxyResponse:
    """A backend's (or the merge's) answer: decoded data plus what the router renders."""

    data: dict[str, Any] | None  # None: a backend that answered JSON null (lura keeps nil data)
    complete: bool = True
    status: int = 200
    headers: dict[str, list[str]] = field(default_factory=dict)
    raw: bytes | None = None  # no-op: the body as the backend sent it
    stream: ChunkSource | None = None  # no-op, single backend: the body as it arrives
    # A stored answer (cache hit) the endpoint may remember its rendering on; `rendered`: that
    # rendering, recalled by the backend (then `data` was not decoded).
    memo: Memo | None = None
    rendered: Rendered | None = None


class BackendFailure(Exception):
    """A backend call that did not produce data.

    What the client sees when this error is all there is: ``status``; with the router's
    ``return_error_msg`` also ``body()``, under ``content_type`` when set (lura writes
    ``err.Error()`` and only an encoded response error brings its own Content-Type).
    """

    status = 500
    content_type = ""

    def body(self) -> bytes:
        """The error text as lura's ErrorResponseWriter writes it."""
        return str(self).encode()


class BackendStatusError(BackendFailure):
    """The backend answered with a status KrakenD does not accept (anything but 200/201)."""

    def __init__(self, code: int, prefix: str, url: str) -> None:
        super().__init__(f"invalid status code {code} {prefix}: {url}")
        self.code = code


class BackendHTTPError(BackendFailure):
    """``backend/http`` ``return_error_code``: the backend's status, body and Content-Type
    reach the client (lura's HTTPResponseError)."""

    def __init__(self, code: int, body: bytes, content_type: str) -> None:
        super().__init__(body.decode("utf-8", "replace"))
        self.status = code
        self.raw_body = body
        self.content_type = content_type

    def body(self) -> bytes:
        return self.raw_body


class PayloadTooLarge(BackendFailure):
    """The client's body passed ``max_payload`` (or the bound on a body that must be held)."""

    status = 413

    def __init__(self) -> None:
        super().__init__("http: request body too large")


class BackendTimeout(BackendFailure):
    """The backend did not answer within its timeout."""

    def __init__(self) -> None:
        super().__init__("context deadline exceeded")


class BackendUnavailable(BackendFailure):
    """The backend could not be reached (refused, reset, DNS...)."""


class BackendDecodeError(BackendFailure):
    """The backend's body does not decode with the backend's ``encoding``."""


class MergeError(BackendFailure):
    """Some backends of a merge failed; the message joins theirs as lura's mergeError does."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


# The seam's stage signatures (see `tidegate.components`): an endpoint's HTTP handler, the
# endpoint's proxy (answer or error, as lura's proxy.Proxy), one backend's exchange.
@dataclass(slots=True)
class ClientRequest:
    """One backend HTTP exchange as the request executor sends it (KrakenD's HTTP client
    level: ``qos/http-cache``, client credentials...). ``target`` is the upstream address,
    opaque above the client; ``url`` is absolute (cache keys); ``deadline`` is loop time."""

    target: Any
    method: str
    request_target: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    deadline: float
    stream: BodyStream | None = None


@dataclass(slots=True)
class ClientResponse:
    """The executor's answer: status, headers, whole body (or ``stream``), final URL."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    url: str
    stream: ChunkSource | None = None
    memo: Memo | None = None  # set by a cache that served a stored answer

    def header(self, lname: str) -> str | None:
        """First value of a header (name given lower-case)."""
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


Exchange = Callable[[ClientRequest], Awaitable[ClientResponse]]


# What an exchange tap is told: (target, method, request body, status, response headers,
# response body, response stream, perf_counter when the exchange started). The headers are
# the answer's when it is streamed; a 200/201 answer read whole for decoding comes with none
# (decoding them would cost ~450 instructions a header, and a tap only needs a streamed
# answer's Content-Length).
TapDone = Callable[[Any, str, bytes, int, list[tuple[str, str]], bytes, Any, float], None]
# (target, method, request body, the exception, perf_counter when the exchange started).
TapFailed = Callable[[Any, str, bytes, BaseException, float], None]


class TapSpan(Protocol):
    """A sampled exchange's client span, begun by a tap's ``trace`` (`TapTrace`) just before
    the request is written and ended by the backend with the answer or the failure."""

    # Whether `done` needs a buffered answer's headers (reading them costs).
    headers_read: bool

    def done(self, status: int, headers: list[tuple[str, str]] | None, body: bytes,
             stream: Any, started: float) -> None:
        """The answer (``headers`` None: a buffered answer whose headers were not read;
        ``started``: perf_counter when the exchange started)."""

    def failed(self, error: BaseException, started: float) -> None:
        """The exchange failed (or was cancelled)."""


# (base URL, request target, the backend's request, the exchange's headers) -> the
# exchange's span, or None when nothing is recorded for this request. It may append headers
# (a ``Traceparent``) to the list, which is this exchange's own.
TapTrace = Callable[[str, str, "ProxyRequest", list[tuple[str, str]]], TapSpan | None]


class ExchangeTap:
    """Request-executor components that only watch the exchange (the metrics recorder; the
    traces), as the backend can call them inline.

    A backend whose executor chain is tapped down to its own exchange (``below``) sends
    directly and reports to ``done`` / ``failed``: no `ClientRequest`, `ClientResponse` or
    coroutine frame per component. ``trace``: called before the request goes out, it may add
    headers and begin a span (a sampled trace), which the backend ends. The values ``done``
    sees are the ones `ClientResponse` would carry.
    """

    __slots__ = ("below", "done", "failed", "trace")

    def __init__(self, below: Exchange, done: TapDone | None = None,
                 failed: TapFailed | None = None, trace: TapTrace | None = None) -> None:
        self.below = below
        self.done = done
        self.failed = failed
        self.trace = trace


class TappedExchange:
    """An executor stage (`Exchange`) that carries its `ExchangeTap`."""

    __slots__ = ("exchange", "tap")

    def __init__(self, exchange: Exchange, tap: ExchangeTap) -> None:
        self.exchange = exchange
        self.tap = tap

    def __call__(self, request: ClientRequest) -> Awaitable[ClientResponse]:
        return self.exchange(request)


def tap_of(stage: Exchange) -> ExchangeTap | None:
    """The tap of an executor stage, if it is a tapped one."""
    return stage.tap if isinstance(stage, TappedExchange) else None


def tapped(exchange: Exchange, nxt: Exchange, done: TapDone | None = None,
           failed: TapFailed | None = None, trace: TapTrace | None = None) -> Exchange:
    """`exchange`, a stage wrapping `nxt` that only reports to `done`/`failed` (and, through
    `trace`, adds headers and records a span), with the tap that lets the backend skip it.
    Over a tapped `nxt` the taps merge (the inner one reports first, as it would return
    first); anything else below stays below (the backend then calls the chain). Two traces
    do not merge: the outer stage is then the chain's."""
    inner = tap_of(nxt)
    if inner is None:
        return TappedExchange(exchange, ExchangeTap(nxt, done, failed, trace))
    if trace is not None and inner.trace is not None:
        return exchange
    return TappedExchange(exchange, ExchangeTap(
        inner.below, _both(inner.done, done), _both(inner.failed, failed),
        trace if trace is not None else inner.trace))


def _both(first: Any, second: Any) -> Any:
    if first is None or second is None:
        return first if second is None else second

    def both(*args: Any) -> None:
        first(*args)
        second(*args)

    return both
ServiceHandler = Callable[[Request], Awaitable[Response]]
EndpointHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]
Proxy = Callable[[ProxyRequest], Awaitable[tuple[ProxyResponse | None, BaseException | None]]]
BackendProxy = Callable[[ProxyRequest], Awaitable[ProxyResponse]]


# What a backend tap is told: the backend call's answer, or what it raised, with the
# `perf_counter` at which the call started.
BackendDone = Callable[[ProxyResponse, float], None]
BackendFailed = Callable[[BaseException, float], None]


class BackendSpan(Protocol):
    """A sampled request's span of one backend call, begun by a backend tap's ``trace`` as
    the call starts (what the call records nests under it) and ended by the caller with the
    answer or what was raised."""

    def done(self, response: ProxyResponse) -> None: ...

    def failed(self, error: BaseException) -> None: ...


# The backend's request -> its call's span, or None when this request records none. Called
# in the task that awaits the call (it sets a context variable until the span ends).
BackendTrace = Callable[[ProxyRequest], BackendSpan | None]


class BackendTap:
    """BACKEND-level components that only watch the backend's call (the metrics'
    `krakend.backend.duration`; the traces' backend span), as the compiled backend can call
    them inline.

    A stage offers it as its ``backend_tap`` attribute (found once, when the backend is
    built: `backend_tap_of`). When the stage wraps nothing but the backend's own call
    (``below``), the backend skips the stage and reports each call to ``done`` (its answer)
    or ``failed`` (what it raised, a cancellation included), and begins the span ``trace``
    gives, from its entry points, or hands them to the endpoint that awaits the call itself:
    no coroutine frame per call. Anything else between them keeps the stage, which reports
    the same values. Over a stage that offers a tap, a stage's tap includes it
    (`backend_tap_over`).
    """

    __slots__ = ("below", "done", "failed", "trace")

    def __init__(self, below: BackendProxy, done: BackendDone | None = None,
                 failed: BackendFailed | None = None, trace: BackendTrace | None = None
                 ) -> None:
        self.below = below
        self.done = done
        self.failed = failed
        self.trace = trace


def backend_tap_over(nxt: BackendProxy, done: BackendDone | None = None,
                     failed: BackendFailed | None = None, trace: BackendTrace | None = None
                     ) -> BackendTap | None:
    """The tap of a stage that watches `nxt` with these hooks: over a stage offering a tap,
    both (the inner one reports first, as it would return first; None where two traces
    would meet)."""
    inner = backend_tap_of(nxt)
    if inner is None:
        return BackendTap(nxt, done, failed, trace)
    if trace is not None and inner.trace is not None:
        return None
    return BackendTap(inner.below, _both(inner.done, done), _both(inner.failed, failed),
                      trace if trace is not None else inner.trace)


def backend_tap_of(stage: BackendProxy) -> BackendTap | None:
    """The tap a BACKEND-level stage offers, if it is one that only watches."""
    tap = getattr(stage, "backend_tap", None)
    return tap if isinstance(tap, BackendTap) else None
