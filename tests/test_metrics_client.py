"""The round-trip metrics (`http.client.*`) as a scrape shows them, whichever way the backend
call records them: inline around the exchange (the recorder alone, or traces not sampling the
request) or as a stage of the request executor (under a component that changes the exchange,
here `modifier/martian`, or a sampled trace). Both must give the same series and values."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.otlp_receiver import HttpReceiver
from tests.support import backend, free_port, gateway, request, write_config
from tests.test_metrics_e2e import SCOPE, sample, scrape, until

pytestmark = pytest.mark.slow

BODY = b'{"a":1}'
MISSING = b"nope!"
N = 5


class Fixed(BaseHTTPRequestHandler):
    """The same answer whatever was asked: sizes are known in advance."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body, status = (MISSING, 404) if self.path.startswith("/missing") else (BODY, 200)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def silent_port() -> Iterator[int]:
    """A listening socket that is never accepted from: connections open, nothing answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


MARTIAN = {"modifier/martian": {"header.Modifier": {"scope": ["request"], "name": "X-Via",
                                                     "value": "chain"}}}


def endpoints(bport: int, down: int, silent: int) -> list[dict[str, Any]]:
    """Each case twice: /tap/... (inline) and /chain/... (the executor chain)."""
    cases = [("fixed", "GET", bport, "/fixed"), ("missing", "GET", bport, "/missing"),
             ("post", "POST", bport, "/fixed"), ("down", "GET", down, "/x"),
             ("slow", "GET", silent, "/x")]
    out = []
    for way in ("tap", "chain"):
        for name, method, port, path in cases:
            be: dict[str, Any] = {"host": [f"http://127.0.0.1:{port}"], "url_pattern": path,
                                  "method": method}
            if way == "chain":
                be["extra_config"] = MARTIAN
            ep: dict[str, Any] = {"endpoint": f"/{way}/{name}", "method": method,
                                  "backend": [be]}
            if name == "slow":
                ep["timeout"] = "300ms"
            out.append(ep)
    return out


def client_series(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str
                  ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The http_client_* samples of one endpoint, its own route label left out, without the
    times themselves (the durations' sum and finite buckets)."""
    out = {}
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if name == "http_client_duration_sum" or (
                name == "http_client_duration_bucket" and lab["le"] != "+Inf"):
            continue
        if name.startswith("http_client_") and lab.get("krakend_endpoint_route") == route:
            lab.pop("krakend_endpoint_route")
            out[(name, frozenset(lab.items()))] = value
    return out


def send_all(port: int, headers: dict[str, dict[str, str]] | None = None) -> None:
    """N requests per case and way (one to the silent backend), `headers` by way."""
    for way in ("tap", "chain"):
        h = (headers or {}).get(way)
        for _ in range(N):
            assert request(port, "GET", f"/{way}/fixed", headers=h)[0] == 200
            assert request(port, "GET", f"/{way}/missing", headers=h)[0] == 500
            assert request(port, "POST", f"/{way}/post", body=b"x" * 10, headers=h)[0] == 200
            assert request(port, "GET", f"/{way}/down", headers=h)[0] == 500
        assert request(port, "GET", f"/{way}/slow", headers=h)[0] == 500


def check(mport: int) -> None:
    samples = until(lambda: (s := scrape(mport)) and all(
        sample(s, "http_client_request_started_count_total", **labels(way, "fixed")) == N
        and sample(s, "http_client_request_timedout_count_total",
                   **labels(way, "slow", "0")) == 1
        for way in ("tap", "chain")) and s)
    assert samples, "the client series did not reach the scrape"
    for case in ("fixed", "missing", "post", "down", "slow"):
        tap = client_series(samples, f"/tap/{case}")
        assert tap and tap == client_series(samples, f"/chain/{case}"), case
    # The server layer, alone (the first test) and under the traces' stage (the second).
    for way in ("tap", "chain"):
        for case, status, count in (("fixed", "200", N), ("missing", "500", N),
                                    ("slow", "500", 1)):
            assert sample(samples, "http_server_duration_count", http_request_method="GET",
                          url_scheme="http", http_route=f"/{way}/{case}",
                          http_response_status_code=status, **SCOPE) == count, (way, case)
        assert sample(samples, "http_server_response_size_count", http_request_method="POST",
                      url_scheme="http", http_route=f"/{way}/post",
                      http_response_status_code="200", **SCOPE) == N
    fixed = labels("tap", "fixed")
    assert sample(samples, "http_client_duration_count", **fixed) == N
    assert sample(samples, "http_client_response_size_sum", **fixed) == N * len(BODY)
    assert sample(samples, "http_client_response_size_sum",
                  **labels("tap", "missing", "404")) == N * len(MISSING)
    assert sample(samples, "http_client_request_size_total",
                  **labels("tap", "post", method="POST")) == N * 10
    assert sample(samples, "http_client_request_failed_count_total",
                  **labels("tap", "down", "0")) == N
    assert sample(samples, "http_client_request_timedout_count_total",
                  **labels("tap", "slow", "0")) == 1


PORTS: dict[str, int] = {}


def labels(way: str, case: str, status: str = "200", method: str = "GET") -> dict[str, str]:
    port = PORTS["backend"] if case in ("fixed", "missing", "post") else PORTS[case]
    path = {"fixed": "/fixed", "missing": "/missing", "post": "/fixed"}.get(case, "/x")
    return {"http_request_method": method, "http_route": path,
            "krakend_endpoint_route": f"/{way}/{case}", "krakend_endpoint_method": method,
            "clientname": path, "server_address": "127.0.0.1", "server_port": str(port),
            "http_response_status_code": status, **SCOPE}


@pytest.fixture
def ports() -> Iterator[tuple[int, int, int]]:
    down = free_port()  # nothing listens there
    with backend(Fixed) as bport, silent_port() as silent:
        PORTS.update(backend=bport, down=down, slow=silent)
        yield bport, down, silent


def test_inline_and_chained_round_trips_record_the_same(tmp_path: Path, ports) -> None:
    mport, port = free_port(), free_port()
    cfg = tmp_path / "krakend.json"
    write_config(cfg, {
        "version": 3, "name": "client-metrics", "timeout": "5s", "endpoints": endpoints(*ports),
        "extra_config": {"telemetry/opentelemetry": {"exporters": {"prometheus": [
            {"name": "local", "listen_ip": "127.0.0.1", "port": mport}]}}}})
    with gateway(str(cfg), port) as gw:
        gw.wait_for("prometheus exporter 'local' listening on 127.0.0.1")
        send_all(port)
        check(mport)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_sampled_and_unsampled_requests_record_the_same(tmp_path: Path, ports) -> None:
    """With traces, a request the trace samples goes through the executor chain (its client
    span, the traceparent), one it does not is recorded inline: /tap/... is never sampled,
    /chain/... always (an incoming sampled traceparent), with no martian on either."""
    mport, port = free_port(), free_port()
    eps = endpoints(*ports)
    for ep in eps:
        ep["backend"][0].pop("extra_config", None)
    with HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, {
            "version": 3, "name": "client-metrics", "timeout": "5s", "endpoints": eps,
            "extra_config": {"telemetry/opentelemetry": {
                "trace_sample_rate": 0.5,
                "exporters": {
                    "prometheus": [{"name": "local", "listen_ip": "127.0.0.1", "port": mport}],
                    "otlp": [{"name": "c", "host": "127.0.0.1", "port": collector.port,
                              "use_http": True, "disable_metrics": True}]}}}})
        with gateway(str(cfg), port) as gw:
            gw.wait_for("prometheus exporter 'local' listening on 127.0.0.1")
            send_all(port, {way: {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-{flag}"}
                            for way, flag in (("tap", "00"), ("chain", "01"))})
            check(mport)
            spans = collector.wait(lambda s: len(client_spans(s, "/chain/fixed")) == N
                                   and len(client_spans(s, "/chain/slow")) == 1)
    routes = {x.attributes.get("krakend.endpoint.route") for x in spans}
    assert not any(str(r).startswith("/tap/") for r in routes)  # never sampled: no spans
    assert client_spans(spans, "/chain/slow")[0].status_code == 2  # ERROR
    assert len(client_spans(spans, "/chain/down")) == N


def client_spans(spans: list[Any], route: str) -> list[Any]:
    return [x for x in spans if x.attributes.get("krakend.stage") == "backend-request"
            and x.attributes.get("krakend.endpoint.route") == route]
