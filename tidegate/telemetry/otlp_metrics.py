"""OTLP metrics push: the node's aggregate, every ``metric_reporting_period``, from the supervisor.

krakend-otel pushes each process's metrics with a periodic reader per OTLP exporter. tidegate's
workers already ship their series to the supervisor, which sums them (`aggregate.NodeMetrics`):
the supervisor pushes the node's sums once per period (an exporter's
``custom_metric_reporting_period`` when it has one) with the SDK's OTLP metric exporter, as
cumulative sums and histograms under krakend-otel's names and attributes. An export runs in a
thread, bounded by `TIMEOUT`; a failing collector costs that period's export, nothing else. The
pushers follow each applied configuration: unchanged exporters keep their timers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tidegate import __version__
from tidegate.config.model import ServiceConfig
from tidegate.telemetry.aggregate import NodeMetrics
from tidegate.telemetry.otel_config import from_service
from tidegate.telemetry.recorder import HISTOGRAM, FamilyKey
from tidegate.telemetry.tracing import SCOPE

log = logging.getLogger("tidegate")

TIMEOUT = 5.0  # seconds per export


@dataclass(frozen=True, slots=True)
class MetricsTarget:
    """One exporter that takes metrics, and how often it is pushed."""

    name: str
    use_http: bool
    endpoint: str
    insecure: bool
    period: float
    service: tuple[str, str, str]  # service name, version, deployment environment


def metrics_targets(service: ServiceConfig | None) -> tuple[MetricsTarget, ...]:
    """The OTLP exporters of `service` that push metrics."""
    from tidegate.telemetry.tracing import trace_target

    cfg = from_service(service.extra_config, service.name) if service is not None else None
    if cfg is None:
        return ()
    out = []
    for exporter in cfg.otlp:
        if exporter.disable_metrics:
            continue
        target = trace_target(exporter)
        endpoint = (target.endpoint.removesuffix("/v1/traces") + "/v1/metrics"
                    if target.use_http else target.endpoint)
        period = exporter.custom_metric_reporting_period or cfg.metric_reporting_period
        out.append(MetricsTarget(exporter.name, target.use_http, endpoint, target.insecure,
                                 float(max(period, 1)), (cfg.service_name,
                                                         cfg.service_version, cfg.deploy_env)))
    return tuple(out)


def metrics_data(families: dict[FamilyKey, dict[tuple[str, ...], list[float]]],
                 service: tuple[str, str, str], start_ns: int, now_ns: int) -> Any:
    """The SDK's MetricsData of the node's families (cumulative since `start_ns`)."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    cumulative = AggregationTemporality.CUMULATIVE
    metrics = []
    for (name, kind, labels, bounds), series in sorted(families.items()):
        if kind == HISTOGRAM:
            hpoints = [HistogramDataPoint(
                dict(zip(labels, values, strict=False)), start_ns, now_ns,
                int(sum(numbers[:-1])), numbers[-1], [int(n) for n in numbers[:-1]],
                list(bounds), None, None)  # type: ignore[arg-type]  # min, max: not kept
                for values, numbers in series.items()]
            metrics.append(Metric(name, None, "s" if name.endswith("duration") else None,
                                  Histogram(hpoints, cumulative)))
        else:
            npoints = [NumberDataPoint(dict(zip(labels, values, strict=False)), start_ns,
                                       now_ns, numbers[0])
                       for values, numbers in series.items()]
            metrics.append(Metric(name, None, None, Sum(npoints, cumulative, True)))
    name, version, env = service
    attrs = {"service.name": name, "service.version": version or __version__}
    if env:
        attrs["deployment.environment"] = env
    return MetricsData([ResourceMetrics(Resource.create(attrs), [ScopeMetrics(
        InstrumentationScope(SCOPE, __version__), metrics, "")], "")])


def _exporter(target: MetricsTarget) -> Any:
    if target.use_http:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpExporter,
        )
        return HttpExporter(endpoint=target.endpoint, timeout=TIMEOUT)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter as GrpcExporter,
    )
    return GrpcExporter(endpoint=target.endpoint, insecure=target.insecure, timeout=TIMEOUT)


class OtlpMetricsPush:
    """One timer per metrics target of the serving configuration."""

    def __init__(self, node: NodeMetrics, current: Callable[[], ServiceConfig | None]) -> None:
        self.node = node
        self._current = current
        self._start_ns = time.time_ns()
        self._tasks: dict[MetricsTarget, asyncio.Task[None]] = {}

    def follow(self, *_: object) -> None:
        """Match the timers to the serving configuration (a journal listener)."""
        wanted = set(metrics_targets(self._current()))
        for target in list(self._tasks):
            if target not in wanted:
                self._tasks.pop(target).cancel()
        for target in wanted - self._tasks.keys():
            self._tasks[target] = asyncio.ensure_future(self._push(target))

    async def _push(self, target: MetricsTarget) -> None:
        exporter = await asyncio.to_thread(_exporter, target)
        try:
            while True:
                await asyncio.sleep(target.period)  # the reporting period: a timer
                data = metrics_data(self.node.families(), target.service, self._start_ns,
                                    time.time_ns())
                try:
                    await asyncio.to_thread(exporter.export, data, TIMEOUT * 1000)
                except Exception as exc:  # a collector's failure is never the gateway's
                    log.warning("OTLP metrics exporter %s: %s", target.name, exc)
        finally:
            exporter.shutdown(timeout_millis=1000)

    async def close(self) -> None:
        """Stop every timer."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
