"""The typed, frozen reading of the root ``telemetry/opentelemetry`` section (krakend-otel).

One parse shared by metrics and traces, so both read the same defaults: krakend-otel's
(`service_name` from the root `name` else "KrakenD", sample rate 1, reporting period 30 s,
the default `skip_paths` when the list is empty, every backend detail on when `layers.backend`
says nothing). Where Go's decoder would silently drop a value of the wrong type, tidegate refuses
it with the JSON path of the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidegate.errors import ConfigValueError, JsonPath

NAMESPACE = "telemetry/opentelemetry"

# krakend-otel's `UnsetFieldsToDefaults`: an empty list means these; `[""]` means none.
DEFAULT_SKIP_PATHS = ("/__health", "/__debug/", "/__echo/", "/__stats/")

# krakend-otel config/histogram_buckets.go (seconds and bytes).
DEFAULT_TIME_BUCKETS = (0.010, 0.020, 0.050, 0.075, 0.100, 0.125, 0.150, 0.175, 0.200, 0.250,
                        0.300, 0.350, 0.500, 0.750, 1.000, 1.500, 2.000, 3.500, 5.000, 10.000)
DEFAULT_SIZE_BUCKETS = (128.0, 256.0, 512.0, 1024.0, 4 * 1024.0, 8 * 1024.0, 16 * 1024.0,
                        32 * 1024.0, 64 * 1024.0, 4 * 64 * 1024.0, 8 * 64 * 1024.0,
                        16 * 64 * 1024.0, 4 * 1024 * 1024.0, 16 * 1024 * 1024.0,
                        64 * 1024 * 1024.0)

SEMANTIC_CONVENTIONS = ("", "1.27")

Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class OtlpExporter:
    """`exporters.otlp[]`: push over gRPC (port 4317) or HTTP (`use_http`, port 4318)."""

    name: str
    host: str
    port: int
    use_http: bool = False
    disable_metrics: bool = False
    disable_traces: bool = False
    custom_metric_reporting_period: int = 0  # seconds; 0 = the service's period


@dataclass(frozen=True, slots=True)
class PrometheusExporter:
    """`exporters.prometheus[]`: a listener of its own serving `/metrics`.

    The address is `listen_ip` (KrakenD's documentation) or `host` (krakend-otel's source);
    empty means every interface, as Go's ``":9090"``.
    """

    name: str
    host: str = ""
    port: int = 9090
    process_metrics: bool = False
    go_metrics: bool = False
    disable_metrics: bool = False


@dataclass(frozen=True, slots=True)
class GlobalLayer:
    """`layers.global`: the HTTP server (router) layer."""

    disable_metrics: bool = False
    disable_traces: bool = False
    disable_propagation: bool = False
    report_headers: bool = False
    skip_headers: tuple[str, ...] = ()
    metrics_static_attributes: Attributes = ()
    traces_static_attributes: Attributes = ()
    semantic_convention: str = ""


@dataclass(frozen=True, slots=True)
class ProxyLayer:
    """`layers.proxy`: the endpoint's pipe (all backends of one endpoint)."""

    disable_metrics: bool = False
    disable_traces: bool = False
    report_headers: bool = False
    skip_headers: tuple[str, ...] = ()
    metrics_static_attributes: Attributes = ()
    traces_static_attributes: Attributes = ()


@dataclass(frozen=True, slots=True)
class BackendDetail:
    """`layers.backend.metrics` or `.traces`.

    Absent, all on (krakend-otel's defaults); present, a missing flag is false (Go zero value).
    """

    disable_stage: bool = False
    round_trip: bool = True
    read_payload: bool = True
    detailed_connection: bool = True
    static_attributes: Attributes = ()
    report_headers: bool = False  # traces only
    skip_headers: tuple[str, ...] = ()  # traces only

    @property
    def enabled(self) -> bool:
        """Anything at all to report (krakend-otel's `Enabled`)."""
        return (not self.disable_stage or self.round_trip or self.read_payload
                or self.detailed_connection)


@dataclass(frozen=True, slots=True)
class Layers:
    """`layers`."""

    global_: GlobalLayer = field(default_factory=GlobalLayer)
    proxy: ProxyLayer = field(default_factory=ProxyLayer)
    backend_metrics: BackendDetail = field(default_factory=BackendDetail)
    backend_traces: BackendDetail = field(default_factory=BackendDetail)


@dataclass(frozen=True, slots=True)
class Histograms:
    """`histograms`: bucket upper bounds (seconds, bytes), strictly increasing."""

    time_buckets: tuple[float, ...] = DEFAULT_TIME_BUCKETS
    size_buckets: tuple[float, ...] = DEFAULT_SIZE_BUCKETS


@dataclass(frozen=True, slots=True)
class OtelConfig:
    """The whole section, defaults applied."""

    service_name: str = "KrakenD"
    service_version: str = ""
    deploy_env: str = ""
    trace_sample_rate: float = 1.0
    metric_reporting_period: int = 30  # seconds (OTLP push only)
    skip_paths: tuple[str, ...] = DEFAULT_SKIP_PATHS
    otlp: tuple[OtlpExporter, ...] = ()
    prometheus: tuple[PrometheusExporter, ...] = ()
    layers: Layers = field(default_factory=Layers)
    histograms: Histograms = field(default_factory=Histograms)

    @property
    def metrics_exporters(self) -> tuple[PrometheusExporter, ...]:
        """The Prometheus exporters that serve metrics."""
        return tuple(p for p in self.prometheus if not p.disable_metrics)

    def skips(self, path: str) -> bool:
        """`skip_paths` as krakend-otel matches them: the exact request path (or pattern)."""
        return path in self.skip_paths


class Reader:
    """A JSON object at a path, read key by key with located errors."""

    __slots__ = ("path", "raw")

    def __init__(self, raw: Any, path: JsonPath, what: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigValueError(f"{what} must be an object", path=path)
        self.raw: Mapping[str, Any] = raw
        self.path = path

    def error(self, message: str, *key: str | int) -> ConfigValueError:
        """A config error located at the section's `key`."""
        return ConfigValueError(message, path=(*self.path, *key))

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{key} must be true or false", key)
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(f"{key} must be a string", key)
        return value

    def number(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{key} must be a number", key)
        return float(value)

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.number(key, default)
        if not value.is_integer():
            raise self.error(f"{key} must be an integer", key)
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None \
                else f"at least {minimum}"
            raise self.error(f"{key} must be {bounds} (got {int(value)})", key)
        return int(value)

    def array(self, key: str) -> list[Any]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{key} must be a list", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        items = self.array(key)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}] must be a string", key, i)
        return tuple(items)

    def sub(self, key: str) -> Reader | None:
        value = self.raw.get(key)
        if value is None:
            return None
        return Reader(value, (*self.path, key), key)

    def attributes(self, key: str) -> Attributes:
        """krakend-otel's `[{"key": .., "value": ..}]`; a repeated key is an error."""
        out: dict[str, str] = {}
        for i, item in enumerate(self.array(key)):
            obj = Reader(item, (*self.path, key, i), f"{key}[{i}]")
            name = obj.text("key")
            if not name:
                raise obj.error(f"{key}[{i}].key must be a non-empty string", "key")
            if name in out:
                raise obj.error(f"{key}: duplicate attribute key {name!r}", "key")
            out[name] = obj.text("value")
        return tuple(out.items())

    def buckets(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        items = self.array(key)
        if not items:
            return default
        out: list[float] = []
        for i, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise self.error(f"{key}[{i}] must be a number", key, i)
            if out and item <= out[-1]:
                raise self.error(f"{key} must be strictly increasing ({item} after {out[-1]})",
                                 key, i)
            out.append(float(item))
        return tuple(out)


def _backend_detail(obj: Reader | None, traces: bool) -> BackendDetail:
    if obj is None:
        return BackendDetail()
    return BackendDetail(
        disable_stage=obj.flag("disable_stage"), round_trip=obj.flag("round_trip"),
        read_payload=obj.flag("read_payload"),
        detailed_connection=obj.flag("detailed_connection"),
        static_attributes=obj.attributes("static_attributes"),
        report_headers=obj.flag("report_headers") if traces else False,
        skip_headers=obj.strings("skip_headers") if traces else ())


def parse_layers(raw: Any, path: JsonPath) -> Layers:
    """An endpoint's or backend's own section: krakend-otel reads it as `layers` overrides."""
    return _layers(Reader(raw, path, NAMESPACE))


def _layers(obj: Reader | None) -> Layers:
    if obj is None:
        return Layers()
    g = obj.sub("global")
    global_ = GlobalLayer() if g is None else GlobalLayer(
        disable_metrics=g.flag("disable_metrics"), disable_traces=g.flag("disable_traces"),
        disable_propagation=g.flag("disable_propagation"),
        report_headers=g.flag("report_headers"), skip_headers=g.strings("skip_headers"),
        metrics_static_attributes=g.attributes("metrics_static_attributes"),
        traces_static_attributes=g.attributes("traces_static_attributes"),
        semantic_convention=g.text("semantic_convention"))
    if global_.semantic_convention not in SEMANTIC_CONVENTIONS:
        assert g is not None
        raise g.error("semantic_convention must be \"\" or \"1.27\" "
                      f"(got {global_.semantic_convention!r})", "semantic_convention")
    p = obj.sub("proxy")
    proxy = ProxyLayer() if p is None else ProxyLayer(
        disable_metrics=p.flag("disable_metrics"), disable_traces=p.flag("disable_traces"),
        report_headers=p.flag("report_headers"), skip_headers=p.strings("skip_headers"),
        metrics_static_attributes=p.attributes("metrics_static_attributes"),
        traces_static_attributes=p.attributes("traces_static_attributes"))
    b = obj.sub("backend")
    return Layers(global_, proxy,
                  _backend_detail(b.sub("metrics") if b else None, traces=False),
                  _backend_detail(b.sub("traces") if b else None, traces=True))


def _exporters(obj: Reader | None) -> tuple[tuple[OtlpExporter, ...],
                                           tuple[PrometheusExporter, ...]]:
    if obj is None:
        return (), ()
    names: set[str] = set()

    def unique(item: Reader, kind: str, i: int) -> str:
        name = item.text("name")
        if name in names:
            raise item.error(f"{kind} exporter with duplicate name {name!r} (at index {i})",
                             "name")
        names.add(name)
        return name

    otlp: list[OtlpExporter] = []
    for i, raw in enumerate(obj.array("otlp")):
        item = Reader(raw, (*obj.path, "otlp", i), f"otlp[{i}]")
        use_http = item.flag("use_http")
        otlp.append(OtlpExporter(
            name=unique(item, "OTLP", i), host=item.text("host", "localhost") or "localhost",
            port=item.integer("port", 0, maximum=65535) or (4318 if use_http else 4317),
            use_http=use_http, disable_metrics=item.flag("disable_metrics"),
            disable_traces=item.flag("disable_traces"),
            custom_metric_reporting_period=item.integer("custom_metric_reporting_period", 0)))
    prometheus: list[PrometheusExporter] = []
    for i, raw in enumerate(obj.array("prometheus")):
        item = Reader(raw, (*obj.path, "prometheus", i), f"prometheus[{i}]")
        prometheus.append(PrometheusExporter(
            name=unique(item, "prometheus", i),
            host=item.text("listen_ip") or item.text("host"),
            port=item.integer("port", 0, maximum=65535) or 9090,
            process_metrics=item.flag("process_metrics"), go_metrics=item.flag("go_metrics"),
            disable_metrics=item.flag("disable_metrics")))
    return tuple(otlp), tuple(prometheus)


def parse_otel(raw: Any, path: JsonPath = ("extra_config", NAMESPACE),
               service_name: str = "") -> OtelConfig:
    """The section `raw` found at `path`; `service_name` is the root `name` (its default)."""
    obj = Reader(raw, path, NAMESPACE)
    rate = obj.number("trace_sample_rate", 1.0)
    if not 0.0 <= rate <= 1.0:
        raise obj.error(f"trace_sample_rate must be between 0 and 1 (got {rate})",
                        "trace_sample_rate")
    skip = obj.strings("skip_paths") or DEFAULT_SKIP_PATHS
    otlp, prometheus = _exporters(obj.sub("exporters"))
    hist = obj.sub("histograms")
    histograms = Histograms() if hist is None else Histograms(
        hist.buckets("time_buckets", DEFAULT_TIME_BUCKETS),
        hist.buckets("size_buckets", DEFAULT_SIZE_BUCKETS))
    return OtelConfig(
        service_name=obj.text("service_name") or service_name or "KrakenD",
        service_version=obj.text("service_version"), deploy_env=obj.text("deploy_env"),
        trace_sample_rate=rate,
        metric_reporting_period=obj.integer("metric_reporting_period", 30) or 30,
        skip_paths=skip, otlp=otlp, prometheus=prometheus,
        layers=_layers(obj.sub("layers")), histograms=histograms)


def from_service(extra_config: Mapping[str, Any], name: str = "") -> OtelConfig | None:
    """The root section of a service's `extra_config`, or None when absent."""
    raw = extra_config.get(NAMESPACE)
    if raw is None:
        return None
    return parse_otel(raw, ("extra_config", NAMESPACE), name)
