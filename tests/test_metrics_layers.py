"""The server, proxy and backend metrics as a scrape shows them, whichever way they are taken:
an endpoint whose proxy is its one backend's call has no proxy stage (the backend's stage
records the proxy layer with its own), the same endpoint under a proxy-level component (a CEL
check every request passes) keeps one; the server layer is recorded by the protocol. Both
ways must give the same series and counts: answers, backend errors, refused connections,
timeouts, and a client that leaves before its answer."""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.support import backend, free_port, gateway, request, write_config
from tests.test_metrics_client import Fixed, silent_port
from tests.test_metrics_e2e import SCOPE, sample, scrape, until

pytestmark = pytest.mark.slow

WAYS = ("lone", "staged")
CEL = {"validation/cel": [{"check_expr": "req_method == 'GET'"}]}
N = 3


def endpoints(bport: int, down: int, silent: int) -> list[dict[str, Any]]:
    cases = [("fixed", bport, "/fixed"), ("missing", bport, "/missing"), ("down", down, "/x"),
             ("slow", silent, "/x"), ("gone", silent, "/x")]
    out = []
    for way in WAYS:
        for name, port, path in cases:
            ep: dict[str, Any] = {"endpoint": f"/{way}/{name}", "backend": [
                {"host": [f"http://127.0.0.1:{port}"], "url_pattern": path}]}
            if name == "slow":
                ep["timeout"] = "300ms"
            if way == "staged":
                ep["extra_config"] = CEL
            out.append(ep)
    return out


def layer_series(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str
                 ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The krakend_proxy_* and krakend_backend_* counts of one endpoint, its route label left
    out (the times themselves are not compared)."""
    out = {}
    for (name, labels), value in samples.items():
        if not name.endswith("_count") or not name.startswith(("krakend_proxy_",
                                                                "krakend_backend_")):
            continue
        lab = dict(labels)
        key = "http_route" if name.startswith("krakend_proxy_") else "krakend_endpoint_route"
        if lab.get(key) == route:
            lab.pop(key)
            out[(name, frozenset(lab.items()))] = value
    return out


def proxy(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str,
          error: str, canceled: str, complete: str) -> float | None:
    return sample(samples, "krakend_proxy_duration_count", http_request_method="GET",
                  http_route=route, error=error, canceled=canceled, complete=complete, **SCOPE)


def server(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str,
           status: str) -> float | None:
    return sample(samples, "http_server_duration_count", http_request_method="GET",
                  url_scheme="http", http_route=route, http_response_status_code=status,
                  **SCOPE)


def leave_early(port: int, path: str) -> None:
    """Send a request and reset the connection before its answer (the backend never answers;
    a half-close would still be answered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_proxy_and_backend_layers_are_the_same_with_or_without_a_proxy_stage(
        tmp_path: Path) -> None:
    down = free_port()  # nothing listens there
    mport, port = free_port(), free_port()
    with backend(Fixed) as bport, silent_port() as silent:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, {
            "version": 3, "name": "layers", "timeout": "5s",
            "endpoints": endpoints(bport, down, silent),
            "extra_config": {"telemetry/opentelemetry": {"exporters": {"prometheus": [
                {"name": "local", "listen_ip": "127.0.0.1", "port": mport}]}}}})
        with gateway(str(cfg), port) as gw:
            gw.wait_for("prometheus exporter 'local' listening on 127.0.0.1")
            for way in WAYS:
                for _ in range(N):
                    assert request(port, "GET", f"/{way}/fixed")[0] == 200
                    assert request(port, "GET", f"/{way}/missing")[0] == 500
                    assert request(port, "GET", f"/{way}/down")[0] == 500
                assert request(port, "GET", f"/{way}/slow")[0] == 500
                leave_early(port, f"/{way}/gone")
            samples = until(lambda: (s := scrape(mport)) and all(
                proxy(s, f"/{way}/gone", "false", "true", "false") == 1
                and server(s, f"/{way}/gone", "500") == 1 for way in WAYS) and s, timeout=10)
    assert samples, "the cancelled requests did not reach the scrape"
    for way in WAYS:
        route = f"/{way}/"
        assert proxy(samples, route + "fixed", "false", "false", "true") == N
        assert proxy(samples, route + "missing", "true", "false", "false") == N
        assert proxy(samples, route + "down", "true", "false", "false") == N
        assert proxy(samples, route + "slow", "true", "false", "false") == 1
        assert server(samples, route + "fixed", "200") == N
        assert server(samples, route + "missing", "500") == N
        assert sample(samples, "krakend_backend_duration_count", http_request_method="GET",
                      http_route="/x", krakend_endpoint_route=route + "gone",
                      krakend_endpoint_method="GET", error="false", canceled="true",
                      complete="false", **SCOPE) == 1
    for case in ("fixed", "missing", "down", "slow", "gone"):
        lone = layer_series(samples, f"/lone/{case}")
        assert lone and lone == layer_series(samples, f"/staged/{case}"), case
