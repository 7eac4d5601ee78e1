"""What a traced request carries from stage to stage, and the attributes it adds to its spans.

`Active` (in the `ACTIVE` context variable, None when the request is not sampled) says where
the next span nests; `Sink` holds a request's finished spans, in pieces, until its server
span ends, and hands out its random ids. The functions below give krakend-otel's attributes
of the client request, the backend request and a stage's outcome as encoded bytes
(`otlp_encode.Attr`), and the W3C ``traceparent`` a backend receives. Compiled with the stages
(`tidegate.components.telemetry_traces`): this is what a sampled request runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from http import HTTPStatus
from random import getrandbits
from time import perf_counter, time_ns
from typing import Any, Final

from tidegate.messages import (
    ClientRequest,
    ClientResponse,
    Request,
    Response,
    canonical_header,
)
from tidegate.telemetry.otel_config import Attributes
from tidegate.telemetry.otlp_encode import (
    ERROR,
    OK,
    Attr,
    SpanTemplate,
    event,
    span_attributes,
    status,
)

_PLACEHOLDER: Final = re.compile(r"\{([^{}/]+)\}")
_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


_RANDOM_BITS: Final = getrandbits
_ID_BYTES: Final = 48
_HEX: Final = bytes.hex  # called directly, without a method lookup


def _random_bytes() -> bytes:
    """48 random bytes for a request's ids (a trace id, and the four spans' of a request
    with one backend), drawn as the SDK's generator draws them, from `random`: no system
    call (ids need to be unique, not secret). Each worker process seeds its own generator
    when it starts."""
    return _RANDOM_BITS(384).to_bytes(_ID_BYTES, "little")


class Sink:
    """Where a request's finished spans go: they are held until the server span ends, then
    queued joined as one item (one queue call per request); a span that
    ends later (a cancelled backend call) or without a server span goes on its own. It also
    hands out the request's random ids, from one draw of 48 bytes."""

    __slots__ = ("emit", "ids", "next_id", "open", "parts")

    def __init__(self, emit: Callable[[bytes], None], open_: bool) -> None:
        self.emit = emit
        self.open = open_
        self.parts: list[bytes] = []
        self.ids = _random_bytes()
        self.next_id = 16  # the first 16 bytes are the trace id, when the request starts one

    def new_id(self) -> bytes:
        """A new span id (8 random bytes, never all zero)."""
        at = self.next_id
        if at > _ID_BYTES - 8:
            self.ids = _random_bytes()
            at = 0
        self.next_id = at + 8
        span_id = self.ids[at:at + 8]
        return span_id if span_id != _ZERO_ID else _ONE_ID

    def add(self, template: SpanTemplate, trace: bytes, span_id: bytes, links: bytes,
            start: int, end: int, attrs: list[bytes], tail: bytes = b"",
            name: bytes = b"") -> None:
        """One finished span (`SpanTemplate.add`'s arguments)."""
        if self.open:
            template.add(self.parts, trace, span_id, links, start, end, attrs, tail, name)
        else:
            parts: list[bytes] = []
            template.add(parts, trace, span_id, links, start, end, attrs, tail, name)
            self.emit(b"".join(parts))

    def close(self) -> None:
        """The server span ended: queue what was held, joined; later spans go alone."""
        self.open = False
        self.emit(b"".join(self.parts))
        self.parts = []


class Active:
    """Where a request's next spans nest: its trace (``trace``: the encoded trace id field
    and the span id's tag),
    the enclosing span (``span_id``, b"": none) and what a span under it carries (``links``:
    the encoded trace state and parent id), the tracestate to pass on, the sink; the server
    stage's also collects the endpoint's static attributes."""

    __slots__ = ("links", "sink", "span_id", "state", "state_field", "static", "trace",
                 "trace_id")

    def __init__(self, trace_id: bytes, span_id: bytes, state: str, state_field: bytes,
                 sink: Sink, trace: bytes = b"") -> None:
        self.trace_id = trace_id
        self.trace = trace or b"\x0a\x10" + trace_id + b"\x12\x08"
        self.span_id = span_id
        self.state = state
        self.state_field = state_field
        self.links = state_field + b"\x22\x08" + span_id if span_id else state_field
        self.sink = sink
        self.static: Attributes = ()

    def child(self, span_id: bytes) -> Active:
        """The context of a span `span_id` under this one."""
        return Active(self.trace_id, span_id, self.state, self.state_field, self.sink,
                      self.trace)


# None: the request is not sampled (or not traced at all): no stage records anything.
ACTIVE: Final[ContextVar[Active | None]] = ContextVar("tidegate_trace", default=None)
# Its methods bound once, and the clocks, as C statics (Final): a stage calls them directly,
# with no method lookup nor module dict lookup (~130 instructions each) per call.
active_trace: Final = ACTIVE.get
set_active: Final = ACTIVE.set
reset_active: Final = ACTIVE.reset
clock_ns: Final = time_ns
clock: Final = perf_counter

# The attributes a request adds to its spans; each key encoded once (`Attr`). Final: compiled,
# these are read directly, not looked up in the module's dict.
_URL: Final = Attr("url.full")
_SERVER_ADDRESS: Final = Attr("server.address")
_METHOD: Final = Attr("http.request.method")
_REQUEST_SIZE: Final = Attr("http.request.body.size")
_USER_AGENT: Final = Attr("user_agent.original")
_CLIENT_ADDRESS: Final = Attr("client.address")
ROUTE: Final = Attr("http.route")
STATUS_CODE: Final = Attr("http.response.status_code")
RESPONSE_SIZE: Final = Attr("http.response.body.size")
DURATION: Final = Attr("response-duration")
_ERROR: Final = Attr("error")
_CANCELED: Final = Attr("canceled").boolean(True)
_COMPLETE: Final = Attr("complete").boolean(True)
_INCOMPLETE: Final = Attr("complete").boolean(False)
OK_STATUS: Final = status(OK)
_ZERO_ID: Final = bytes(8)
_ONE_ID: Final = bytes(7) + b"\x01"


def endpoint_route(endpoint: str) -> str:
    """The endpoint as lura's gin router names it (``/users/{id}`` → ``/users/:id``)."""
    return _PLACEHOLDER.sub(lambda m: ":" + m.group(1), endpoint)


def backend_route(url_pattern: str) -> str:
    """krakend-otel's NormalizeURLPattern of lura's ``{{.Id}}``: ``/u/{id}`` → ``/u/:id``."""
    return _PLACEHOLDER.sub(lambda m: ":" + m.group(1).lower(), url_pattern)


def parse_traceparent(header: str) -> tuple[bytes, int, bool] | None:
    """(trace id, parent span id, sampled) of a W3C ``traceparent``; None when invalid (as
    the OpenTelemetry propagator: all-zero ids, version ff, extra fields on version 00)."""
    m = _TRACEPARENT.fullmatch(header.strip().lower())
    if m is None:
        return None
    version, trace, parent, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or set(trace) == {"0"} or \
            set(parent) == {"0"}:
        return None
    return bytes.fromhex(trace), int(parent, 16), bool(int(flags, 16) & 1)


def traceparent(trace_id: bytes, span_id: bytes) -> str:
    """The W3C header of a span this gateway records (sampled)."""
    return f"00-{_HEX(trace_id)}-{_HEX(span_id)}-01"


def failed(exc: BaseException, at: int) -> bytes:
    """The ``exception`` span event the SDK's record_exception adds, and the error status."""
    return event("exception", at, {"exception.type": type(exc).__name__,
                                   "exception.message": str(exc)}) + status(ERROR, str(exc))



def incoming(request: Request) -> list[bytes]:
    """krakend-otel's TraceIncomingRequestAttrs."""
    attrs = [_URL.text(request.raw_target), _SERVER_ADDRESS.text_memo(request.host),
             _METHOD.text_memo(request.method)]
    length: str | None = None
    agent: str | None = None
    for k, v in request.headers:
        if k == "content-length":
            if length is None:
                length = v
        elif k == "user-agent" and agent is None:
            agent = v
    if length is not None and length.isdigit():
        attrs.append(_REQUEST_SIZE.integer(int(length)))
    elif request.stream is None:
        attrs.append(_REQUEST_SIZE.integer(len(request.body)))
    if agent:
        attrs.append(_USER_AGENT.text_memo(agent))
    if request.client_ip:
        attrs.append(_CLIENT_ADDRESS.text_memo(request.client_ip))
    return attrs


def status_text(status: int) -> str:
    """Go's ``strconv.Itoa(code) + " " + http.StatusText(code)`` (route of an unmatched path)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


def body_size(response: Response) -> int:
    if response.stream is None:
        return len(response.body)
    length = response.stream.length
    return length if length is not None else -1



def outcome(code: int | None, complete: bool, error: BaseException | None) -> list[bytes]:
    """krakend-otel's middlewareTracer.end attributes."""
    out: list[bytes] = []
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            out.append(_CANCELED)
        else:
            out.append(_ERROR.text(str(error)))
        out.append(STATUS_CODE.integer(500))
    elif code is not None:
        out.append(STATUS_CODE.integer(code))
    out.append(_COMPLETE if complete else _INCOMPLETE)
    return out



def add_trace_headers(headers: list[tuple[str, str]], trace_id: bytes, span_id: bytes,
                      state: str) -> None:
    """This trace's ``Traceparent`` (and ``Tracestate``) in `headers`, in place of any the
    client sent."""
    for k, _ in headers:
        if (len(k) == 11 or len(k) == 10) and _is_trace_header(k):
            headers[:] = [(k, v) for k, v in headers if not _is_trace_header(k)]
            break
    headers.append(("Traceparent", traceparent(trace_id, span_id)))
    if state:
        headers.append(("Tracestate", state))


def _is_trace_header(name: str) -> bool:
    lower = name.lower()
    return lower == "traceparent" or lower == "tracestate"


def with_trace_headers(creq: ClientRequest, trace_id: bytes, span_id: bytes, state: str
                       ) -> ClientRequest:
    """The request with this trace's headers (`add_trace_headers`)."""
    headers = list(creq.headers)
    add_trace_headers(headers, trace_id, span_id, state)
    return ClientRequest(creq.target, creq.method, creq.request_target, creq.url, headers,
                         creq.body, creq.deadline, creq.stream)


def reported_headers(prefix: str, headers: Any, skip: frozenset[str]) -> dict[str, list[str]]:
    """``http.request.header.x-y`` attributes (skip_headers by canonical name)."""
    out: dict[str, list[str]] = {}
    items = headers.items() if isinstance(headers, Mapping) else (
        (k, [v]) for k, v in headers)
    for k, vs in items:
        name = canonical_header(k)
        if name not in skip:
            out.setdefault(prefix + name.lower(), []).extend(vs)
    return out


def outgoing(creq: ClientRequest) -> list[bytes]:
    """krakend-otel's TraceRequestAttrs of the backend request."""
    return request_attrs(creq.url, creq.method, creq.headers,
                         creq.body if creq.stream is None else None)


def request_attrs(url: str, method: str, headers: list[tuple[str, str]],
                  body: bytes | None) -> list[bytes]:
    """krakend-otel's TraceRequestAttrs of a backend request (`body` None: streamed)."""
    scheme = url.find("://")
    begin = scheme + 3 if scheme >= 0 else 0
    slash = url.find("/", begin)
    server = url[begin:slash] if slash >= 0 else url[begin:]
    attrs = [_URL.text(url), _SERVER_ADDRESS.text_memo(server), _METHOD.text_memo(method)]
    if body is not None:
        attrs.append(_REQUEST_SIZE.integer(len(body)))
    for k, v in headers:
        if len(k) == 10 and k.lower() == "user-agent":
            attrs.append(_USER_AGENT.text_memo(v))
            break
    return attrs


def response_size(resp: ClientResponse) -> int:
    return answer_size(resp.headers, resp.body, resp.stream)


def answer_size(headers: list[tuple[str, str]] | None, body: bytes, stream: object) -> int:
    """The answer's Content-Length, else its body's length (-1: streamed without one);
    `headers` None: a buffered answer whose headers were not read."""
    if headers is not None:
        for k, v in headers:
            if len(k) == 14 and k.lower() == "content-length":
                if v.isdigit():
                    return int(v)
                break
    return len(body) if stream is None else -1


class ClientSpan:
    """A sampled exchange's client span when the backend sends in line (`messages.TapSpan`):
    what `telemetry_traces.build_client`'s stage records around the exchange chain, from the
    values the backend has. Begun as the request goes out; `headers` are the request's with
    this trace's own."""

    __slots__ = ("active", "body", "headers", "headers_read", "method", "report", "skip",
                 "span_id", "start", "template", "url")

    def __init__(self, template: SpanTemplate, active: Active, span_id: bytes, url: str,
                 method: str, headers: list[tuple[str, str]], body: bytes | None,
                 report: bool, skip: frozenset[str]) -> None:
        self.template = template
        self.active = active
        self.span_id = span_id
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.report = report
        self.skip = skip
        # a buffered answer's headers are read for the reported ones, and for a HEAD's
        # Content-Length (its body is empty)
        self.headers_read = report or method == "HEAD"
        self.start = clock_ns()

    def done(self, status: int, headers: list[tuple[str, str]] | None, body: bytes,
             stream: object, started: float) -> None:
        attrs = request_attrs(self.url, self.method, self.headers, self.body)
        if self.report:
            reported = reported_headers("http.request.header.", self.headers, self.skip)
            reported.update(reported_headers("http.response.header.", headers or [],
                                             self.skip))
            attrs.append(span_attributes(reported))
        attrs.append(STATUS_CODE.integer(status))
        attrs.append(RESPONSE_SIZE.integer(answer_size(headers, body, stream)))
        attrs.append(DURATION.double(clock() - started))
        active = self.active
        active.sink.add(self.template, active.trace, self.span_id, active.links, self.start,
                        clock_ns(), attrs, OK_STATUS)

    def failed(self, error: BaseException, started: float) -> None:
        end = clock_ns()
        active = self.active
        active.sink.add(self.template, active.trace, self.span_id, active.links, self.start,
                        end, request_attrs(self.url, self.method, self.headers, self.body),
                        failed(error, end))
