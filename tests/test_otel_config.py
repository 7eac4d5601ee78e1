"""The `telemetry/opentelemetry` section: krakend-otel's defaults and located errors."""

from __future__ import annotations

import pytest

from tidegate.errors import ConfigValueError
from tidegate.telemetry.otel_config import (
    DEFAULT_SKIP_PATHS,
    DEFAULT_TIME_BUCKETS,
    from_service,
    parse_otel,
)


def test_defaults_follow_krakend_otel() -> None:
    cfg = parse_otel({"exporters": {"prometheus": [{"name": "p"}]}}, service_name="gw")
    assert (cfg.service_name, cfg.trace_sample_rate, cfg.metric_reporting_period) == ("gw", 1.0, 30)
    assert cfg.skip_paths == DEFAULT_SKIP_PATHS
    assert cfg.prometheus[0].port == 9090 and cfg.prometheus[0].host == ""
    assert cfg.layers.backend_metrics.round_trip and cfg.layers.backend_metrics.detailed_connection
    assert cfg.histograms.time_buckets == DEFAULT_TIME_BUCKETS
    assert parse_otel({}).service_name == "KrakenD"
    assert from_service({}) is None


def test_full_section() -> None:
    cfg = parse_otel({
        "service_name": "svc", "service_version": "1.2", "deploy_env": "prod",
        "trace_sample_rate": 0.25, "metric_reporting_period": 5, "skip_paths": [""],
        "exporters": {
            "otlp": [{"name": "a", "host": "collector", "use_http": True},
                     {"name": "b", "port": 4000, "disable_traces": True}],
            "prometheus": [{"name": "p", "listen_ip": "127.0.0.1", "port": 9091,
                            "process_metrics": True},
                           {"name": "q", "host": "::1", "disable_metrics": True}]},
        "layers": {"global": {"report_headers": True, "semantic_convention": "1.27",
                              "metrics_static_attributes": [{"key": "k", "value": "v"}]},
                   "proxy": {"disable_metrics": True},
                   "backend": {"metrics": {"round_trip": True},
                               "traces": {"skip_headers": ["Authorization"]}}},
        "histograms": {"time_buckets": [0.1, 1], "size_buckets": [10, 100]}})
    assert (cfg.service_name, cfg.service_version, cfg.deploy_env) == ("svc", "1.2", "prod")
    assert cfg.skip_paths == ("",) and not cfg.skips("/__health")
    assert [(o.host, o.port, o.use_http) for o in cfg.otlp] == [
        ("collector", 4318, True), ("localhost", 4000, False)]
    assert [(p.host, p.port) for p in cfg.prometheus] == [("127.0.0.1", 9091), ("::1", 9090)]
    assert [p.name for p in cfg.metrics_exporters] == ["p"]
    assert cfg.layers.global_.metrics_static_attributes == (("k", "v"),)
    assert cfg.layers.proxy.disable_metrics
    bm = cfg.layers.backend_metrics
    assert (bm.round_trip, bm.read_payload, bm.detailed_connection) == (True, False, False)
    assert cfg.layers.backend_traces.skip_headers == ("Authorization",)
    assert cfg.histograms.time_buckets == (0.1, 1.0)


@pytest.mark.parametrize(("section", "path", "text"), [
    ({"trace_sample_rate": 2}, ("trace_sample_rate",), "between 0 and 1"),
    ({"skip_paths": "/x"}, ("skip_paths",), "must be a list"),
    ({"exporters": {"prometheus": [{"name": "a"}, {"name": "a"}]}},
     ("exporters", "prometheus", 1, "name"), "duplicate name"),
    ({"exporters": {"prometheus": [{"port": "9090"}]}},
     ("exporters", "prometheus", 0, "port"), "must be a number"),
    ({"layers": {"global": {"semantic_convention": "1.30"}}},
     ("layers", "global", "semantic_convention"), "1.27"),
    ({"layers": {"backend": {"metrics": {"round_trip": "yes"}}}},
     ("layers", "backend", "metrics", "round_trip"), "true or false"),
    ({"histograms": {"time_buckets": [1, 0.5]}}, ("histograms", "time_buckets", 1),
     "strictly increasing"),
])
def test_errors_are_located(section: dict[str, object], path: tuple[object, ...],
                            text: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        parse_otel(section)
    assert err.value.path == ("extra_config", "telemetry/opentelemetry", *path)
    assert text in str(err.value)
