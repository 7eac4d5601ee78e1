"""The trace provider of a worker as state: kept across a reload that keeps its exporters,
replaced when they change, shut down when dropped; a dead collector blocks nothing."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from tests.carryover import assert_carry_over
from tidegate.telemetry.otel_config import parse_otel
from tidegate.telemetry.tracing import CLOSE_WAIT, QUEUE, TraceRuntime, provider_settings

NAMESPACE = "telemetry/opentelemetry"


def section(port: int) -> dict[str, Any]:
    return {"exporters": {"otlp": [{"name": "c", "host": "127.0.0.1", "port": port,
                                    "use_http": True}]}}


def test_the_provider_follows_the_carry_over_contract() -> None:
    def config(otel: dict[str, Any] | None) -> dict[str, Any]:
        return {"version": 3, "extra_config": {NAMESPACE: otel} if otel is not None else {},
                "endpoints": [{"endpoint": "/a", "backend": [
                    {"host": ["http://127.0.0.1:9"], "url_pattern": "/a"}]}]}

    assert_carry_over(NAMESPACE, config=config, section=section(9),
                      changed=section(10))


def test_a_dead_collector_blocks_no_request_and_holds_a_bounded_queue() -> None:
    """A collector that accepts connections and never answers: spans end at once, the queue
    stays bounded, and closing the provider waits `CLOSE_WAIT` at most."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        dead.listen(1)
        settings = provider_settings(parse_otel(section(dead.getsockname()[1])))
        assert settings is not None

        async def scenario() -> tuple[float, float]:
            runtime = TraceRuntime(settings)
            started = time.monotonic()
            for i in range(3 * QUEUE):
                runtime.tracer.start_span(f"s{i}").end()
            spent = time.monotonic() - started
            queue = runtime.provider._active_span_processor._span_processors[0]
            assert len(queue._batch_processor._queue) <= QUEUE
            started = time.monotonic()
            await runtime.close()
            return spent, time.monotonic() - started

        spent, closing = asyncio.run(scenario())
    assert spent < 3.0
    assert closing < CLOSE_WAIT + 1.0
