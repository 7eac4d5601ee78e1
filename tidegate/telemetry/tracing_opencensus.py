"""`telemetry/opencensus` (krakend-opencensus, deprecated in KrakenD): what tidegate says about it.

tidegate traces and measures with OpenTelemetry only. None of OpenCensus's exporters speaks
OTLP (Jaeger's and Zipkin's collector APIs, the OpenCensus agent protocol, vendor APIs), so a
section cannot be applied as written: each part gets a warning that says it is not applied and
what the `telemetry/opentelemetry` equivalent is, where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tidegate.errors import JsonPath

NAMESPACE = "telemetry/opencensus"

_VIA_COLLECTOR = ("is not applied: send OTLP (`telemetry/opentelemetry` exporters.otlp) to an "
                  "OpenTelemetry Collector that has the {what} exporter")
_EXPORTERS: dict[str, str] = {
    "zipkin": _VIA_COLLECTOR.format(what="zipkin"),
    "datadog": _VIA_COLLECTOR.format(what="datadog"),
    "stackdriver": _VIA_COLLECTOR.format(what="googlecloud"),
    "xray": _VIA_COLLECTOR.format(what="awsxray"),
    "influxdb": ("is not applied: use `telemetry/influx`, or `telemetry/opentelemetry` through "
                 "a Collector with the influxdb exporter"),
    "ocagent": ("is not applied: the OpenCensus agent protocol is not OTLP; point "
                "`telemetry/opentelemetry` exporters.otlp at the collector's OTLP receiver "
                "(port 4317, or 4318 with use_http)"),
    "prometheus": ("is not applied: use `telemetry/opentelemetry` exporters.prometheus "
                   "(krakend-otel's metric names, not OpenCensus's)"),
    "logger": "is not applied: tidegate has no span logger",
}


def _jaeger(cfg: Any) -> str:
    host = "the Jaeger host"
    if isinstance(cfg, Mapping):
        for key in ("endpoint", "agent_endpoint"):
            value = cfg.get(key)
            if isinstance(value, str) and value:
                host = (urlsplit(value if "://" in value else f"//{value}").hostname
                        or host)
                break
    return ("is not applied: Jaeger (1.35 and later) receives OTLP: use "
            "`telemetry/opentelemetry` with exporters.otlp "
            f"[{{\"name\": \"jaeger\", \"host\": \"{host}\", \"port\": 4318, "
            "\"use_http\": true}]")


def warnings(section: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """(key path within the section, message): the section, then each exporter."""
    hints: list[str] = []
    rate = section.get("sample_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        hints.append(f"sample_rate {rate} is trace_sample_rate {rate / 100:g}")
    period = section.get("reporting_period")
    if isinstance(period, int) and not isinstance(period, bool):
        hints.append(f"reporting_period is metric_reporting_period ({period})")
    layers = section.get("enabled_layers")
    if isinstance(layers, Mapping) and layers:
        hints.append("enabled_layers router/pipe/backend are layers.global/proxy/backend")
    out: list[tuple[JsonPath, str]] = [((), (
        "component `telemetry/opencensus` is not applied: tidegate traces and measures with "
        "`telemetry/opentelemetry` (OpenCensus is deprecated and none of its exporters speaks "
        "OTLP)" + (f"; there, {'; '.join(hints)}" if hints else "")))]
    exporters = section.get("exporters")
    if isinstance(exporters, Mapping):
        for name, cfg in exporters.items():
            message = _jaeger(cfg) if name == "jaeger" else _EXPORTERS.get(
                name, "is not applied")
            out.append((("exporters", name), f"OpenCensus exporter `{name}` {message}"))
    return out
