"""The supervisor's telemetry endpoints, following the configuration across reloads.

After every applied configuration (`configure`): one listener per `exporters.prometheus[]`
of ``telemetry/opentelemetry`` (``/metrics``) and one for ``telemetry/metrics`` on its
`listen_address` (``/__stats``) unless `endpoint_disabled`; listeners whose address went away
stop, a changed address rebinds, an unchanged one keeps its socket. ``telemetry/influx`` pushes
from here too. A bind failure is logged and that listener stays down (KrakenD's behaviour).

Routes added with `add_route` (the status page) live on the *primary* listener: the first
Prometheus exporter's, else the ``telemetry/metrics`` one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tidegate.errors import ConfigError
from tidegate.telemetry.aggregate import NodeMetrics
from tidegate.telemetry.influx import InfluxPusher
from tidegate.telemetry.listener import (
    Handler,
    TelemetryListener,
    TelemetryRequest,
    TelemetryResponse,
)
from tidegate.telemetry.metrics_config import (
    INFLUX,
    METRICS,
    InfluxConfig,
    LegacyMetrics,
    parse_influx,
    parse_legacy,
    split_address,
)
from tidegate.telemetry.otel_config import OtelConfig, PrometheusExporter, from_service
from tidegate.telemetry.reload_metrics import ReloadMetrics
from tidegate.telemetry.reloads import ReloadJournal
from tidegate.telemetry.stats import stats_json, stats_view

log = logging.getLogger("tidegate")


class TelemetryServers:
    """Listeners, their routes and the influx push, as the current configuration wants."""

    def __init__(self, node: NodeMetrics, journal: ReloadJournal) -> None:
        self.node = node
        self.journal = journal
        self.reloads = ReloadMetrics.following(journal)
        self.listeners: dict[str, TelemetryListener] = {}
        self.primary: TelemetryListener | None = None
        self.otel: OtelConfig | None = None
        self.legacy: LegacyMetrics | None = None
        self.influx: InfluxPusher | None = None
        self._influx_config: InfluxConfig | None = None
        self._extra: dict[str, tuple[Handler, bool]] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # the status page's hook ----------------------------------------------------------------
    def add_route(self, path: str, handler: Handler, *, prefix: bool = False) -> None:
        """Serve `path` on the primary listener, now and after every reload."""
        self._extra[path] = (handler, prefix)
        if self.primary is not None:
            self.primary.add_route(path, handler, prefix=prefix)

    # following the configuration ---------------------------------------------------------
    def configure_soon(self, data: Mapping[str, Any]) -> None:
        """`configure` in a task (from a journal listener, which cannot await)."""
        task = asyncio.ensure_future(self.configure(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def configure(self, data: Mapping[str, Any]) -> None:
        """Start, rebind or stop listeners for this (validated) configuration."""
        async with self._lock:
            extra = data.get("extra_config") or {}
            try:
                otel = from_service(extra, str(data.get("name") or ""))
                legacy = parse_legacy(extra[METRICS]) if METRICS in extra else None
                influx = parse_influx(extra[INFLUX]) if INFLUX in extra else None
            except ConfigError as exc:  # validated before; never stop serving over telemetry
                log.error("telemetry: %s", exc)
                return
            self.otel, self.legacy = otel, legacy
            wanted: dict[str, tuple[str, int, dict[str, Handler]]] = {}
            for exporter in otel.prometheus if otel is not None else ():
                wanted[f"prometheus exporter {exporter.name!r}"] = (
                    exporter.host, exporter.port, {"/metrics": self._metrics_handler(exporter)})
            if legacy is not None and not legacy.endpoint_disabled:
                host, port = split_address(legacy.listen_address)
                stats = self._stats_handler(legacy)
                wanted["telemetry/metrics"] = (host, port, {"/__stats": stats,
                                                            "/__stats/": stats})
            for name in [n for n in self.listeners if n not in wanted]:
                await self.listeners.pop(name).stop()
            self.primary = None
            for name, (host, port, routes) in wanted.items():
                listener = self.listeners.get(name)
                if listener is None:
                    listener = self.listeners[name] = TelemetryListener(name)
                listener.routes.clear()
                listener.prefixes.clear()
                for path, handler in routes.items():
                    listener.add_route(path, handler)
                if self.primary is None:
                    self.primary = listener
                    for path, (handler, prefix) in self._extra.items():
                        listener.add_route(path, handler, prefix=prefix)
                await listener.start(host, port)
            await self._configure_influx(influx, legacy)

    async def _configure_influx(self, config: InfluxConfig | None,
                                legacy: LegacyMetrics | None) -> None:
        if config == self._influx_config and self.influx is not None:
            return
        if self.influx is not None:
            await self.influx.stop()
            self.influx = None
        self._influx_config = config
        if config is not None:
            self.influx = InfluxPusher(
                config, self.node,
                router=legacy is None or not legacy.router_disabled,
                proxy=legacy is None or not legacy.proxy_disabled,
                backend=legacy is None or not legacy.backend_disabled)
            self.influx.start()

    async def close(self) -> None:
        """Stop everything (the supervisor is stopping)."""
        async with self._lock:
            for listener in self.listeners.values():
                await listener.stop()
            self.listeners.clear()
            self.primary = None
            if self.influx is not None:
                await self.influx.stop()
                self.influx = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # handlers ----------------------------------------------------------------------------
    def _metrics_handler(self, exporter: PrometheusExporter) -> Handler:
        # prometheus-client is imported by the first configuration with an exporter
        from prometheus_client import generate_latest

        from tidegate.telemetry.prometheus import CONTENT_TYPE, registry_for

        registry = registry_for(exporter, self.node, self.reloads, self.otel)

        async def metrics(request: TelemetryRequest) -> TelemetryResponse:
            return TelemetryResponse(200, generate_latest(registry), CONTENT_TYPE)

        return metrics

    def _stats_handler(self, legacy: LegacyMetrics) -> Handler:
        async def stats(request: TelemetryRequest) -> TelemetryResponse:
            view = stats_view(self.node, router=not legacy.router_disabled,
                              proxy=not legacy.proxy_disabled,
                              backend=not legacy.backend_disabled)
            body = orjson.dumps(stats_json(view), option=orjson.OPT_INDENT_2)
            return TelemetryResponse(200, body, "application/json; charset=utf-8")

        return stats
