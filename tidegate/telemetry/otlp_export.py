"""Sending encoded spans to an OTLP collector, over HTTP (protobuf) or gRPC.

An `OtlpSpanExporter` is what a `tracing.Batcher` calls from its own thread with a batch of
items (framed Span messages, `otlp_encode`, a request's spans each): it frames them
as one ExportTraceServiceRequest and posts it (``POST /v1/traces``,
``application/x-protobuf``) or calls ``TraceService/Export`` with it, once, within `timeout`
seconds. A batch that fails is
dropped (the queue is bounded: a dead collector costs spans, never memory) and said at most
once a minute per exporter.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from tidegate.telemetry.otlp_encode import export_request

log = logging.getLogger("tidegate")

GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WARN_EVERY = 60.0  # seconds between two warnings of one exporter
MAX_HEAD = 65536  # bytes of a collector's answer head, at most
MAX_ANSWER = 1 << 20  # bytes of a collector's whole answer, at most (OTLP's are a few bytes)

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

    def export(self, items: Sequence[bytes]) -> bool:
        """Send one batch (the batcher's thread); False when it was dropped."""
        body = export_request(self.resource, self.scope, items)
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
    """OTLP/HTTP: one keep-alive HTTP/1.1 connection, opened again when the collector closes
    it. A client of its own, this small: http.client parses each answer's headers with the
    email package, which cost more than encoding the batch. A batch sent on a reused
    connection that turns out closed before any answer is sent once more on a new one."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        path = parts.path or "/v1/traces"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
                     "Content-Type: application/x-protobuf\r\nContent-Length: ").encode()
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.rest = b""  # bytes read past the last answer
        self.deadline = 0.0  # when the answer being read must be in (monotonic)
        self.received = 0  # bytes of it read so far

    def send(self, body: bytes) -> None:
        message = b"".join((self.head, str(len(body)).encode(), b"\r\n\r\n", body))
        reused = self.sock is not None
        try:
            code, reason = self._exchange(message)
        except _Closed:
            if not reused:
                raise
            code, reason = self._exchange(message)
        if not 200 <= code < 300:
            raise RuntimeError(f"collector answered {code} {reason}")

    def _exchange(self, message: bytes) -> tuple[int, str]:
        if self.sock is None:
            self.sock = self._connect()
            self.rest = b""
        try:
            try:
                self.sock.settimeout(self.timeout)
                self.sock.sendall(message)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise _Closed(str(exc)) from exc
            code, reason, keep = self._answer(self.sock)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return code, reason

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        return sock

    def _answer(self, sock: socket.socket) -> tuple[int, str, bool]:
        """Read one answer: (status, reason, whether the connection stays open), within
        `timeout` in all and MAX_ANSWER bytes, whatever the collector trickles or sends."""
        self.deadline = time.monotonic() + self.timeout
        self.received = 0
        data = self.rest
        while b"\r\n\r\n" not in data:
            try:
                chunk = self._recv_some(sock)
            except ConnectionResetError as exc:
                if data:
                    raise
                raise _Closed(str(exc)) from exc
            if not chunk:
                if data:
                    raise ConnectionError("collector closed the connection mid-answer")
                raise _Closed("collector closed the connection")
            data += chunk
            if len(data) > MAX_HEAD:
                raise ValueError("collector's answer head is too long")
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, code, reason = [*lines[0].split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = self._chunked(sock, data)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            while len(data) < length:
                data += self._recv(sock)
            data = data[length:]
        else:  # a body until the connection closes: not read, the connection dropped
            keep = False
        self.rest = data
        return int(code), reason, keep

    def _chunked(self, sock: socket.socket, data: bytes) -> bytes:
        """Skip a chunked body (and its trailers); what follows it."""
        while True:
            while b"\r\n" not in data:
                data += self._recv(sock)
            line, _, data = data.partition(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            while len(data) < size + 2:
                data += self._recv(sock)
            data = data[size + 2:]
        while True:  # trailer lines, then the empty line
            while b"\r\n" not in data:
                data += self._recv(sock)
            line, _, data = data.partition(b"\r\n")
            if not line:
                return data

    def _recv_some(self, sock: socket.socket) -> bytes:
        """One recv, given what is left of the answer's time and size."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"collector did not answer within {self.timeout:g}s")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        self.received += len(chunk)
        if self.received > MAX_ANSWER:
            raise ValueError(f"collector's answer is over {MAX_ANSWER} bytes")
        return chunk

    def _recv(self, sock: socket.socket) -> bytes:
        chunk = self._recv_some(sock)
        if not chunk:
            raise ConnectionError("collector closed the connection mid-answer")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Closed(ConnectionError):
    """The collector closed the connection before answering (a kept-alive one timed out)."""


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
