"""Metrics as an operator sees them: a real gateway with 2 workers, scraped over 127.0.0.1.

The node's numbers reach the supervisor within 2 s (workers ship every second), so each wait
here polls the scrape itself, bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    backend,
    child_pids,
    free_port,
    gateway,
    health,
    request,
    write_config,
)

pytestmark = pytest.mark.slow

SCOPE = {"otel_scope_name": "io.krakend.krakend-otel", "otel_scope_version": ""}


def cfg(bport: int, mport: int, *paths: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 3, "name": "metrics-test", "timeout": "5s", "listen_ip": "127.0.0.1",
        "endpoints": [{"endpoint": p, "backend": [{
            "host": [f"http://127.0.0.1:{bport}"],
            "url_pattern": "/echo/{id}" if "{id}" in p else "/echo"}]} for p in paths],
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"prometheus": [{"name": "local", "listen_ip": "127.0.0.1",
                                          "port": mport}]}}}}
    data["extra_config"].update(extra)
    return data


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """sample name + labels -> value."""
    status, headers, body = request(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `check` (a scrape) until it returns something truthy, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        threading.Event().wait(0.1)  # polling the listener, bounded


def served(port: int, route: str, status: str = "200") -> float:
    value = sample(scrape(port), "http_server_duration_count", http_request_method="GET",
                   url_scheme="http", http_route=route, http_response_status_code=status,
                   **SCOPE)
    return value or 0.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Any, Path, int, int, int]]:
    with backend() as bport:
        mport, port = free_port(), free_port()
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, mport, "/items/{id}", "/other"))
        with gateway(str(config), port, "--watch", "-d", workers=2) as gw:
            gw.wait_for("prometheus exporter 'local' listening on 127.0.0.1")
            yield gw, config, bport, mport, port


def test_scrape_counts_every_request_of_both_workers(node) -> None:
    gw, _, _, mport, port = node
    assert len(child_pids(gw.proc.pid)) == 2
    for i in range(30):  # a new connection each: both workers accept
        assert request(port, "GET", f"/items/{i}")[0] == 200
    for _ in range(4):
        assert request(port, "GET", "/nowhere")[0] == 404
    assert request(port, "GET", "/__health")[0] == 200  # a default skip path
    started = time.monotonic()
    assert until(lambda: served(mport, "/items/{id}") == 30)
    assert time.monotonic() - started < 2.5  # current within 2 s
    samples = until(lambda: (s := scrape(mport)) and sample(
        s, "http_server_duration_count", http_request_method="GET", url_scheme="http",
        http_route="404 Not Found", http_response_status_code="404", **SCOPE) == 4 and s)
    assert samples, "the 404s were not counted"
    assert not any("__health" in dict(labels).get("http_route", "") for _, labels in samples)
    buckets = {dict(labels)["le"]: v for (name, labels), v in samples.items()
               if name == "http_server_duration_bucket"
               and dict(labels).get("http_route") == "/items/{id}"}
    assert buckets["+Inf"] == 30 and "0.01" in buckets and "10" in buckets
    backend_count = sample(samples, "krakend_backend_duration_count", http_request_method="GET",
                           http_route="/echo/:id", krakend_endpoint_route="/items/{id}",
                           krakend_endpoint_method="GET", error="false", canceled="false",
                           complete="true", **SCOPE)
    assert backend_count == 30
    assert sample(samples, "krakend_proxy_duration_count", http_request_method="GET",
                  http_route="/items/{id}", error="false", canceled="false", complete="true",
                  **SCOPE) == 30
    started_total = sum(v for (name, labels), v in samples.items()
                        if name == "http_client_request_started_count_total"
                        and dict(labels)["krakend_endpoint_route"] == "/items/{id}")
    assert started_total == 30
    info = [dict(labels) for (name, labels), _ in samples.items() if name == "target_info"]
    assert info and info[0]["service_name"] == "metrics-test"


def test_counts_survive_a_worker_that_dies(node) -> None:
    gw, _, _, mport, port = node
    for i in range(10):
        assert request(port, "GET", f"/items/{i}")[0] == 200
    assert until(lambda: served(mport, "/items/{id}") == 10)
    victim = child_pids(gw.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    gw.wait_for("restarted on generation")
    assert served(mport, "/items/{id}") == 10  # monotonic: the dead worker's counts stay
    for i in range(5):
        assert request(port, "GET", f"/items/{i}")[0] == 200
    assert until(lambda: served(mport, "/items/{id}") == 15)


def test_reload_metrics_move_on_a_good_and_a_broken_save(node) -> None:
    gw, config, bport, mport, port = node
    gen = health(port)["generation"]
    first = scrape(mport)
    assert sample(first, "tidegate_config_info", hash=gen["config_hash"],
                  generation=str(gen["id"])) == 1
    assert sample(first, "tidegate_reloads_total", result="applied") == 1
    assert sample(first, "tidegate_reloads_total", result="rejected") == 0
    assert sample(first, "tidegate_reload_build_seconds_count") == 1
    last = sample(first, "tidegate_last_reload_success_timestamp_seconds")
    assert last is not None and abs(last - time.time()) < 120

    write_config(config, cfg(bport, mport, "/items/{id}", "/other", "/third"))
    gw.wait_for("generation 2 active")
    gen = health(port)["generation"]
    good = until(lambda: (s := scrape(mport)) and sample(
        s, "tidegate_reloads_total", result="applied") == 2 and s)
    assert good, "the applied reload was not counted"
    assert sample(good, "tidegate_config_info", hash=gen["config_hash"], generation="2") == 1
    assert sample(good, "tidegate_last_reload_success_timestamp_seconds") >= last

    data = cfg(bport, mport, "/items/{id}")
    data["endpoints"][0]["timeout"] = "soon"
    write_config(config, data)
    gw.wait_for("endpoints[0].timeout")
    broken = scrape(mport)
    assert sample(broken, "tidegate_reloads_total", result="rejected") == 1  # once per node
    assert sample(broken, "tidegate_reloads_total", result="applied") == 2
    assert sample(broken, "tidegate_config_info", hash=gen["config_hash"], generation="2") == 1


def test_exporter_follows_the_config_and_a_busy_port_is_not_fatal(tmp_path: Path) -> None:
    with backend() as bport, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, taken, "/items/{id}"))
        port = free_port()
        with gateway(str(config), port, "--watch") as gw:
            gw.wait_for(f"cannot listen on 127.0.0.1:{taken}")
            assert request(port, "GET", "/items/1")[0] == 200  # serving regardless
            mport = free_port()
            write_config(config, cfg(bport, mport, "/items/{id}"))
            gw.wait_for(f"prometheus exporter 'local' listening on 127.0.0.1:{mport}")
            assert until(lambda: served(mport, "/items/{id}") == 1)
            data = cfg(bport, mport, "/items/{id}")
            del data["extra_config"]["telemetry/opentelemetry"]
            write_config(config, data)
            gw.wait_for("generation 3 active")
            assert until(lambda: _refused(mport))


def _refused(port: int) -> bool:
    try:
        request(port, "GET", "/metrics")
    except ConnectionRefusedError:
        return True
    return False


def test_legacy_stats_listener_answers(tmp_path: Path) -> None:
    with backend() as bport:
        sport, port = free_port(), free_port()
        data = cfg(bport, free_port(), "/items/{id}")
        data["extra_config"] = {"telemetry/metrics": {
            "collection_time": "60s", "listen_address": f"127.0.0.1:{sport}"}}
        config = tmp_path / "krakend.json"
        write_config(config, data)
        with gateway(str(config), port, workers=2) as gw:
            assert "ignored" not in "".join(gw.log)
            gw.wait_for(f"telemetry/metrics listening on 127.0.0.1:{sport}")
            for i in range(6):
                assert request(port, "GET", f"/items/{i}")[0] == 200

            def stats() -> dict[str, Any] | None:
                status, headers, body = request(sport, "GET", "/__stats")
                assert status == 200 and headers["content-type"].startswith("application/json")
                out: dict[str, Any] = json.loads(body)
                key = "krakend.router.response./items/{id}.status.200.count"
                return out if out.get(key) == 6 else None

            snapshot = until(stats)
            assert snapshot, "the stats never counted the 6 requests"
            assert snapshot["krakend.router.response./items/{id}.time.count"] == 6
            assert snapshot["krakend.proxy.requests.layer.backend.name./echo/{{.Id}}"
                            ".complete.true.error.false"] == 6
            assert snapshot["krakend.proxy.requests.layer.pipe.name./items/{id}"
                            ".complete.true.error.false"] == 6
            assert request(sport, "GET", "/__stats/")[0] == 200
            assert request(sport, "GET", "/metrics")[0] == 404


class InfluxReceiver(BaseHTTPRequestHandler):
    """An InfluxDB 1.x `/write` endpoint that keeps what it is sent."""

    writes: list[tuple[str, str, str]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        InfluxReceiver.writes.append((self.path, self.headers.get("Authorization", ""), body))
        if any(line.startswith("responses,") and "name=/items/{id}" in line
               and "total=3i" in line for line in body.splitlines()):
            InfluxReceiver.arrived.set()  # every request of the test is in this push
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_influx_receives_points(tmp_path: Path) -> None:
    InfluxReceiver.writes.clear()
    InfluxReceiver.arrived.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), InfluxReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with backend() as bport:
            data = cfg(bport, free_port(), "/items/{id}")
            data["extra_config"] = {
                "telemetry/metrics": {"endpoint_disabled": True},
                "telemetry/influx": {"address": f"http://127.0.0.1:{server.server_port}",
                                     "ttl": "1s", "db": "gateway", "username": "u",
                                     "password": "p"}}
            config = tmp_path / "krakend.json"
            write_config(config, data)
            port = free_port()
            with gateway(str(config), port, workers=2):
                for i in range(3):
                    assert request(port, "GET", f"/items/{i}")[0] == 200
                assert InfluxReceiver.arrived.wait(10)
    finally:
        server.shutdown()
        server.server_close()
    path, auth, _ = InfluxReceiver.writes[-1]
    assert path == "/write?db=gateway&precision=s" and auth == "Basic dTpw"
    lines = "".join(body for _, _, body in InfluxReceiver.writes).splitlines()
    responses = [line for line in lines if line.startswith("responses,")]
    assert any("name=/items/{id}" in line and "status=200" in line for line in responses)
    totals = [int(line.split("total=")[1].split("i")[0]) for line in responses
              if "name=/items/{id}" in line]
    assert totals == sorted(totals) and totals[-1] == 3  # cumulative, never more
    assert any(line.startswith("requests,") and "layer=backend" in line for line in lines)
