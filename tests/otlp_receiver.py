"""OTLP collectors for tests: what a gateway exports, decoded with opentelemetry-proto.

`HttpReceiver` answers ``POST /v1/traces`` (OTLP/HTTP, protobuf) and `GrpcReceiver` serves the
TraceService (OTLP/gRPC), both on 127.0.0.1 only. Spans arrive on a queue; `wait` returns them
as soon as the expected ones are there, bounded in time.
"""

from __future__ import annotations

import gzip
import queue
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass
class ReceivedSpan:
    """One exported span, flattened: ids as hex, attributes as Python values."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int
    resource: dict[str, Any]
    scope: str
    events: list[str]
    start: int = 0  # unix ns
    end: int = 0


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """The spans of one export request."""
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(ReceivedSpan(
                    s.name, s.kind, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                    {a.key: _value(a.value) for a in s.attributes}, s.status.code, resource,
                    ss.scope.name, [e.name for e in s.events], s.start_time_unix_nano,
                    s.end_time_unix_nano))
    return out


class _Collector:
    def __init__(self) -> None:
        self.spans: queue.Queue[ReceivedSpan] = queue.Queue()
        self.seen: list[ReceivedSpan] = []
        # OTLP/HTTP metrics exports, decoded, in arrival order.
        self.metrics: queue.Queue[metrics_service_pb2.ExportMetricsServiceRequest] = \
            queue.Queue()

    def take(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for span in decode(request):
            self.spans.put(span)

    def wait(self, done: Callable[[list[ReceivedSpan]], bool],
             timeout: float = 20.0) -> list[ReceivedSpan]:
        """Every span received so far, once `done(spans)` holds (AssertionError at timeout)."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"spans never arrived; got {[s.name for s in self.seen]}")
            try:
                self.seen.append(self.spans.get(timeout=left))
            except queue.Empty:
                continue
        return list(self.seen)


class HttpReceiver(_Collector):
    """An OTLP/HTTP collector (protobuf) on 127.0.0.1; `port` to configure."""

    def __init__(self) -> None:
        super().__init__()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    req = trace_service_pb2.ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    collector.take(req)
                    payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    mreq = metrics_service_pb2.ExportMetricsServiceRequest()
                    mreq.ParseFromString(body)
                    collector.metrics.put(mreq)
                    payload = b""
                else:
                    payload = b""
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver(_Collector):
    """An OTLP/gRPC collector (TraceService) on 127.0.0.1; `port` to configure."""

    def __init__(self) -> None:
        super().__init__()
        import grpc

        collector = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                collector.take(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def __enter__(self) -> GrpcReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
