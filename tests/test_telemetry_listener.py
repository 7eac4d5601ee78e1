"""The supervisor's telemetry listener and the node aggregate, in process over 127.0.0.1."""

from __future__ import annotations

import asyncio

from tidegate.telemetry.aggregate import NodeMetrics, quantile
from tidegate.telemetry.listener import (
    MAX_HEADER,
    TelemetryListener,
    TelemetryRequest,
    TelemetryResponse,
)


async def raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return out


def test_routes_methods_and_bounds() -> None:
    async def scenario() -> None:
        listener = TelemetryListener("test listener")

        async def hello(req: TelemetryRequest) -> TelemetryResponse:
            return TelemetryResponse(200, f"hi {req.query}".encode())

        listener.add_route("/hello", hello)
        assert await listener.start("127.0.0.1", 0)
        port = listener.bound_port
        assert port is not None
        answer = await raw(port, b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"hi x=1")
        # keep-alive: two requests on one connection
        two = await raw(port, b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
                              b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert two.count(b"HTTP/1.1 ") == 2 and b"404 Not Found" in two
        post = await raw(port, b"POST /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert post.startswith(b"HTTP/1.1 405")
        body = await raw(port, b"GET /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        assert body.startswith(b"HTTP/1.1 413")
        huge = await raw(port, b"GET /hello HTTP/1.1\r\nX: " + b"a" * MAX_HEADER + b"\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 431")
        garbage = await raw(port, b"NOT HTTP\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400")
        # a second listener on the same address: logged, not raised
        other = TelemetryListener("busy")
        assert not await other.start("127.0.0.1", port)
        await listener.stop()
        try:
            await raw(port, b"GET /hello HTTP/1.1\r\n\r\n")
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("the stopped listener still answers")

    asyncio.run(scenario())


def family(values: list[float]) -> list[object]:
    return ["http.server.duration", "histogram",
            ["http.request.method", "url.scheme", "http.route", "http.response.status_code"],
            [0.1, 1.0], [[["GET", "http", "/a", "200"], values]]]


def test_aggregate_sums_workers_and_keeps_the_dead_ones_counts() -> None:
    node = NodeMetrics()
    node.update(1, [family([3, 1, 0, 0.7])])
    node.update(2, [family([1, 0, 0, 0.05])])
    [ep] = node.endpoints()
    assert (ep.method, ep.route, ep.requests, ep.errors, ep.statuses) == (
        "GET", "/a", 5, 0, {200: 5})
    node.retire(1)
    node.update(3, [family([1, 0, 0, 0.01])])  # its replacement starts from zero
    [ep] = node.endpoints()
    assert ep.requests == 6
    assert node.timestamp is not None
    node.update(2, [])  # a heartbeat keeps the values
    assert node.endpoints()[0].requests == 6


def test_quantile_interpolates_within_buckets() -> None:
    assert quantile(0.5, (1.0, 2.0), [0, 10, 0]) == 1.5
    assert quantile(0.99, (1.0, 2.0), [0, 0, 5]) == 2.0  # +Inf: the last finite bound
    assert quantile(0.5, (1.0,), [0, 0]) is None
