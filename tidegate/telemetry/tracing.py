"""The trace pipeline of a worker: one batching queue per OTLP exporter, kept across
reloads while its settings do not change.

krakend-otel builds one global provider with a batching processor per OTLP exporter. tidegate
builds one per worker process, leased through the component seam's state: a reload that keeps
the exporters and the service's identity keeps them (and the spans queued in them); one that
changes or drops them shuts the old ones down after the old generation drained. Spans arrive
already encoded (`otlp_encode`): the SDK's tracer would cost more per span than the request.

A dead or slow collector never blocks a request nor grows memory: spans wait in a bounded
queue (`QUEUE` requests' spans; beyond it new ones are dropped) that one background thread per
exporter ships every `DELAY_MS` (or as soon as `BATCH` wait), each export bounded by
`EXPORT_TIMEOUT` seconds. Sampling is decided by
the stages (`tidegate.components.telemetry_traces`): what is emitted is exported.

A request's spans are queued as one bytes object, joined from their pieces when the request
emits them (one C call, in `trace_spans.Sink`): the queue holds one object per request, none
of them a container the garbage collector tracks, instead of up to `BATCH` lists of dozens of
small bytes each, alive for up to a second among the requests' own allocations (decision 83).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from tidegate import __version__
from tidegate.telemetry.otel_config import OtelConfig, OtlpExporter
from tidegate.telemetry.otlp_encode import resource_scope

log = logging.getLogger("tidegate")

# krakend-otel's instrumentation scope name, so dashboards filtering on it keep working.
SCOPE = "io.krakend.krakend-otel"
QUEUE = 4096          # items (a request's spans) waiting per exporter, at most (a few MiB)
BATCH = 512           # items per export request: the timer, not each item, wakes the sender
DELAY_MS = 1000       # a span reaches the collector within about a second
EXPORT_TIMEOUT = 5.0  # seconds per export attempt (a dead collector: retries stop there)
CLOSE_WAIT = 6.0      # seconds a reload or a stop waits for the last spans to leave
WARN_EVERY = 60.0     # seconds between two warnings of spans dropped on a full queue


class Exporter(Protocol):
    """What a `Batcher` sends with (`otlp_export.OtlpSpanExporter`)."""

    def export(self, items: Sequence[bytes]) -> bool: ...

    def shutdown(self) -> None: ...


class Batcher:
    """One exporter's bounded queue and the thread that ships it: what the SDK's
    BatchSpanProcessor does (a request only appends; every `delay` seconds, or as soon as
    `batch` items wait, the thread sends them `batch` at a time), without a span object,
    a context switch or a lock on the request path. Beyond `limit` items waiting, new ones
    are dropped and counted (a dead collector costs spans, never memory)."""

    def __init__(self, exporter: Exporter, limit: int = QUEUE, batch: int = BATCH,
                 delay: float = DELAY_MS / 1000) -> None:
        self.exporter = exporter
        self.items: deque[bytes] = deque()
        self.limit = limit
        self.batch = batch
        self.delay = delay
        self.dropped = 0
        self._warned = 0.0
        self._stopping = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otlp-export", daemon=True)
        self._thread.start()

    def push(self, item: bytes) -> None:
        """Queue one item (a request's framed spans, joined); never blocks."""
        items = self.items
        if len(items) >= self.limit:
            self.dropped += 1
            return
        items.append(item)
        if len(items) == self.batch:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.delay)
            self._wake.clear()
            self._ship()
        self._ship()

    def _ship(self) -> None:
        """Send what waits, `batch` items per export (the thread's)."""
        items = self.items
        while items:
            count = min(self.batch, len(items))
            try:
                sent = self.exporter.export([items.popleft() for _ in range(count)])
            except Exception:  # an exporter's bug must not stop the thread
                log.exception("exporting spans failed")
                sent = False
            if not sent and self._stopping:  # stopping with a failing collector: drop
                items.clear()
        if self.dropped:
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY:
                self._warned = now
                log.warning("trace queue full (%d waiting): %d spans dropped",
                            self.limit, self.dropped)
                self.dropped = 0

    def shutdown(self, timeout: float = CLOSE_WAIT) -> None:
        """Ship what is queued and stop the thread (blocks up to `timeout` seconds)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self.exporter.shutdown()


@dataclass(frozen=True, slots=True)
class TraceTarget:
    """Where one OTLP exporter sends spans: ``http://h:4318/v1/traces`` or ``h:4317``."""

    name: str
    use_http: bool
    endpoint: str
    insecure: bool


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Everything a provider depends on (its state fingerprint): the resource and exporters."""

    service_name: str
    service_version: str
    deploy_env: str
    targets: tuple[TraceTarget, ...]

    @property
    def fingerprint(self) -> dict[str, Any]:
        """JSON-able form, for `Build.state`."""
        return {"service": [self.service_name, self.service_version, self.deploy_env],
                "targets": [[t.name, t.use_http, t.endpoint, t.insecure] for t in self.targets]}


def trace_target(exporter: OtlpExporter) -> TraceTarget:
    """krakend-otel's endpoint rule: ``host:port``; a ``https://`` host means TLS, anything
    else plain text."""
    host = exporter.host
    secure = host.startswith("https://")
    if host.startswith(("http://", "https://")):
        host = urlsplit(host).hostname or host
    hostport = f"[{host}]:{exporter.port}" if ":" in host else f"{host}:{exporter.port}"
    if exporter.use_http:
        scheme = "https" if secure else "http"
        return TraceTarget(exporter.name, True, f"{scheme}://{hostport}/v1/traces", not secure)
    return TraceTarget(exporter.name, False, hostport, not secure)


def provider_settings(cfg: OtelConfig) -> ProviderSettings | None:
    """The provider `cfg` asks for, or None when no exporter takes traces."""
    targets = tuple(trace_target(e) for e in cfg.otlp if not e.disable_traces)
    if not targets:
        return None
    return ProviderSettings(cfg.service_name, cfg.service_version, cfg.deploy_env, targets)


class TraceRuntime:
    """A worker's trace pipeline for one set of exporters: `emit` queues encoded spans in
    each exporter's `Batcher`; `close` flushes and stops their threads."""

    def __init__(self, settings: ProviderSettings,
                 exporters: Sequence[Exporter] | None = None) -> None:
        from tidegate.telemetry.otlp_export import OtlpSpanExporter

        self.settings = settings
        attrs: dict[str, str] = {"service.name": settings.service_name,
                                 "service.version": settings.service_version or __version__,
                                 "telemetry.sdk.name": "tidegate",
                                 "telemetry.sdk.language": "python"}
        if settings.deploy_env:
            attrs["deployment.environment"] = settings.deploy_env
        resource, scope = resource_scope(attrs, SCOPE, __version__)
        if exporters is None:
            exporters = [OtlpSpanExporter(t.name, t.use_http, t.endpoint, t.insecure,
                                          resource, scope, EXPORT_TIMEOUT)
                         for t in settings.targets]
        self.processors = [Batcher(exporter) for exporter in exporters]
        # `emit(item)`: queue `item`, one or more `otlp_encode.frame`d spans joined.
        self.emit: Callable[[bytes], None]
        if len(self.processors) == 1:
            self.emit = self.processors[0].push
        else:
            ends = [p.push for p in self.processors]

            def emit(item: bytes) -> None:
                for end in ends:
                    end(item)

            self.emit = emit
        self.closed = False

    async def close(self) -> None:
        """Ship what is queued and stop the export threads, off the event loop; a dead
        collector delays this by `CLOSE_WAIT` at most (the rest is dropped)."""
        if self.closed:
            return
        self.closed = True
        done = asyncio.get_running_loop().create_future()

        def shutdown() -> None:
            try:
                for processor in self.processors:
                    processor.shutdown()
            except Exception:  # an exporter's failure must not stop a reload
                log.exception("stopping the trace exporters failed")
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is already gone
                    done.get_loop().call_soon_threadsafe(_settle, done)

        threading.Thread(target=shutdown, name="otlp-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), CLOSE_WAIT)
        except TimeoutError:
            log.warning("trace exporters still busy after %.0f s: their queued spans are "
                        "dropped", CLOSE_WAIT)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
