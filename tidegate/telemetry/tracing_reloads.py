"""The reload story as traces: one span per start, save or SIGHUP outcome, from the supervisor.

The supervisor's `ReloadJournal` is the source (the same record metrics and the status page
read). Each event becomes a ``tidegate.reload`` span (from the start of the build to the
outcome) with a span event ``config applied|rejected|unchanged``, both carrying the generation
id and config hash; a rejected save has status ERROR and the located error (file, line, JSON
path). They go to the OTLP exporters of the configuration the node serves, every one of them
(reloads are rare: no sampling), unless that configuration sends no traces (no exporter with
traces, ``trace_sample_rate`` 0 or ``layers.global.disable_traces``). The supervisor's provider
is replaced when those exporters change and shut down when a configuration drops them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from random import getrandbits
from typing import Any

from tidegate.config.model import ServiceConfig
from tidegate.telemetry.otel_config import from_service
from tidegate.telemetry.otlp_encode import ERROR, INTERNAL, OK, SpanTemplate, frame
from tidegate.telemetry.otlp_encode import event as otlp_event
from tidegate.telemetry.reloads import ReloadEvent
from tidegate.telemetry.tracing import ProviderSettings, TraceRuntime, provider_settings

SPAN = "tidegate.reload"
_TEMPLATE = SpanTemplate(SPAN, INTERNAL, {})


def reload_attributes(event: ReloadEvent) -> dict[str, Any]:
    """The span's (and its event's) attributes; absent values are left out (OTLP has no null)."""
    attrs: dict[str, Any] = {"tidegate.reload.result": event.result,
                             "tidegate.reload.reason": event.reason}
    if event.generation is not None:
        attrs["tidegate.generation"] = event.generation
    if event.config_hash is not None:
        attrs["tidegate.config_hash"] = event.config_hash
    if event.build_seconds is not None:
        attrs["tidegate.reload.build_seconds"] = event.build_seconds
    if event.diff is not None:
        attrs["tidegate.reload.endpoints.added"] = list(event.diff.added)
        attrs["tidegate.reload.endpoints.removed"] = list(event.diff.removed)
        attrs["tidegate.reload.endpoints.changed"] = list(event.diff.changed)
    for key, value in (event.error or {}).items():
        if isinstance(value, str | int) and not isinstance(value, bool):
            attrs[f"tidegate.reload.error.{key}"] = value
    return attrs


class ReloadTraces:
    """A journal listener: `record` each event as a span; `close` at the supervisor's stop."""

    def __init__(self, current: Callable[[], ServiceConfig | None]) -> None:
        self._current = current
        self._runtime: TraceRuntime | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def record(self, event: ReloadEvent) -> None:
        """Send `event` as a span (called in the supervisor's loop, never raises into it:
        the journal logs a failing listener)."""
        runtime = self._provider()
        if runtime is None:
            return
        end = int(event.time * 1e9)
        start = end - int((event.build_seconds or 0.0) * 1e9)
        attrs = reload_attributes(event)
        code, message = OK, ""
        if event.result == "rejected":
            error = event.error or {}
            code, message = ERROR, str(error.get("error") or error.get("message") or "rejected")
        runtime.emit(frame(_TEMPLATE.encode(
            getrandbits(128).to_bytes(16, "big"), getrandbits(64) or 1, 0, start, end, attrs,
            code, message, events=otlp_event(f"config {event.result}", end, attrs))))

    def _settings(self) -> ProviderSettings | None:
        service = self._current()
        cfg = from_service(service.extra_config, service.name) if service else None
        if cfg is None or cfg.trace_sample_rate <= 0.0 or cfg.layers.global_.disable_traces:
            return None
        return provider_settings(cfg)

    def _provider(self) -> TraceRuntime | None:
        """The provider of the serving configuration's exporters (replaced when they
        changed)."""
        settings = self._settings()
        if self._runtime is not None and self._runtime.settings != settings:
            self._retire(self._runtime)
            self._runtime = None
        if settings is not None and self._runtime is None:
            self._runtime = TraceRuntime(settings)
        return self._runtime

    def _retire(self, runtime: TraceRuntime) -> None:
        task = asyncio.ensure_future(runtime.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Ship the last spans and stop the exporters (bounded by `TraceRuntime.close`)."""
        if self._runtime is not None:
            self._retire(self._runtime)
            self._runtime = None
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
