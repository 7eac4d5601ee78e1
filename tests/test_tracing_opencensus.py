"""`telemetry/opencensus`: `check` says precisely what is not applied and what the
`telemetry/opentelemetry` equivalent is (no OpenCensus exporter speaks OTLP)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, checkout_env


def test_check_names_what_is_not_applied_and_the_opentelemetry_equivalent(
        tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    cfg.write_text(json.dumps({"version": 3, "extra_config": {"telemetry/opencensus": {
        "sample_rate": 10, "reporting_period": 5,
        "exporters": {"jaeger": {"endpoint": "http://jaeger.internal:14268/api/traces",
                                 "service_name": "gw"},
                      "zipkin": {"collector_url": "http://z:9411/api/v2/spans",
                                 "service_name": "gw"}}}},
        "endpoints": [{"endpoint": "/a", "backend": [
            {"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]}, indent=2))
    out = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(cfg)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=checkout_env())
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if "opencensus" in line]
    assert len(lines) == 3, out.stderr
    assert "is not supported by tidegate yet" not in out.stderr
    assert lines[0].endswith(
        'extra_config["telemetry/opencensus"]: component `telemetry/opencensus` is not '
        "applied: tidegate traces and measures with `telemetry/opentelemetry` (OpenCensus is "
        "deprecated and none of its exporters speaks OTLP); there, sample_rate 10 is "
        "trace_sample_rate 0.1; reporting_period is metric_reporting_period (5)")
    assert ('exporters.jaeger: OpenCensus exporter `jaeger` is not applied: Jaeger (1.35 and '
            "later) receives OTLP: use `telemetry/opentelemetry` with exporters.otlp "
            '[{"name": "jaeger", "host": "jaeger.internal", "port": 4318, "use_http": true}]'
            ) in lines[1]
    assert "exporters.zipkin: OpenCensus exporter `zipkin` is not applied: send OTLP" in lines[2]
