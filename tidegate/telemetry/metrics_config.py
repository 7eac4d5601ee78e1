"""What a configuration asks the metrics recorder to do, from every section that wants metrics.

Three namespaces feed one recorder: ``telemetry/opentelemetry`` (krakend-otel's layers),
``telemetry/metrics`` (krakend-metrics, the legacy ``/__stats`` listener) and
``telemetry/influx`` (pushes krakend-metrics' numbers). A layer is recorded once, whichever
sections ask for it (`MetricsPlan`); exporters read the node's aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.config.durations import DurationError, parse_duration
from tidegate.errors import ConfigValueError, JsonPath
from tidegate.telemetry.otel_config import (
    DEFAULT_SIZE_BUCKETS,
    DEFAULT_TIME_BUCKETS,
    OtelConfig,
    Reader,
    parse_otel,
)
from tidegate.telemetry.otel_config import (
    NAMESPACE as OTEL,
)

METRICS = "telemetry/metrics"
INFLUX = "telemetry/influx"


@dataclass(frozen=True, slots=True)
class LegacyMetrics:
    """`telemetry/metrics` (krakend-metrics): its layers and its `/__stats` listener."""

    collection_time: float = 60.0
    listen_address: str = ":8090"
    proxy_disabled: bool = False
    router_disabled: bool = False
    backend_disabled: bool = False
    endpoint_disabled: bool = False  # no HTTP server (influx may still push)


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    """`telemetry/influx`: push krakend-metrics' values in line protocol every `ttl`."""

    address: str
    ttl: float = 60.0
    buffer_size: int = 0
    db: str = "krakend"
    username: str = ""
    password: str = ""


def _duration(obj: Reader, key: str, default: float) -> float:
    raw = obj.raw.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = parse_duration(raw)
    except DurationError as exc:
        raise obj.error(f"{key}: {exc}", key) from None
    if value <= 0:
        raise obj.error(f"{key} must be positive", key)
    return value


def parse_legacy(raw: Any, path: JsonPath = ("extra_config", METRICS)) -> LegacyMetrics:
    """The root `telemetry/metrics` section."""
    obj = Reader(raw, path, METRICS)
    address = obj.text("listen_address", ":8090") or ":8090"
    split_address(address, obj, "listen_address")
    return LegacyMetrics(
        collection_time=_duration(obj, "collection_time", 60.0), listen_address=address,
        proxy_disabled=obj.flag("proxy_disabled"), router_disabled=obj.flag("router_disabled"),
        backend_disabled=obj.flag("backend_disabled"),
        endpoint_disabled=obj.flag("endpoint_disabled"))


def parse_influx(raw: Any, path: JsonPath = ("extra_config", INFLUX)) -> InfluxConfig:
    """The root `telemetry/influx` section (`address` is required)."""
    obj = Reader(raw, path, INFLUX)
    address = obj.text("address")
    if not address.startswith(("http://", "https://")):
        raise obj.error("address must be an http:// or https:// URL of the InfluxDB server",
                        "address")
    return InfluxConfig(
        address=address.rstrip("/"), ttl=_duration(obj, "ttl", 60.0),
        buffer_size=obj.integer("buffer_size", 0), db=obj.text("db", "krakend") or "krakend",
        username=obj.text("username"), password=obj.text("password"))


def split_address(address: str, obj: Reader | None = None,
                  key: str = "listen_address") -> tuple[str, int]:
    """Go's ``host:port`` (``:8090`` = every interface) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        message = f"{key} must be host:port, such as \":8090\" (got {address!r})"
        if obj is not None:
            raise obj.error(message, key)
        raise ConfigValueError(message)
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class MetricsPlan:
    """Which layers record, into which buckets, skipping what (one per configuration)."""

    server: bool = False
    proxy: bool = False
    backend: bool = False
    client: bool = False  # krakend-otel's backend `round_trip` (http.client.*)
    time_buckets: tuple[float, ...] = DEFAULT_TIME_BUCKETS
    size_buckets: tuple[float, ...] = DEFAULT_SIZE_BUCKETS
    skip_paths: frozenset[str] = frozenset()
    otel: OtelConfig | None = None
    legacy: LegacyMetrics | None = None

    @property
    def records(self) -> bool:
        """Anything recorded at all."""
        return self.server or self.proxy or self.backend or self.client


def _otel_records(cfg: OtelConfig) -> bool:
    """krakend-otel creates a meter provider only with a metrics exporter."""
    return (any(not p.disable_metrics for p in cfg.prometheus)
            or any(not o.disable_metrics for o in cfg.otlp))


_PLANS: dict[int, tuple[Mapping[str, Any], MetricsPlan]] = {}


def plan_for(extra_config: Mapping[str, Any], name: str = "") -> MetricsPlan:
    """The plan of a service's root `extra_config` (memoised per configuration object: every
    endpoint and backend of one build asks)."""
    hit = _PLANS.get(id(extra_config))
    if hit is not None and hit[0] is extra_config:
        return hit[1]
    otel = None
    if OTEL in extra_config:
        otel = parse_otel(extra_config[OTEL], ("extra_config", OTEL), name)
    legacy = parse_legacy(extra_config[METRICS]) if METRICS in extra_config else None
    influx = INFLUX in extra_config
    on = otel is not None and _otel_records(otel)
    layers = otel.layers if otel is not None else None
    plan = MetricsPlan(
        server=(on and layers is not None and not layers.global_.disable_metrics)
        or (legacy is not None and not legacy.router_disabled) or influx,
        proxy=(on and layers is not None and not layers.proxy.disable_metrics)
        or (legacy is not None and not legacy.proxy_disabled) or influx,
        backend=(on and layers is not None and not layers.backend_metrics.disable_stage)
        or (legacy is not None and not legacy.backend_disabled) or influx,
        client=on and layers is not None and layers.backend_metrics.round_trip,
        time_buckets=otel.histograms.time_buckets if otel else DEFAULT_TIME_BUCKETS,
        size_buckets=otel.histograms.size_buckets if otel else DEFAULT_SIZE_BUCKETS,
        skip_paths=frozenset(p for p in otel.skip_paths if p) if otel else frozenset(),
        otel=otel, legacy=legacy)
    if len(_PLANS) > 8:
        _PLANS.clear()
    _PLANS[id(extra_config)] = (extra_config, plan)
    return plan
