"""Sending encoded spans to an OTLP collector, over HTTP (protobuf) or gRPC.

An `OtlpSpanExporter` is what a `tracing.Batcher` calls from its own thread with a batch of
items (framed Span messages in pieces, `otlp_encode`, a request's spans each): it joins them
as one ExportTraceServiceRequest and posts it (``POST /v1/traces``,
``application/x-protobuf``) or calls ``TraceService/Export`` with it, once, within `timeout`
seconds. A batch that fails is
dropped (the queue is bounded: a dead collector costs spans, never memory) and said at most
once a minute per exporter.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from tidegate.telemetry.otlp_encode import export_request

log = logging.getLogger("tidegate")

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WARN_EVERY = 60.0  # seconds between two warnings of one exporter

class OtlpSpanExporter:
    """One `exporters.otlp[]` entry: frames a batch and sends it."""

    def __init__(self, name: str, use_http: bool, endpoint: str, insecure: bool,
                 resource: bytes, scope: bytes, timeout: float) -> None:
        self.name = name
        self.endpoint = endpoint
        self.resource = resource
        self.scope = scope
        self.timeout = timeout
        self._warned = 0.0
        self._transport: _Http | _Grpc = (
            _Http(endpoint, timeout) if use_http else _Grpc(endpoint, insecure, timeout))

    def export(self, items: Sequence[list[bytes]]) -> bool:
        """Send one batch (the batcher's thread); False when it was dropped."""
        body = export_request(self.resource, self.scope,
                              [piece for item in items for piece in item])
        try:
            self._transport.send(body)
        except Exception as exc:  # a collector's failure is never the gateway's
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY:
                self._warned = now
                log.warning("OTLP exporter %s (%s): %s: %d requests' spans dropped",
                            self.name, self.endpoint, exc, len(items))
            return False
        return True

    def shutdown(self) -> None:
        self._transport.close()


class _Http:
    """OTLP/HTTP: one keep-alive connection, opened again after a failure."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path or "/v1/traces"
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes) -> None:
        if self.conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", self.path, body,
                              {"Content-Type": "application/x-protobuf"})
            resp = self.conn.getresponse()
            resp.read()
        except BaseException:
            self.close()
            raise
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"collector answered {resp.status} {resp.reason}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _Grpc:
    """OTLP/gRPC: the TraceService's Export, with bytes in and out (no message objects)."""

    def __init__(self, endpoint: str, insecure: bool, timeout: float) -> None:
        import grpc

        self.channel = (grpc.insecure_channel(endpoint) if insecure
                        else grpc.secure_channel(endpoint, grpc.ssl_channel_credentials()))
        self.call = self.channel.unary_unary(GRPC_METHOD)
        self.timeout = timeout

    def send(self, body: bytes) -> None:
        self.call(body, timeout=self.timeout)

    def close(self) -> None:
        self.channel.close()
