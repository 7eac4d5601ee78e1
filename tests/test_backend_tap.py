"""A BACKEND-level stage that only watches the backend's call offers a `BackendTap`: when it
wraps nothing but the backend's own call, the compiled backend never awaits the stage and
reports each call to the tap itself (the endpoint around its direct call, the backend around
a merge's or a proxy stage's call), with the values the stage would have reported: the
answer, or a status error, a refused connection, the backend's timeout, a cancellation.
Under another backend component the stage is awaited as before, and reports the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest

from tests.otlp_receiver import HttpReceiver
from tests.support import backend, free_port, gateway, request, write_config
from tests.test_metrics_client import Fixed, silent_port
from tests.test_metrics_e2e import SCOPE, sample, scrape, until
from tests.test_metrics_layers import WAYS, layer_series, leave_early, proxy
from tests.test_metrics_layers import endpoints as layer_endpoints
from tests.test_pipeline_support import (
    Gateway,
    ScriptedBackend,
    Seen,
    answer,
    backend_cfg,
    endpoint,
    hang,
    refused_url,
    run,
    service,
)
from tidegate.components import DEFAULT_REGISTRY, Build, Component, Level
from tidegate.messages import BackendProxy, BackendTap, ProxyRequest, ProxyResponse

WATCH = "test/watch"
AROUND = "test/around"
CEL = {"validation/cel": [{"check_expr": "req_method == 'GET'"}]}

# What the watching component saw, in order: ("stage",) each time its stage was awaited,
# then ("done", status, complete) or ("failed", exception class name) per backend call.
reports: list[tuple[Any, ...]] = []


class Watching:
    """The watching stage: awaited only when the backend cannot skip it."""

    def __init__(self, nxt: BackendProxy) -> None:
        self.nxt = nxt
        self.backend_tap = BackendTap(nxt, done, failed)

    async def __call__(self, req: ProxyRequest) -> ProxyResponse:
        reports.append(("stage",))
        started = perf_counter()
        try:
            resp = await self.nxt(req)
        except BaseException as exc:
            failed(exc, started)
            raise
        done(resp, started)
        return resp


def done(resp: ProxyResponse, started: float) -> None:
    assert perf_counter() >= started
    reports.append(("done", resp.status, resp.complete))


def failed(exc: BaseException, started: float) -> None:
    assert perf_counter() >= started
    reports.append(("failed", type(exc).__name__))


def build_watch(ctx: Build[Any], nxt: BackendProxy) -> BackendProxy:
    return Watching(nxt)


def build_around(ctx: Build[Any], nxt: BackendProxy) -> BackendProxy:
    """A backend component that is not a tap (it could change the call): inside the
    watching one, so the watching stage wraps more than the backend's call."""

    async def around(req: ProxyRequest) -> ProxyResponse:
        return await nxt(req)

    return around


@pytest.fixture(autouse=True)
def _components() -> Iterator[None]:
    DEFAULT_REGISTRY.add(Component(WATCH, frozenset({Level.BACKEND}), build_watch,
                                   order=50, bounded=True))
    DEFAULT_REGISTRY.add(Component(AROUND, frozenset({Level.BACKEND}), build_around,
                                   order=10, bounded=True))
    reports.clear()
    yield
    DEFAULT_REGISTRY.remove(WATCH)
    DEFAULT_REGISTRY.remove(AROUND)


CASES = ("ok", "missing", "down", "slow", "left")


def backends(url: str, down: str, case: str, chained: bool) -> dict[str, Any]:
    host, path = {"ok": (url, "/ok"), "missing": (url, "/missing"), "down": (down, "/x"),
                  "slow": (url, "/hang"), "left": (url, "/leave")}[case]
    extra: dict[str, Any] = {WATCH: {}}
    if chained:
        extra[AROUND] = {}
    return backend_cfg(host, path, extra_config=extra)


def config(url: str, down: str, way: str, chained: bool) -> dict[str, Any]:
    """One endpoint per case: its backend alone (awaited by the endpoint), behind a proxy
    component (CEL: the proxy stage calls it), or merged with a second backend."""
    eps = []
    for case in CASES:
        be = backends(url, down, case, chained)
        if way == "alone":
            ep = endpoint(f"/{case}", be)
        elif way == "staged":
            ep = endpoint(f"/{case}", be, extra_config=CEL)
        else:
            ep = endpoint(f"/{case}", be, backend_cfg(url, "/other"))
        if case == "slow":
            ep["timeout"] = "200ms"  # the backend's deadline (and a merge's)
        eps.append(ep)
    return service(*eps)


async def ask(way: str, chained: bool) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Each case once: the statuses answered, and what the watching component reported."""
    statuses = []
    reached = asyncio.Event()

    async def leave(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
        reached.set()  # the request is at the backend: the client may leave now
        return await hang(backend, w, seen)

    async with ScriptedBackend({"/ok": answer(200, {"a": 1}), "/other": answer(200, {"b": 2}),
                                "/missing": answer(404, {"no": 1}), "/hang": hang,
                                "/leave": leave}) as scripted:
        gw = Gateway(config(scripted.url, refused_url(), way, chained))
        try:
            for case in CASES:
                if case == "left":  # the client leaves before the backend answers
                    task = asyncio.ensure_future(gw.get("/left"))
                    await asyncio.wait_for(reached.wait(), 10)
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                    statuses.append(-1)
                else:
                    statuses.append((await gw.get(f"/{case}")).status)
        finally:
            await gw.close()
    return statuses, list(reports)


EXPECTED = [("done", 200, True), ("failed", "BackendStatusError"),
            ("failed", "BackendUnavailable"), ("failed", "BackendTimeout"),
            ("failed", "CancelledError")]


@pytest.mark.parametrize("way", ["alone", "staged", "merged"])
def test_a_watching_backend_stage_is_reported_inline_with_the_same_outcomes(way: str) -> None:
    statuses, inline = run(ask(way, chained=False))
    reports.clear()
    chained_statuses, chained = run(ask(way, chained=True))
    # A merge answers what its other backend returned (incomplete) when this one fails.
    assert statuses == chained_statuses == (
        [200, 200, 200, 200, -1] if way == "merged" else [200, 500, 500, 500, -1])
    # Under the other component, awaited once per call; the same reports either way.
    assert ("stage",) not in inline
    assert chained.count(("stage",)) == len(CASES)
    chained = [r for r in chained if r != ("stage",)]
    if way == "merged":
        # The merge's deadline and the backend's are the same instant: the call is
        # cancelled by the one or fails by the other, reported as what happened.
        for seen in (inline, chained):
            assert seen[3] in (EXPECTED[3], ("failed", "CancelledError"))
            seen[3] = EXPECTED[3]
    assert inline == chained == EXPECTED  # every outcome reported, in order


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.slow
def test_metrics_alone_and_beside_the_traces_backend_tap_count_the_same(
        tmp_path: Path) -> None:
    """The metrics' backend layer reported inline alone and beside the traces' backend tap
    (which begins a sampled request's backend span around the same call): the same backend
    and proxy series for answers, status errors, refused connections, timeouts and a client
    that leaves; the sampled requests' spans arrive."""
    down = free_port()
    with backend(Fixed) as bport, silent_port() as silent, HttpReceiver() as collector:
        gateways = {}
        for name, traces in (("alone", False), ("traced", True)):
            otel: dict[str, Any] = {"exporters": {"prometheus": [
                {"name": "local", "listen_ip": "127.0.0.1", "port": free_port()}]}}
            if traces:
                otel["trace_sample_rate"] = 0.5  # the traceparent's flag decides below
                otel["exporters"]["otlp"] = [{"name": "c", "host": "127.0.0.1",
                                              "port": collector.port, "use_http": True,
                                              "disable_metrics": True}]
            cfg = tmp_path / f"{name}.json"
            write_config(cfg, {"version": 3, "name": "tap", "timeout": "5s",
                               "endpoints": layer_endpoints(bport, down, silent),
                               "extra_config": {"telemetry/opentelemetry": otel}})
            gateways[name] = (cfg, otel["exporters"]["prometheus"][0]["port"])
        scraped = {}
        for name, (cfg, mport) in gateways.items():
            port = free_port()
            with gateway(str(cfg), port) as gw:
                gw.wait_for("prometheus exporter 'local' listening on 127.0.0.1")
                for way in WAYS:
                    for flag in ("00", "01"):  # not sampled, sampled
                        h = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-{flag}"}
                        assert request(port, "GET", f"/{way}/fixed", headers=h)[0] == 200
                        assert request(port, "GET", f"/{way}/missing", headers=h)[0] == 500
                        assert request(port, "GET", f"/{way}/down", headers=h)[0] == 500
                    assert request(port, "GET", f"/{way}/slow")[0] == 500
                    leave_early(port, f"/{way}/gone")
                scraped[name] = until(lambda mport=mport: (s := scrape(mport)) and all(
                    proxy(s, f"/{way}/gone", "false", "true", "false") == 1
                    for way in WAYS) and s, timeout=10)
                if name == "traced":
                    spans = collector.wait(lambda s: all(
                        len(backend_spans(s, f"/{way}/{case}")) >= 1
                        for way in WAYS for case in ("fixed", "missing", "down")))
    for name, samples in scraped.items():
        assert samples, f"the cancelled requests did not reach the scrape ({name})"
        for way in WAYS:
            route = f"/{way}/"
            assert proxy(samples, route + "fixed", "false", "false", "true") == 2, name
            assert proxy(samples, route + "missing", "true", "false", "false") == 2, name
            assert proxy(samples, route + "down", "true", "false", "false") == 2, name
            assert proxy(samples, route + "slow", "true", "false", "false") == 1, name
            assert sample(samples, "krakend_backend_duration_count", http_request_method="GET",
                          http_route="/fixed", krakend_endpoint_route=route + "fixed",
                          krakend_endpoint_method="GET", error="false", canceled="false",
                          complete="true", **SCOPE) == 2, name
    for case in ("fixed", "missing", "down", "slow", "gone"):
        for way in WAYS:
            alone = layer_series(scraped["alone"], f"/{way}/{case}")
            assert alone and alone == layer_series(scraped["traced"], f"/{way}/{case}"), case
    for way in WAYS:  # one sampled request each: its backend span, with its outcome
        (fixed,) = backend_spans(spans, f"/{way}/fixed")
        assert fixed.attributes["http.response.status_code"] == 200
        assert fixed.attributes["complete"] is True
        for case in ("missing", "down"):
            (failed_span,) = backend_spans(spans, f"/{way}/{case}")
            assert failed_span.attributes["http.response.status_code"] == 500
            assert failed_span.attributes["complete"] is False
            assert failed_span.attributes["error"]


def backend_spans(spans: list[Any], route: str) -> list[Any]:
    return [x for x in spans if x.attributes.get("krakend.stage") == "backend"
            and x.attributes.get("krakend.endpoint.route") == route
            and x.trace_id == TRACE_ID]
