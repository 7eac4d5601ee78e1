"""Which sections hand their header lines to the server (`components.answer_lines`): only
where nothing around them reads or adds an answer's headers, and the root CORS section only
when every endpoint with its own does too (tests/test_answer_lines.py checks the heads)."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.components import answer_lines
from tidegate.config.model import ServiceConfig, build_service

CORS = {"allow_origins": ["http://app.test"]}
SECURE = {"frame_deny": True}
METRICS = {"exporters": {"prometheus": [{"name": "m", "port": 9091}]}}
TRACES = {"exporters": {"otlp": [{"name": "t", "port": 4318, "use_http": True}]},
          "layers": {"global": {"report_headers": True}}}


def _service(root: dict[str, Any], own: dict[str, Any]) -> ServiceConfig:
    backend = [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]
    return build_service({"version": 3, "extra_config": root, "endpoints": [
        {"endpoint": "/plain", "backend": backend},
        {"endpoint": "/own", "extra_config": own, "backend": backend}]})


@pytest.mark.parametrize(("root", "own", "root_cors", "own_cors", "own_secure"), [
    ({"security/cors": CORS}, {"security/cors": CORS, "security/http": SECURE},
     True, True, True),
    ({"security/cors": CORS, "telemetry/opentelemetry": METRICS},
     {"security/cors": CORS, "security/http": SECURE}, True, True, True),
    # the traces report the answer's headers: they must find the sections' in it
    ({"security/cors": CORS, "telemetry/opentelemetry": TRACES},
     {"security/cors": CORS, "security/http": SECURE}, False, False, False),
    # the root security/http adds its headers in front of an endpoint's answer
    ({"security/cors": CORS, "security/http": SECURE},
     {"security/cors": CORS, "security/http": SECURE}, False, False, False),
    ({"security/cors": CORS, "security/http": SECURE}, {"security/http": SECURE},
     True, False, False),
    ({"security/cors": CORS, "plugin/http-server": {"name": ["x"]}}, {"security/http": SECURE},
     False, False, False),
    # the endpoint's telemetry is around its sections; then the root CORS section must see
    # that the endpoint applied its own in the answer
    ({"security/cors": CORS}, {"security/cors": CORS, "telemetry/opentelemetry": {}},
     False, False, False),
    ({"security/cors": CORS}, {"security/http": SECURE, "telemetry/opentelemetry": {}},
     True, False, False),
    ({}, {"security/cors": CORS, "security/http": SECURE}, True, True, True),
])
def test_lines_only_where_nothing_around_reads_or_adds_headers(
        root: dict[str, Any], own: dict[str, Any], root_cors: bool, own_cors: bool,
        own_secure: bool) -> None:
    service = _service(root, own)
    endpoint = service.endpoints[1]
    assert answer_lines.root_cors(service) is root_cors
    assert answer_lines.endpoint_cors(service, endpoint) is own_cors
    assert answer_lines.endpoint_secure(service, endpoint) is own_secure
