"""`/metrics` naming: as the OpenTelemetry Go Prometheus exporter renders krakend-otel's series."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tidegate.telemetry.aggregate import NodeMetrics
from tidegate.telemetry.otel_config import PrometheusExporter, parse_otel
from tidegate.telemetry.prometheus import go_float, prom_name, registry_for
from tidegate.telemetry.reload_metrics import ReloadMetrics
from tidegate.telemetry.reloads import ReloadEvent


def node() -> NodeMetrics:
    n = NodeMetrics()
    n.update(7, [
        ["http.server.duration", "histogram", ["http.request.method", "http.route"], [0.5, 1.0],
         [[["GET", "/a"], [2, 1, 0, 1.25]]]],
        ["http.client.request.started.count", "counter", ["clientname"], [], [[["/b"], [3]]]],
    ])
    return n


def test_names_labels_and_buckets_as_the_go_exporter() -> None:
    reloads = ReloadMetrics()
    reloads.record(ReloadEvent("applied", "start", generation=1, config_hash="abc",
                               build_seconds=0.02))
    text = generate_latest(registry_for(
        PrometheusExporter("p"), node(), reloads,
        parse_otel({"deploy_env": "prod"}, service_name="gw"))).decode()
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value
               for fam in text_string_to_metric_families(text) for x in fam.samples}
    scope = (("otel_scope_name", "io.krakend.krakend-otel"), ("otel_scope_version", ""))
    route = (("http_request_method", "GET"), ("http_route", "/a"))

    def labels(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*route, *scope, *extra)))

    assert samples[("http_server_duration_bucket", labels(("le", "0.5")))] == 2
    assert samples[("http_server_duration_bucket", labels(("le", "1")))] == 3  # Go's "1"
    assert samples[("http_server_duration_bucket", labels(("le", "+Inf")))] == 3
    assert samples[("http_server_duration_sum", labels())] == 1.25
    assert samples[("http_client_request_started_count_total",
                    tuple(sorted((("clientname", "/b"), *scope))))] == 3
    assert 'service_name="gw"' in text and 'deployment_environment="prod"' in text
    assert 'tidegate_config_info{generation="1",hash="abc"} 1.0' in text
    assert 'tidegate_reloads_total{result="applied"} 1.0' in text
    assert 'tidegate_reloads_total{result="rejected"} 0.0' in text
    assert 'tidegate_reload_build_seconds_bucket{le="0.025"} 1.0' in text


def test_exporter_options() -> None:
    off = generate_latest(registry_for(
        PrometheusExporter("q", disable_metrics=True, process_metrics=True, go_metrics=True),
        node(), None, None)).decode()
    assert "http_server_duration" not in off  # disable_metrics: no krakend-otel series
    assert "process_cpu_seconds_total" in off and "python_info" in off
    plain = generate_latest(registry_for(PrometheusExporter("r"), node(), None, None)).decode()
    assert "process_cpu_seconds_total" not in plain and "python_info" not in plain


def test_name_and_float_helpers() -> None:
    assert prom_name("http.client.response.no-content-length") == \
        "http_client_response_no_content_length"
    assert [go_float(v) for v in (0.01, 4096.0, 1.0, float("inf"))] == \
        ["0.01", "4096", "1", "+Inf"]
