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
from collections.abc import Callable
from contextvars import ContextVar
from http import HTTPStatus
from os import urandom
from typing import Final

from tidegate.messages import ClientRequest, ClientResponse, Request, Response
from tidegate.telemetry.otel_config import Attributes
from tidegate.telemetry.otlp_encode import ERROR, OK, Attr, SpanTemplate, event, status

_PLACEHOLDER: Final = re.compile(r"\{([^{}/]+)\}")
_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


class Sink:
    """Where a request's finished spans go: their pieces are held until the server span ends,
    then queued as one item (one queue call per request, joined by the exporter); a span that
    ends later (a cancelled backend call) or without a server span goes on its own. It also
    hands out the request's random ids, from one draw of 64 bytes."""

    __slots__ = ("emit", "ids", "next_id", "open", "parts")

    def __init__(self, emit: Callable[[list[bytes]], None], open_: bool) -> None:
        self.emit = emit
        self.open = open_
        self.parts: list[bytes] = []
        self.ids = urandom(64)
        self.next_id = 16  # the first 16 bytes are the trace id, when the request starts one

    def new_id(self) -> bytes:
        """A new span id (8 random bytes, never all zero)."""
        at = self.next_id
        if at > 56:
            self.ids = urandom(64)
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
            self.emit(parts)

    def close(self) -> None:
        """The server span ended: queue what was held; later spans go alone."""
        self.open = False
        self.emit(self.parts)
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
    return f"00-{trace_id.hex()}-{span_id.hex()}-01"


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



def with_trace_headers(creq: ClientRequest, trace_id: bytes, span_id: bytes, state: str
                        ) -> ClientRequest:
    """The request with this trace's ``Traceparent`` (and ``Tracestate``) instead of any the
    client sent."""
    found = False
    for k, _ in creq.headers:
        if len(k) in (10, 11) and k.lower() in ("traceparent", "tracestate"):
            found = True
            break
    if found:
        headers = [(k, v) for k, v in creq.headers
                   if not (len(k) in (10, 11) and k.lower() in ("traceparent", "tracestate"))]
    else:
        headers = list(creq.headers)
    headers.append(("Traceparent", traceparent(trace_id, span_id)))
    if state:
        headers.append(("Tracestate", state))
    return ClientRequest(creq.target, creq.method, creq.request_target, creq.url, headers,
                         creq.body, creq.deadline, creq.stream)


def outgoing(creq: ClientRequest) -> list[bytes]:
    """krakend-otel's TraceRequestAttrs of the backend request."""
    url = creq.url
    scheme = url.find("://")
    begin = scheme + 3 if scheme >= 0 else 0
    slash = url.find("/", begin)
    server = url[begin:slash] if slash >= 0 else url[begin:]
    attrs = [_URL.text(url), _SERVER_ADDRESS.text_memo(server),
             _METHOD.text_memo(creq.method)]
    if creq.stream is None:
        attrs.append(_REQUEST_SIZE.integer(len(creq.body)))
    for k, v in creq.headers:
        if len(k) == 10 and k.lower() == "user-agent":
            attrs.append(_USER_AGENT.text_memo(v))
            break
    return attrs


def response_size(resp: ClientResponse) -> int:
    for k, v in resp.headers:
        if len(k) == 14 and k.lower() == "content-length":
            if v.isdigit():
                return int(v)
            break
    return len(resp.body) if resp.stream is None else -1


