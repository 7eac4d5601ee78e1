"""The trace exporters of a worker as state: kept across a reload that keeps them, replaced
when they change, shut down when dropped; a dead collector blocks nothing; the spans' OTLP
encoding is what opentelemetry-proto decodes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.carryover import assert_carry_over
from tests.otlp_receiver import decode
from tidegate.telemetry import otlp_encode as enc
from tidegate.telemetry.otel_config import parse_otel
from tidegate.telemetry.otlp_export import MAX_ANSWER, OtlpSpanExporter
from tidegate.telemetry.tracing import (
    CLOSE_WAIT,
    QUEUE,
    Batcher,
    TraceRuntime,
    provider_settings,
)

NAMESPACE = "telemetry/opentelemetry"


def section(port: int) -> dict[str, Any]:
    return {"exporters": {"otlp": [{"name": "c", "host": "127.0.0.1", "port": port,
                                    "use_http": True}]}}


def test_the_exporters_follow_the_carry_over_contract() -> None:
    def config(otel: dict[str, Any] | None) -> dict[str, Any]:
        return {"version": 3, "extra_config": {NAMESPACE: otel} if otel is not None else {},
                "endpoints": [{"endpoint": "/a", "backend": [
                    {"host": ["http://127.0.0.1:9"], "url_pattern": "/a"}]}]}

    assert_carry_over(NAMESPACE, config=config, section=section(9),
                      changed=section(10))


def test_spans_encode_as_opentelemetry_proto_decodes_them() -> None:
    trace_id = bytes(range(16))
    template = enc.SpanTemplate("/users/:id", enc.INTERNAL,
                                {"krakend.stage": "proxy", "tidegate.generation": 3})
    spans = [
        template.encode(trace_id, 7, 5, 100, 200, {"complete": True, "n": -2, "d": 0.5,
                                                   "h": ["a", "b"]}, enc.OK),
        template.encode(trace_id, 8, 0, 100, 300, None, enc.ERROR, "boom", name="/x",
                        trace_state="k=v", events=enc.event("exception", 250, {"t": "E"}))]
    resource, scope = enc.resource_scope({"service.name": "shop"}, "io.krakend.krakend-otel",
                                         "1.0")
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        enc.export_request(resource, scope, [enc.frame(spans[0]) + enc.frame(spans[1])]))
    first, second = decode(request)
    assert (first.name, first.kind, first.trace_id, first.span_id, first.parent_span_id) == (
        "/users/:id", 1, trace_id.hex(), f"{7:016x}", f"{5:016x}")
    assert first.attributes == {"krakend.stage": "proxy", "tidegate.generation": 3,
                                "complete": True, "n": -2, "d": 0.5, "h": ["a", "b"]}
    assert first.status_code == 1 and first.resource == {"service.name": "shop"}
    assert first.scope == "io.krakend.krakend-otel"
    assert (second.name, second.parent_span_id, second.status_code, second.events) == (
        "/x", "", 2, ["exception"])
    raw = request.resource_spans[0].scope_spans[0].spans[1]
    assert (raw.trace_state, raw.status.message, raw.start_time_unix_nano,
            raw.end_time_unix_nano) == ("k=v", "boom", 100, 300)


def test_a_dead_collector_blocks_no_request_and_holds_a_bounded_queue() -> None:
    """A collector that accepts connections and never answers: spans are queued at once, the
    queue stays bounded, and closing waits `CLOSE_WAIT` at most."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        dead.listen(1)
        settings = provider_settings(parse_otel(section(dead.getsockname()[1])))
        assert settings is not None
        template = enc.SpanTemplate("s", enc.INTERNAL, {})

        async def scenario() -> tuple[float, float]:
            runtime = TraceRuntime(settings)
            started = time.monotonic()
            for i in range(3 * QUEUE):
                runtime.emit(enc.frame(template.encode(bytes(16), i + 1, 0, 1, 2)))
            spent = time.monotonic() - started
            queued = runtime.processors[0].items
            assert len(queued) <= QUEUE
            started = time.monotonic()
            await runtime.close()
            return spent, time.monotonic() - started

        spent, closing = asyncio.run(scenario())
    assert spent < 3.0
    assert closing < CLOSE_WAIT + 1.0


@pytest.mark.parametrize("length", [10, 300, 20000])
def test_a_span_added_in_pieces_is_the_span_encode_gives(length: int) -> None:
    """The request path's encoding (`SpanTemplate.add` with `Attr` values, joined once by the
    exporter) decodes to the same Span as the reference `encode`, long values included."""
    trace_id = bytes(range(16))
    template = enc.SpanTemplate("/users/:id", enc.CLIENT, {"krakend.stage": "backend"})
    url = "http://127.0.0.1:8080/" + "x" * length
    values: dict[str, Any] = {"url.full": url, "server.address": "127.0.0.1:8080",
                              "http.response.status_code": 200, "n": -2, "big": 1 << 40,
                              "complete": False, "response-duration": 0.25}
    pieces = [enc.Attr("url.full").text(url), enc.Attr("server.address").text_memo(
        "127.0.0.1:8080"), enc.Attr("http.response.status_code").integer(200),
        enc.Attr("n").integer(-2), enc.Attr("big").integer(1 << 40),
        enc.Attr("complete").boolean(False), enc.Attr("response-duration").double(0.25)]
    events = enc.event("exception", 250, {"exception.type": "E"})
    reference = enc.frame(template.encode(
        trace_id, 7, 5, 100, 300, values, enc.ERROR, "boom", name="/u/7", trace_state="k=v",
        events=events))
    added: list[bytes] = []
    template.add(added, b"\x0a\x10" + trace_id + b"\x12\x08", (7).to_bytes(8, "big"),
                 enc.field(3, b"k=v") + b"\x22\x08" + (5).to_bytes(8, "big"), 100, 300, pieces,
                 events + enc.status(enc.ERROR, "boom"), enc.field(5, b"/u/7"))
    resource, scope = enc.resource_scope({"service.name": "shop"}, "s", "1")

    def spans(framed: list[bytes]) -> list[Any]:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(
            enc.export_request(resource, scope, framed))
        return list(request.resource_spans[0].scope_spans[0].spans)

    assert spans(added) == spans([reference])
    assert decode(trace_service_pb2.ExportTraceServiceRequest.FromString(
        enc.export_request(resource, scope, added)))[0].attributes["url.full"] == url


def test_the_batcher_sends_batches_and_drops_beyond_its_bound(caplog: Any) -> None:
    """A request only appends: a full batch wakes the sender at once; while the collector is
    slow, items beyond the bound are dropped and said in the log, never held."""
    sent: list[int] = []
    first = threading.Event()
    release = threading.Event()

    class Slow:
        def export(self, items: Sequence[bytes]) -> bool:
            sent.append(len(items))
            first.set()
            assert release.wait(10)
            return True

        def shutdown(self) -> None:
            pass

    batcher = Batcher(Slow(), limit=10, batch=4, delay=60.0)
    try:
        for i in range(4):
            batcher.push(bytes([i]))
        assert first.wait(10)  # a full batch does not wait for the 60 s timer
        for i in range(12):
            batcher.push(bytes([i]))
        assert len(batcher.items) == 10 and batcher.dropped == 2
        release.set()
    finally:
        batcher.shutdown(10)
    assert sent == [4, 4, 4, 2]
    assert "trace queue full (10 waiting): 2 spans dropped" in caplog.text


def _collector(listener: socket.socket, serve: Callable[[socket.socket], None],
               backlog: int) -> threading.Thread:
    """A collector on 127.0.0.1 (`serve` answers on `listener`), started in a thread."""
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    server = threading.Thread(target=serve, args=(listener,), daemon=True)
    server.start()
    return server


def _http_exporter(listener: socket.socket, timeout: float) -> OtlpSpanExporter:
    """An OTLP/HTTP exporter sending to the collector on `listener`."""
    resource, scope = enc.resource_scope({"service.name": "shop"}, "s", "1")
    return OtlpSpanExporter("c", True, f"http://127.0.0.1:{listener.getsockname()[1]}"
                            "/v1/traces", True, resource, scope, timeout)


def _one_span(span_id: int) -> bytes:
    """One request's spans for an export: a single span with id `span_id`."""
    template = enc.SpanTemplate("s", enc.INTERNAL, {})
    return enc.frame(template.encode(bytes(16), span_id, 0, 1, 2))


def test_the_http_exporter_reads_chunked_answers_and_reconnects_when_the_collector_closed(
        ) -> None:
    """A collector that answers chunked (with a trailer) and then drops the kept-alive
    connection, as an idle timeout does: the next batch goes on a new connection, not lost."""
    bodies: list[bytes] = []
    answers = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"2\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]

    def serve(listener: socket.socket) -> None:
        for answer in answers:  # one exchange per connection, then the connection closes
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
                while len(body) < length:
                    body += conn.recv(65536)
                bodies.append(body)
                conn.sendall(answer)

    with socket.socket() as listener:
        server = _collector(listener, serve, 2)
        exporter = _http_exporter(listener, 5.0)
        items = [_one_span(i + 1) for i in range(2)]
        assert exporter.export(items[:1]) and exporter.export(items[1:])
        exporter.shutdown()
        server.join(10)
    spans = [decode(trace_service_pb2.ExportTraceServiceRequest.FromString(b))[0]
             for b in bodies]
    assert [s.span_id for s in spans] == [f"{1:016x}", f"{2:016x}"]


@pytest.mark.parametrize("hostile", ["trickle", "endless"])
def test_the_http_exporter_gives_up_on_a_hostile_collector_in_bounded_time_and_memory(
        hostile: str) -> None:
    """A collector that trickles its answer a byte at a time, or announces and sends an
    endless body: the batch is dropped within the exporter's timeout, whatever it sends,
    and the exporter reads at most MAX_ANSWER bytes of it."""
    stop = threading.Event()
    sent = [0]

    def serve(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(0.2)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            try:
                if hostile == "trickle":
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" * 100:
                        if stop.is_set():
                            return
                        conn.sendall(bytes([byte]))
                        sent[0] += 1
                        stop.wait(0.05)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
                    chunk = b"x" * 65536
                    while not stop.is_set() and sent[0] < 64 << 20:
                        conn.sendall(chunk)
                        sent[0] += len(chunk)
            except OSError:
                return

    with socket.socket() as listener:
        server = _collector(listener, serve, 1)
        exporter = _http_exporter(listener, 1.0)
        started = time.monotonic()
        try:
            assert exporter.export([_one_span(1)]) is False
            took = time.monotonic() - started
        finally:
            stop.set()
            exporter.shutdown()
            server.join(10)
    assert took < 3.0
    if hostile == "endless":
        assert sent[0] < MAX_ANSWER + (8 << 20)  # it stopped reading; the rest was refused


@pytest.mark.parametrize("length", [0, 40, 90, 116, 117, 127, 128, 16300, 16400])
def test_a_span_frames_as_encode_does_at_each_size_of_its_length(length: int) -> None:
    """A span of under 128 bytes, of two length bytes and of three, with today's times:
    `SpanTemplate.add`'s frame (its tag and length, looked up by size), its times (packed
    in one piece), a text attribute (its head looked up by length while it is short) and
    a name field, joined as the batcher queues a request's spans and exported with another
    request's item, are the bytes
    `encode` and `frame` give."""
    trace_id = bytes(range(16))
    template = enc.SpanTemplate("s", enc.INTERNAL, {})
    start, end = time.time_ns(), time.time_ns() + 1
    value = "v" * length
    added: list[bytes] = []
    template.add(added, b"\x0a\x10" + trace_id + b"\x12\x08", (9).to_bytes(8, "big"), b"",
                 start, end, [enc.Attr("k").text(value)])
    reference = enc.frame(template.encode(trace_id, 9, 0, start, end, {"k": value}))
    assert b"".join(added) == reference
    assert enc.name_field(value) == enc.field(5, value.encode())
    assert enc.Attr("a.longer.key").text(value) == enc.attributes(9, {"a.longer.key": value})
    resource, scope = enc.resource_scope({"service.name": "shop"}, "s", "1")
    item = b"".join(added)
    assert enc.export_request(resource, scope, [item, item]) == enc.export_request(
        resource, scope, [reference, reference])
