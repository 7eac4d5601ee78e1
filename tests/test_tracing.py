"""`telemetry/opentelemetry` traces through a real gateway, received by a real OTLP collector:
krakend-otel's spans of one request (server, proxy, backend, client) linked parent to child,
the `traceparent` the backend saw, an incoming trace continued, sampling, gRPC export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.otlp_receiver import GrpcReceiver, HttpReceiver, ReceivedSpan
from tests.support import backend, free_port, gateway, health, request, write_config

pytestmark = pytest.mark.slow

SERVER, CLIENT = 2, 3  # OTLP SpanKind values
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def config(bport: int, cport: int, *, use_http: bool = True, rate: float = 1.0,
           **otel: Any) -> dict[str, Any]:
    section = {"service_name": "shop", "trace_sample_rate": rate,
               "exporters": {"otlp": [{"name": "local", "host": "127.0.0.1", "port": cport,
                                       "use_http": use_http}]}, **otel}
    return {"version": 3, "extra_config": {"telemetry/opentelemetry": section},
            "endpoints": [
                {"endpoint": "/users/{id}",
                 "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                              "url_pattern": "/u/{id}"}]},
                {"endpoint": "/other",
                 "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                              "url_pattern": "/o"}]}]}


def by_name(spans: list[ReceivedSpan], path: str) -> dict[str, ReceivedSpan]:
    """The four spans of the request to `path`, by role."""
    server = next(s for s in spans if s.kind == SERVER and s.name == path)
    mine = [s for s in spans if s.trace_id == server.trace_id]
    out = {"server": server}
    for s in mine:
        stage = s.attributes.get("krakend.stage")
        if stage == "proxy":
            out["proxy"] = s
        elif stage == "backend":
            out["backend"] = s
        elif stage == "backend-request":
            out["client"] = s
    return out


def one_request(spans: list[ReceivedSpan], path: str) -> bool:
    try:
        return len(by_name(spans, path)) == 4
    except StopIteration:
        return False


def seen_traceparent(body: bytes) -> str:
    headers = json.loads(body)["headers"]
    return next((v for k, v in headers.items() if k.lower() == "traceparent"), "")


def test_one_request_gives_the_four_spans_linked_and_the_backend_the_traceparent(
        tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port))
        gport = free_port()
        with gateway(str(cfg), gport):
            status, _, body = request(gport, "GET", "/users/7",
                                      headers={"User-Agent": "probe/1"})
            assert status == 200
            generation = health(gport)["generation"]["id"]
            spans = by_name(collector.wait(lambda s: one_request(s, "/users/7")), "/users/7")
    server, proxy, back, client = (spans[k] for k in ("server", "proxy", "backend", "client"))
    # krakend-otel's names: the request path, then the endpoint and backend patterns.
    assert (proxy.name, back.name, client.name) == ("/users/:id", "/u/:id", "/u/:id")
    assert {s.trace_id for s in spans.values()} == {server.trace_id}
    assert server.parent_span_id == ""
    assert proxy.parent_span_id == server.span_id
    assert back.parent_span_id == proxy.span_id
    assert client.parent_span_id == back.span_id
    assert client.kind == CLIENT
    version, trace_id, parent_id, flags = seen_traceparent(body).split("-")
    assert (version, trace_id, parent_id) == ("00", server.trace_id, client.span_id)
    assert int(flags, 16) & 1  # sampled
    assert server.attributes["http.route"] == "/users/:id"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["user_agent.original"] == "probe/1"
    assert proxy.attributes["http.response.status_code"] == 200
    assert proxy.attributes["complete"] is True
    assert back.attributes["krakend.endpoint.route"] == "/users/:id"
    assert client.attributes["url.full"] == f"http://127.0.0.1:{bport}/u/7"
    assert server.status_code == client.status_code == 1  # OK
    assert server.resource["service.name"] == "shop"
    assert server.scope == "io.krakend.krakend-otel"
    # Every span says which configuration served it.
    assert {s.attributes["tidegate.generation"] for s in spans.values()} == {generation}


def test_an_incoming_traceparent_is_continued(tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, rate=0.5))
        gport = free_port()
        with gateway(str(cfg), gport):
            # Sampled upstream: recorded whatever the rate.
            status, _, body = request(gport, "GET", "/users/1", headers={
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
            assert status == 200
            spans = by_name(collector.wait(lambda s: one_request(s, "/users/1")), "/users/1")
    assert spans["server"].trace_id == TRACE_ID
    assert spans["server"].parent_span_id == PARENT_ID
    assert seen_traceparent(body).startswith(f"00-{TRACE_ID}-")


def test_sample_rate_zero_sends_nothing_and_a_reload_turns_traces_on(tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, rate=0))
        gport = free_port()
        with gateway(str(cfg), gport, "--watch") as gw:
            status, _, body = request(gport, "GET", "/users/1")
            assert status == 200 and seen_traceparent(body) == ""
            write_config(cfg, config(bport, collector.port, rate=1))
            gw.wait_for("generation 2 active")
            status, _, body = request(gport, "GET", "/other")
            assert status == 200 and seen_traceparent(body) != ""
            spans = collector.wait(lambda s: one_request(s, "/other"))
    assert [s.name for s in spans if s.kind == SERVER] == ["/other"]


def test_a_grpc_collector_receives_the_spans(tmp_path: Path) -> None:
    with backend() as bport, GrpcReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, use_http=False))
        gport = free_port()
        with gateway(str(cfg), gport):
            assert request(gport, "GET", "/users/3")[0] == 200
            spans = by_name(collector.wait(lambda s: one_request(s, "/users/3")), "/users/3")
    assert spans["client"].parent_span_id == spans["backend"].span_id


def test_skip_paths_and_an_unmatched_route(tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, skip_paths=["/other"]))
        gport = free_port()
        with gateway(str(cfg), gport):
            status, _, body = request(gport, "GET", "/other")
            assert status == 200 and seen_traceparent(body) == ""
            assert request(gport, "GET", "/nowhere")[0] == 404
            spans = collector.wait(lambda s: any(x.kind == SERVER for x in s))
    assert [s.name for s in spans] == ["/nowhere"]
    assert spans[0].attributes["http.route"] == "404 Not Found"


def test_each_reload_and_each_rejected_save_is_a_span_with_generation_and_hash(
        tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port))
        gport = free_port()
        with gateway(str(cfg), gport, "--watch") as gw:
            first = health(gport)["generation"]
            cfg.write_text('{"version": 3, "endpoints": [}')
            gw.wait_for("krakend.json:1:")
            data = config(bport, collector.port)
            data["endpoints"].pop()
            write_config(cfg, data)
            gw.wait_for("generation 2 active")
            second = health(gport)["generation"]

            def reloads(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
                return [s for s in spans if s.name == "tidegate.reload"]

            spans = reloads(collector.wait(lambda s: len(reloads(s)) == 3))
    start, rejected, applied = spans
    assert start.attributes["tidegate.reload.result"] == "applied"
    assert start.attributes["tidegate.reload.reason"] == "start"
    assert start.attributes["tidegate.generation"] == first["id"]
    assert start.attributes["tidegate.config_hash"] == first["config_hash"]
    assert rejected.attributes["tidegate.reload.result"] == "rejected"
    assert rejected.status_code == 2  # ERROR
    assert rejected.attributes["tidegate.reload.error.file"] == str(cfg)
    assert rejected.attributes["tidegate.reload.error.line"] == 1
    assert rejected.events == ["config rejected"]
    assert applied.attributes["tidegate.generation"] == second["id"] == 2
    assert applied.attributes["tidegate.config_hash"] == second["config_hash"]
    assert applied.attributes["tidegate.reload.endpoints.removed"] == ["GET /other"]
    assert applied.events == ["config applied"]


def test_the_node_metrics_are_pushed_over_otlp_every_reporting_period(tmp_path: Path) -> None:
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, metric_reporting_period=1))
        gport = free_port()
        with gateway(str(cfg), gport, workers=2):
            for _ in range(3):
                assert request(gport, "GET", "/users/5")[0] == 200
            deadline = time.monotonic() + 20
            count = 0
            while count != 3:  # each push is cumulative: it reaches 3 within two periods
                request_ = collector.metrics.get(timeout=max(deadline - time.monotonic(), 0.1))
                count = server_requests(request_, "/users/{id}")  # the recorder's label
    resource = {a.key: a.value.string_value
                for a in request_.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "shop"


def server_requests(export: Any, route: str) -> int:
    """`http.server.duration`'s count for `route` in one OTLP metrics export."""
    for rm in export.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != "http.server.duration":
                    continue
                for point in metric.histogram.data_points:
                    attrs = {a.key: a.value.string_value for a in point.attributes}
                    if attrs.get("http.route") == route:
                        return int(point.count)
    return 0


def test_layers_propagation_off_static_attributes_and_reported_headers(tmp_path: Path) -> None:
    layers = {"global": {"disable_propagation": True, "traces_static_attributes": [
                  {"key": "team", "value": "shop"}]},
              "proxy": {"report_headers": True},
              "backend": {"traces": {"disable_stage": True, "round_trip": True}}}
    with backend() as bport, HttpReceiver() as collector:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, collector.port, layers=layers))
        gport = free_port()
        with gateway(str(cfg), gport):
            status, _, body = request(gport, "GET", "/users/9", headers={
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Probe": "yes"})
            assert status == 200
            spans = collector.wait(lambda s: sum(1 for x in s if x.trace_id != "") >= 3
                                   and any(x.kind == SERVER for x in s))
    server = next(s for s in spans if s.kind == SERVER)
    # The incoming trace is not continued and nothing is sent on to the backend.
    assert server.trace_id != TRACE_ID and server.parent_span_id == ""
    assert seen_traceparent(body) == ""
    assert server.attributes["team"] == "shop"
    stages = sorted(s.attributes["krakend.stage"] for s in spans)
    assert stages == ["backend-request", "global", "proxy"]  # no backend stage span
    proxy = next(s for s in spans if s.attributes["krakend.stage"] == "proxy")
    # what lura passes on to the backends (input_headers filtered)
    assert proxy.attributes["http.request.header.x-forwarded-for"] == ["127.0.0.1"]
    assert "http.request.header.x-probe" not in proxy.attributes
    client = next(s for s in spans if s.kind == CLIENT)
    assert client.parent_span_id == proxy.span_id


@pytest.mark.parametrize("proxy_component", [False, True])
def test_the_proxy_span_wraps_its_backend_span_and_carries_its_outcome(
        tmp_path: Path, proxy_component: bool) -> None:
    """An endpoint whose proxy is its one backend's call gets its proxy span from the
    backend's stage; one with a PROXY component below the traces (a CEL check) from the
    proxy stage. The spans, their links and outcomes are the same: an answer, a refused
    backend."""
    with backend() as bport, HttpReceiver() as collector:
        cfg = config(bport, collector.port)
        cfg["endpoints"].append({"endpoint": "/down", "backend": [
            {"host": [f"http://127.0.0.1:{free_port()}"], "url_pattern": "/d"}]})
        if proxy_component:
            check = [{"check_expr": "req_method == 'GET'"}]
            for endpoint in cfg["endpoints"]:
                endpoint["extra_config"] = {"validation/cel": check}
        path = tmp_path / "krakend.json"
        write_config(path, cfg)
        gport = free_port()
        with gateway(str(path), gport):
            assert request(gport, "GET", "/users/3")[0] == 200
            assert request(gport, "GET", "/down")[0] == 500
            spans = collector.wait(
                lambda s: one_request(s, "/users/3") and one_request(s, "/down"))
    for path, code in (("/users/3", 200), ("/down", 500)):
        found = by_name(spans, path)
        server, proxy, back, client = (found[k] for k in ("server", "proxy", "backend", "client"))
        assert proxy.parent_span_id == server.span_id
        assert back.parent_span_id == proxy.span_id
        assert client.parent_span_id == back.span_id
        assert server.start <= proxy.start <= back.start <= client.start
        assert client.end <= back.end <= proxy.end <= server.end
        for span in (proxy, back):
            assert span.attributes["http.response.status_code"] == code
            assert span.attributes["complete"] is (code == 200)
        if code == 500:
            assert "connection refused" in proxy.attributes["error"].lower()
            assert proxy.attributes["error"] == back.attributes["error"]
            assert client.events == ["exception"]
        else:
            assert "error" not in proxy.attributes


def trace_of(via: str, name: str) -> str:
    """A trace id of its own for each request (the client's, continued)."""
    return TRACE_ID[:-8] + f"{hash((via, name)) & 0xFFFFFFFF:08x}"


def test_the_client_span_and_traceparent_are_the_same_sent_in_line_or_through_the_chain(
        tmp_path: Path) -> None:
    """A backend whose client stages only watch the exchange sends in line and the traces'
    tap records its client span; one with an HTTP cache below the traces goes through the
    executor chain. Both give the backend one ``Traceparent`` (the client span's, the
    client's own replaced) with the tracestate, and the same client span: an answer, a
    404, a refused connection, reported headers."""
    layers = {"backend": {"traces": {"round_trip": True, "report_headers": True}}}
    dead = free_port()
    with backend() as bport, HttpReceiver() as collector:
        cfg = config(bport, collector.port, layers=layers)
        cfg["endpoints"] = []
        for via, extra in (("inline", {}), ("chain", {"qos/http-cache": {}})):
            for name, host, pattern in (("ok", bport, "/u/1"), ("missing", bport,
                                                                "/status/404"),
                                        ("down", dead, "/d")):
                cfg["endpoints"].append({
                    "endpoint": f"/{via}/{name}", "input_headers": ["*"],
                    "backend": [{"host": [f"http://127.0.0.1:{host}"], "url_pattern": pattern,
                                 "extra_config": dict(extra)}]})
        path = tmp_path / "krakend.json"
        write_config(path, cfg)
        gport = free_port()
        seen = {}
        with gateway(str(path), gport):
            for via in ("inline", "chain"):
                for name, code in (("ok", 200), ("missing", 500), ("down", 500)):
                    sent = {"User-Agent": "probe/2", "tracestate": "vendor=x",
                            "traceparent": f"00-{trace_of(via, name)}-{PARENT_ID}-01"}
                    status, _, body = request(gport, "GET", f"/{via}/{name}", headers=sent)
                    assert status == code, (via, name, body)
                    if name == "ok":
                        headers = json.loads(body)["headers"]
                        seen[via] = [(k, v) for k, v in headers.items()
                                     if k.lower() in ("traceparent", "tracestate")]
            paths = [f"/{via}/{name}" for via in ("inline", "chain")
                     for name in ("ok", "missing", "down")]
            spans = collector.wait(lambda s: all(one_request(s, p) for p in paths))
    clients = {p: by_name(spans, p)["client"] for p in paths}
    for via in ("inline", "chain"):
        client = clients[f"/{via}/ok"]
        # one Traceparent, this gateway's client span's, in the client's trace; its state
        assert client.trace_id == trace_of(via, "ok")
        assert seen[via] == [("Traceparent", f"00-{client.trace_id}-{client.span_id}-01"),
                             ("Tracestate", "vendor=x")]
    for name in ("ok", "missing", "down"):
        inline, chain = clients[f"/inline/{name}"], clients[f"/chain/{name}"]
        assert (inline.name, inline.kind, inline.status_code, inline.events) == (
            chain.name, chain.kind, chain.status_code, chain.events)
        varying = {"url.full", "krakend.endpoint.route", "http.request.header.traceparent",
                   "http.response.header.date", "response-duration"}
        assert set(inline.attributes) == set(chain.attributes)
        assert {k: v for k, v in inline.attributes.items() if k not in varying} == {
            k: v for k, v in chain.attributes.items() if k not in varying}
        assert inline.attributes["user_agent.original"] == "probe/2"
        assert inline.start <= inline.end
    assert clients["/inline/ok"].attributes["http.response.status_code"] == 200
    ok = clients["/inline/ok"].attributes
    assert ok["http.response.header.set-cookie"] == ["a=1"]
    assert ok["http.request.header.tracestate"] == ["vendor=x"]
    assert ok["http.response.body.size"] == int(ok["http.response.header.content-length"][0])
    assert clients["/inline/missing"].attributes["http.response.status_code"] == 404
    assert clients["/inline/missing"].attributes["http.response.body.size"] == 11
    assert clients["/inline/down"].events == ["exception"]
    assert "response-duration" in clients["/inline/ok"].attributes


def test_a_merge_nests_each_backend_call_s_spans_under_its_own_backend_span(
        tmp_path: Path) -> None:
    """The traces' backend span begun where the backend awaits its call (with the metrics'
    backend layer beside it, both reported in line): a merge of two backends gives one
    backend span each under the proxy span, and each exchange's client span under its own
    backend's."""
    metrics = {"prometheus": [{"name": "m", "listen_ip": "127.0.0.1", "port": free_port()}]}
    with backend() as bport, HttpReceiver() as collector:
        cfg = config(bport, collector.port)
        cfg["extra_config"]["telemetry/opentelemetry"]["exporters"].update(metrics)
        host = [f"http://127.0.0.1:{bport}"]
        cfg["endpoints"] = [{"endpoint": "/merged", "backend": [
            {"host": host, "url_pattern": "/u/2", "group": "a"},
            {"host": host, "url_pattern": "/u/3", "group": "b"}]}]
        path = tmp_path / "krakend.json"
        write_config(path, cfg)
        gport = free_port()
        with gateway(str(path), gport):
            status, _, body = request(gport, "GET", "/merged")
            assert status == 200 and set(json.loads(body)) == {"a", "b"}
            spans = collector.wait(lambda s: sum(1 for x in s if x.kind == CLIENT) == 2
                                   and any(x.kind == SERVER for x in s))
    server = next(s for s in spans if s.kind == SERVER)
    mine = [s for s in spans if s.trace_id == server.trace_id]
    (proxy,) = [s for s in mine if s.attributes["krakend.stage"] == "proxy"]
    backends = [s for s in mine if s.attributes["krakend.stage"] == "backend"]
    clients = [s for s in mine if s.kind == CLIENT]
    assert proxy.parent_span_id == server.span_id
    assert sorted(b.name for b in backends) == ["/u/2", "/u/3"]
    assert {b.parent_span_id for b in backends} == {proxy.span_id}
    by_span = {b.span_id: b.name for b in backends}
    assert sorted((by_span[c.parent_span_id], c.name) for c in clients) == [
        ("/u/2", "/u/2"), ("/u/3", "/u/3")]


def test_concurrent_calls_give_each_call_its_backend_span_and_client_span_under_it(
        tmp_path: Path) -> None:
    """``concurrent_calls``: the backend's calls run in tasks of their own; each begins its
    backend span in its own task, so each call's exchange nests under its own call's span,
    the first answer's and the cancelled one's alike (with the metrics' backend layer
    beside the traces', both reported in line)."""
    metrics = {"prometheus": [{"name": "m", "listen_ip": "127.0.0.1", "port": free_port()}]}
    with backend() as bport, HttpReceiver() as collector:
        cfg = config(bport, collector.port)
        cfg["extra_config"]["telemetry/opentelemetry"]["exporters"].update(metrics)
        cfg["endpoints"] = [{"endpoint": "/twice", "concurrent_calls": 2, "backend": [
            {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/u/1"}]}]
        path = tmp_path / "krakend.json"
        write_config(path, cfg)
        gport = free_port()
        with gateway(str(path), gport):
            assert request(gport, "GET", "/twice")[0] == 200
            spans = collector.wait(lambda s: sum(
                1 for x in s if x.attributes.get("krakend.stage") == "backend") == 2
                and any(x.kind == SERVER for x in s))
    server = next(s for s in spans if s.kind == SERVER)
    mine = [s for s in spans if s.trace_id == server.trace_id]
    (proxy,) = [s for s in mine if s.attributes["krakend.stage"] == "proxy"]
    backends = [s for s in mine if s.attributes["krakend.stage"] == "backend"]
    clients = [s for s in mine if s.kind == CLIENT]
    assert proxy.parent_span_id == server.span_id
    assert [b.parent_span_id for b in backends] == [proxy.span_id] * 2
    assert len({b.span_id for b in backends}) == 2
    # every exchange that started is under its own call's span
    assert clients and {c.parent_span_id for c in clients} <= {b.span_id for b in backends}
    assert len({c.parent_span_id for c in clients}) == len(clients)
