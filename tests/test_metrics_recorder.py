"""The worker-side metrics recorder: krakend-otel's series, recorded per endpoint and backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_pipeline_support import (
    Gateway,
    ScriptedBackend,
    answer,
    backend_cfg,
    endpoint,
    refused_url,
    run,
    service,
)
from tidegate.telemetry.recorder import Table, table


def counts(t: Table, name: str) -> dict[tuple[str, ...], float]:
    """label values -> observations (histograms) or value (counters)."""
    out: dict[tuple[str, ...], float] = {}
    t.snapshot()  # derived counters (requests started) are computed with a snapshot
    for fam in t.families.values():
        if fam.name == name:
            for values, series in fam.series.items():
                out[values] = sum(series[:-1]) if fam.kind == "histogram" else series[0]
    return out


def otel(**extra: Any) -> dict[str, Any]:
    return {"exporters": {"prometheus": [{"name": "p", "port": 1}]}, **extra}


def test_server_proxy_backend_and_client_series() -> None:
    async def scenario() -> Table:
        async with ScriptedBackend({"/a/1": answer(200, {"x": 1})}) as b:
            cfg = service(endpoint("/rec/{id}", backend_cfg(b.url, "/a/{id}")),
                          endpoint("/down", backend_cfg(refused_url(), "/d")))
            cfg["extra_config"]["telemetry/opentelemetry"] = otel()
            gw = Gateway(cfg)
            before = dict(counts(table(), "http.server.duration"))
            for _ in range(3):
                assert (await gw.get("/rec/1")).status == 200
            assert (await gw.get("/down")).status == 500
            assert (await gw.get("/nowhere")).status == 404
            assert (await gw.get("/__health")).status == 200  # a default skip path
            await gw.close()
        after = counts(table(), "http.server.duration")
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        assert delta == {("GET", "http", "/rec/{id}", "200"): 3,
                         ("GET", "http", "/down", "500"): 1,
                         ("GET", "http", "404 Not Found", "404"): 1}
        return table()

    t = run(scenario())
    assert counts(t, "krakend.proxy.duration")[("GET", "/rec/{id}", "false", "false", "true")] >= 3
    assert counts(t, "krakend.proxy.duration")[("GET", "/down", "true", "false", "false")] >= 1
    backend = counts(t, "krakend.backend.duration")
    assert backend[("GET", "/a/:id", "/rec/{id}", "GET", "false", "false", "true")] >= 3
    assert backend[("GET", "/d", "/down", "GET", "true", "false", "false")] >= 1
    started = counts(t, "http.client.request.started.count")
    ok = [k for k in started if k[1] == "/a/:id" and k[-1] == "200"]
    assert ok and len(ok[0]) == 8 and ok[0][4] == "/a/:id"  # clientname
    failed = counts(t, "http.client.request.failed.count")
    assert any(k[1] == "/d" and k[-1] == "0" and v >= 1 for k, v in failed.items())


def test_layers_switch_off_and_static_attributes() -> None:
    async def scenario() -> None:
        async with ScriptedBackend({"/b": answer(200, {"x": 1})}) as b:
            cfg = service(endpoint("/layers", backend_cfg(b.url, "/b")),
                          endpoint("/skipped", backend_cfg(b.url, "/b")))
            cfg["extra_config"]["telemetry/opentelemetry"] = otel(
                skip_paths=["/skipped"],
                layers={"global": {"metrics_static_attributes": [{"key": "team",
                                                                  "value": "core"}]},
                        "proxy": {"disable_metrics": True},
                        "backend": {"metrics": {"disable_stage": True}}})
            gw = Gateway(cfg)
            assert (await gw.get("/layers")).status == 200
            assert (await gw.get("/skipped")).status == 200
            await gw.close()

    run(scenario())
    t = table()
    server = counts(t, "http.server.duration")
    assert ("core", "GET", "http", "/layers", "200") in server
    assert not any("/skipped" in k for k in server)
    assert not any("/layers" in k for k in counts(t, "krakend.proxy.duration"))
    assert not any("/layers" in k for k in counts(t, "krakend.backend.duration"))
    # round_trip is false once `layers.backend.metrics` is given (Go's zero value)
    assert not any("/layers" in k for k in counts(t, "http.client.duration"))


def test_no_metrics_exporter_records_nothing() -> None:
    async def scenario() -> None:
        async with ScriptedBackend({"/c": answer(200, {"x": 1})}) as b:
            cfg = service(endpoint("/quiet", backend_cfg(b.url, "/c")))
            cfg["extra_config"]["telemetry/opentelemetry"] = {
                "exporters": {"otlp": [{"name": "o", "disable_metrics": True}]}}
            gw = Gateway(cfg)
            assert (await gw.get("/quiet")).status == 200
            await gw.close()

    run(scenario())
    assert not any("/quiet" in k for k in counts(table(), "http.server.duration"))


def test_snapshot_sends_only_what_moved() -> None:
    t = Table()
    fam = t.histogram("h", ("a",), (1.0, 2.0))
    s = fam.get(("x",))
    s[0] += 1
    s[-1] += 0.5
    first = t.snapshot()
    assert first == [["h", "histogram", ["a"], [1.0, 2.0], [[["x"], [1, 0, 0, 0.5]]]]]
    assert t.snapshot() == []
    s[2] += 1
    assert t.snapshot()[0][4][0][1][2] == 1


def test_histogram_observations_count_as_prometheus_le_buckets_at_every_snapshot() -> None:
    """A value equal to a bound falls in that bound's bucket (``le``), one above every bound
    in ``+Inf``; the sum is their sum; each snapshot sends the series that moved, with every
    observation made before it."""
    t = Table()
    hist = t.histogram("h", ("a",), (0.5, 1.0, 2.0)).hist(("x",))
    values = [0.0, 0.5, 0.5000001, 1.0, 2.0, 2.5, 1e9, 0.25]
    for v in values:
        hist.observe(v)
    [[name, kind, labels, bounds, [[label_values, series]]]] = t.snapshot()
    assert (name, kind, labels, bounds, label_values) == ("h", "histogram", ["a"],
                                                          [0.5, 1.0, 2.0], ["x"])
    assert series[:4] == [3, 2, 1, 2] and series[4] == pytest.approx(sum(values))
    assert t.snapshot() == []
    hist.observe(1.0)
    assert t.snapshot()[0][4][0][1][:4] == [3, 3, 1, 2]


def test_client_series_are_kept_per_origin_not_per_target_object() -> None:
    """A component's URL past the backend's kept origins makes a new target object per
    request: its client series are found by host and port, the series' own labels, so the
    recorder holds one entry per origin however many requests name it."""
    from tidegate.components.telemetry_metrics import CLIENT_COUNTERS, ClientSeries
    from tidegate.upstream.target import parse_target

    t = Table()
    labels = ("route", "server.address", "server.port", "http.response.status_code")
    series = ClientSeries(tuple(t.counter(n, labels) for n in CLIENT_COUNTERS),
                          t.histogram("d", labels, (1.0,)), t.histogram("s", labels, (1.0,)),
                          ("/r",))
    first = series.entry(parse_target("http://10.0.0.1:81"), 200)
    for _ in range(50):  # the same two origins, a new target object each time
        assert series.entry(parse_target("http://10.0.0.2:82"), 200) is not first
        assert series.entry(parse_target("http://10.0.0.1:81"), 200) is first
    assert series.entry(parse_target("http://10.0.0.1:81"), 799) is \
        series.entry(parse_target("http://10.0.0.1:81"), 799)
    assert sorted(series.series) == [("10.0.0.1", "81"), ("10.0.0.2", "82")]
    assert list(series.extra) == [("10.0.0.1", "81", 799)]
