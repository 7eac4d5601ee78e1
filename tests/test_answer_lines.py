"""The order of an answer's head when CORS and `security/http` sit at the root and at
endpoints, through real gateways: which section's headers an answer carries and in which
order (CORS first, then security/http, then the endpoint's own), for actual requests,
preflights (answered or passed through), 404s, error answers and `/__health`, in the
configurations where the sections hand their lines to the server and in those where something
around them reads or adds an answer's headers. Recorded on the code before the sections
wrote their lines through `Request.head_lines` and unchanged since."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import backend, exchange, free_port, gateway, write_config

pytestmark = pytest.mark.slow

ROOT_CORS = {"allow_origins": ["http://app.test"], "allow_methods": ["GET", "POST"],
             "expose_headers": ["x-request-id"], "max_age": "10m"}
OWN_CORS = {"allow_origins": ["http://own.test"], "allow_credentials": True}
SECURE = {"frame_deny": True, "content_type_nosniff": True}
ROOT_SECURE = {"referrer_policy": "same-origin"}

APP = {"Origin": "http://app.test"}
OWN = {"Origin": "http://own.test"}
PREFLIGHT = {"Origin": "http://app.test", "Access-Control-Request-Method": "GET"}
OWN_PREFLIGHT = {"Origin": "http://own.test", "Access-Control-Request-Method": "GET"}
NONE: dict[str, str] = {}

LABELS = {id(APP): "app", id(OWN): "own", id(PREFLIGHT): "preflight",
          id(OWN_PREFLIGHT): "own-preflight", id(NONE): "none"}

# (method, path, request headers) asked of every gateway
ASKED: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/plain", APP), ("GET", "/plain", NONE), ("GET", "/plain", OWN),
    ("GET", "/secure", APP), ("GET", "/secure", NONE),
    ("GET", "/own", APP), ("GET", "/own", OWN), ("GET", "/own", NONE),
    ("GET", "/own-secure", OWN), ("GET", "/own-secure", APP),
    ("GET", "/down", APP), ("GET", "/missing", APP), ("GET", "/__health", APP),
    ("OPTIONS", "/plain", PREFLIGHT), ("OPTIONS", "/options", PREFLIGHT),
    ("OPTIONS", "/options", OWN_PREFLIGHT), ("OPTIONS", "/options", APP),
]


def _endpoints(bport: int, closed: int) -> list[dict[str, Any]]:
    def ep(path: str, extra: dict[str, Any] | None = None, method: str = "GET",
           port: int = bport) -> dict[str, Any]:
        return {"endpoint": path, "method": method, "extra_config": extra or {},
                "backend": [{"host": [f"http://127.0.0.1:{port}"], "url_pattern": "/echo"}]}

    return [ep("/plain"), ep("/secure", {"security/http": SECURE}),
            ep("/own", {"security/cors": OWN_CORS}),
            ep("/own-secure", {"security/cors": OWN_CORS, "security/http": SECURE}),
            ep("/down", {"security/http": SECURE}, port=closed),
            ep("/options", {"security/cors": {**OWN_CORS, "options_passthrough": True},
                            "security/http": SECURE}, method="OPTIONS")]


GATEWAYS: dict[str, dict[str, Any]] = {
    # the usual root section, endpoints with their own
    "root-cors": {"security/cors": ROOT_CORS},
    # root preflights passed on to the endpoints
    "root-passthrough": {"security/cors": {**ROOT_CORS, "options_passthrough": True}},
    # security/http at the root too: it adds its headers around the endpoints' answers
    "root-cors-secure": {"security/cors": ROOT_CORS, "security/http": ROOT_SECURE},
    # no root section: the endpoints' own alone
    "endpoints-only": {},
    # metrics at the root do not read the headers: the same heads as "root-cors"
    "root-cors-metrics": {"security/cors": ROOT_CORS, "telemetry/opentelemetry": {
        "exporters": {"prometheus": [{"name": "m", "listen_ip": "127.0.0.1", "port": 0}]}}},
    # traces that report the response headers see every answer's (the sections add theirs
    # to the answers): the same heads again
    "root-cors-traces": {"security/cors": ROOT_CORS, "telemetry/opentelemetry": {
        "trace_sample_rate": 1, "layers": {"global": {"report_headers": True}},
        "exporters": {"otlp": [{"name": "t", "host": "127.0.0.1", "port": 0,
                                "use_http": True}]}}},
}
SAME_AS = {"root-cors-metrics": "root-cors", "root-cors-traces": "root-cors"}


@pytest.fixture(scope="module", params=list(GATEWAYS))
def gateway_port(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    name = request.param
    extra = json.loads(json.dumps(GATEWAYS[name]))
    for exporters in extra.get("telemetry/opentelemetry", {}).get("exporters", {}).values():
        for exporter in exporters:
            exporter["port"] = free_port()  # nothing listens for the traces: never sent
    with backend() as bport:
        cfg = tmp_path_factory.mktemp("answer-lines") / "krakend.json"
        write_config(cfg, {"version": 3, "extra_config": extra,
                           "endpoints": _endpoints(bport, free_port())})
        gport = free_port()
        with gateway(str(cfg), gport):
            yield name, gport


_VARIABLE = frozenset({"date", "content-length"})  # the echo's length depends on the ports


def _head(port: int, method: str, path: str, headers: dict[str, str]) -> list[str]:
    status, got, _ = exchange(port, method, path, headers)
    return [str(status)] + [f"{k}: {v}" for k, v in got if k not in _VARIABLE]


def test_every_answer_head_is_as_before(gateway_port: tuple[str, int]) -> None:
    name, port = gateway_port
    heads = {f"{m} {p} {LABELS[id(h)]}": _head(port, m, p, h) for m, p, h in ASKED}
    if os.environ.get("TIDEGATE_RECORD_HEADS"):
        print(f"    {name!r}: {heads!r},")
    assert heads == EXPECTED[SAME_AS.get(name, name)]


EXPECTED: dict[str, dict[str, list[str]]] = {
    'root-cors': {
        'GET /plain app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /plain none': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /plain own': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /secure app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /secure none': [
            '200', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own app': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own none': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure app': [
            '200', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /down app': [
            '500', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'GET /missing app': [
            '404', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'content-type: text/plain',
        ],
        'GET /__health app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id',
            'content-type: application/json; charset=utf-8',
        ],
        'OPTIONS /plain preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600',
        ],
        'OPTIONS /options preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600',
        ],
        'OPTIONS /options own-preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        ],
        'OPTIONS /options app': [
            '500', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: false',
        ],
    },
    'root-passthrough': {
        'GET /plain app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /plain none': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /plain own': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /secure app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /secure none': [
            '200', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own app': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own none': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure app': [
            '200', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /down app': [
            '500', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'GET /missing app': [
            '404', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'content-type: text/plain',
        ],
        'GET /__health app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id',
            'content-type: application/json; charset=utf-8',
        ],
        'OPTIONS /plain preflight': [
            '405', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600', 'x-krakend-completed: false', 'content-type: text/plain',
        ],
        'OPTIONS /options preflight': [
            '500', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600',
            'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'x-frame-options: DENY', 'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'OPTIONS /options own-preflight': [
            '500', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://own.test', 'access-control-allow-methods: GET',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'OPTIONS /options app': [
            '500', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: false',
        ],
    },
    'root-cors-secure': {
        'GET /plain app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'referrer-policy: same-origin',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /plain none': [
            '200', 'vary: Origin', 'referrer-policy: same-origin', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /plain own': [
            '200', 'vary: Origin', 'referrer-policy: same-origin', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /secure app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'referrer-policy: same-origin',
            'x-frame-options: DENY', 'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /secure none': [
            '200', 'vary: Origin', 'referrer-policy: same-origin', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own app': [
            '200', 'referrer-policy: same-origin', 'vary: Origin', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own own': [
            '200', 'referrer-policy: same-origin', 'vary: Origin',
            'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own none': [
            '200', 'referrer-policy: same-origin', 'vary: Origin', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure own': [
            '200', 'referrer-policy: same-origin', 'vary: Origin',
            'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure app': [
            '200', 'referrer-policy: same-origin', 'vary: Origin', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /down app': [
            '500', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'referrer-policy: same-origin',
            'x-frame-options: DENY', 'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'GET /missing app': [
            '404', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id', 'referrer-policy: same-origin',
            'content-type: text/plain',
        ],
        'GET /__health app': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://app.test',
            'access-control-expose-headers: X-Request-Id',
            'content-type: application/json; charset=utf-8',
        ],
        'OPTIONS /plain preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600',
        ],
        'OPTIONS /options preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://app.test', 'access-control-allow-methods: GET',
            'access-control-max-age: 600',
        ],
        'OPTIONS /options own-preflight': [
            '204', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        ],
        'OPTIONS /options app': [
            '500', 'referrer-policy: same-origin', 'vary: Origin', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
    },
    'endpoints-only': {
        'GET /plain app': [
            '200', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /plain none': [
            '200', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /plain own': [
            '200', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /secure app': [
            '200', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /secure none': [
            '200', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own app': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own none': [
            '200', 'vary: Origin', 'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure own': [
            '200', 'vary: Origin', 'access-control-allow-origin: http://own.test',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: true', 'content-type: application/json; charset=utf-8',
        ],
        'GET /own-secure app': [
            '200', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: true',
            'content-type: application/json; charset=utf-8',
        ],
        'GET /down app': [
            '500', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: false',
        ],
        'GET /missing app': [
            '404', 'content-type: text/plain',
        ],
        'GET /__health app': [
            '200', 'content-type: application/json; charset=utf-8',
        ],
        'OPTIONS /plain preflight': [
            '405', 'x-krakend-completed: false', 'content-type: text/plain',
        ],
        'OPTIONS /options preflight': [
            '500', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'x-frame-options: DENY', 'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'OPTIONS /options own-preflight': [
            '500', 'vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
            'access-control-allow-origin: http://own.test', 'access-control-allow-methods: GET',
            'access-control-allow-credentials: true', 'x-frame-options: DENY',
            'x-content-type-options: nosniff', 'x-krakend: Version 2.13.8',
            'x-krakend-completed: false',
        ],
        'OPTIONS /options app': [
            '500', 'vary: Origin', 'x-frame-options: DENY', 'x-content-type-options: nosniff',
            'x-krakend: Version 2.13.8', 'x-krakend-completed: false',
        ],
    },
}
