"""`/metrics` of `telemetry/opentelemetry`'s `exporters.prometheus[]`, over the node's aggregate.

Rendered by prometheus-client from a custom collector, named as the OpenTelemetry Go Prometheus
exporter names krakend-otel's instruments, so existing dashboards work: dots and dashes become
underscores, counters end in ``_total``, histograms give ``_bucket{le}``, ``_sum``, ``_count``;
every series carries ``otel_scope_name="io.krakend.krakend-otel"`` and ``otel_scope_version``;
``target_info`` carries the service's resource (``service_name``, ``service_version``,
``deployment_environment``). Next to them, tidegate's reload metrics.

`process_metrics` adds the process collector (``process_*``); `go_metrics`, the runtime's own
(for a Python process: ``python_info`` and ``python_gc_*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from tidegate import __version__
from tidegate.telemetry.aggregate import NodeMetrics
from tidegate.telemetry.otel_config import OtelConfig, PrometheusExporter
from tidegate.telemetry.recorder import HISTOGRAM
from tidegate.telemetry.reload_metrics import BUILD_BUCKETS, RESULTS, ReloadMetrics

SCOPE_NAME = "io.krakend.krakend-otel"
SCOPE_LABELS = ("otel_scope_name", "otel_scope_version")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def prom_name(name: str) -> str:
    """An OpenTelemetry instrument or attribute name as a Prometheus name."""
    out = _INVALID.sub("_", name)
    return f"_{out}" if out[:1].isdigit() else out


def go_float(value: float) -> str:
    """A bucket bound as Go writes it (``4096``, ``0.01``, ``+Inf``)."""
    if value == float("inf"):
        return "+Inf"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _cumulative(bounds: tuple[float, ...], numbers: list[float]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0.0
    for i, c in enumerate(numbers[:-1]):
        total += c
        out.append((go_float(bounds[i]) if i < len(bounds) else "+Inf", total))
    return out


class NodeCollector(Collector):
    """The node's krakend-otel series, target_info and the reload metrics."""

    def __init__(self, node: NodeMetrics | None, reloads: ReloadMetrics | None,
                 otel: OtelConfig | None) -> None:
        self.node = node  # None: the exporter's `disable_metrics` (no krakend-otel series)
        self.reloads = reloads
        self.otel = otel

    def collect(self) -> Iterator[Metric]:
        yield from self._target_info()
        by_name: dict[tuple[str, str], Metric] = {}
        families = self.node.families() if self.node is not None else {}
        for (name, kind, labels, bounds), series in sorted(families.items()):
            names = [prom_name(label) for label in labels] + list(SCOPE_LABELS)
            pname = prom_name(name)
            if kind == HISTOGRAM:
                hist = HistogramMetricFamily(pname, "", labels=names)
                for values, numbers in sorted(series.items()):
                    hist.add_metric([*values, SCOPE_NAME, ""], _cumulative(bounds, numbers),
                                    numbers[-1])
                metric: Metric = hist
            else:
                counter = CounterMetricFamily(pname, "", labels=names)
                for values, numbers in sorted(series.items()):
                    counter.add_metric([*values, SCOPE_NAME, ""], numbers[0])
                metric = counter
            # families of one name with other label sets (a reload changed them) merge
            same = by_name.get((metric.name, metric.type))
            if same is None:
                by_name[(metric.name, metric.type)] = metric
            else:
                same.samples.extend(metric.samples)
        yield from by_name.values()
        if self.reloads is not None:
            yield from reload_families(self.reloads)

    def _target_info(self) -> Iterator[Metric]:
        cfg = self.otel
        attrs = {"service_name": cfg.service_name if cfg else "KrakenD",
                 "service_version": cfg.service_version if cfg else "",
                 "telemetry_sdk_language": "python", "telemetry_sdk_name": "tidegate",
                 "telemetry_sdk_version": __version__}
        if cfg is not None and cfg.deploy_env:
            attrs["deployment_environment"] = cfg.deploy_env
        info = GaugeMetricFamily("target_info", "Target metadata", labels=list(attrs))
        info.add_metric(list(attrs.values()), 1)
        yield info
        scope = GaugeMetricFamily("otel_scope_info", "Instrumentation Scope metadata",
                                  labels=list(SCOPE_LABELS))
        scope.add_metric([SCOPE_NAME, ""], 1)
        yield scope


def reload_families(reloads: ReloadMetrics) -> Iterator[Metric]:
    """tidegate's reload metrics."""
    if reloads.config_hash is not None:
        info = GaugeMetricFamily("tidegate_config_info",
                                 "The configuration this node serves (value 1).",
                                 labels=["hash", "generation"])
        info.add_metric([reloads.config_hash, str(reloads.generation or 0)], 1)
        yield info
    total = CounterMetricFamily("tidegate_reloads", "Reload outcomes (a rejected save counts "
                                "once per node).", labels=["result"])
    for result in RESULTS:
        total.add_metric([result], reloads.reloads.get(result, 0))
    yield total
    build = HistogramMetricFamily("tidegate_reload_build_seconds",
                                  "Time to parse, render, validate and trial-build a config.")
    build.add_metric([], _cumulative(BUILD_BUCKETS, [*reloads.build_buckets, 0.0]),
                     reloads.build_sum)
    yield build
    if reloads.last_success is not None:
        last = GaugeMetricFamily("tidegate_last_reload_success_timestamp_seconds",
                                 "Unix time of the last applied configuration.")
        last.add_metric([], reloads.last_success)
        yield last


def registry_for(exporter: PrometheusExporter, node: NodeMetrics,
                 reloads: ReloadMetrics | None, otel: OtelConfig | None) -> CollectorRegistry:
    """What one exporter's `/metrics` renders."""
    registry = CollectorRegistry(auto_describe=False)
    # krakend-otel: an exporter with `disable_metrics` is not given the meter's readings
    registry.register(NodeCollector(None if exporter.disable_metrics else node, reloads, otel))
    if exporter.process_metrics:
        ProcessCollector(registry=registry)
    if exporter.go_metrics:
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry
