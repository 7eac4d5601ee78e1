"""The live status page: its document, its HTML, and what headless Chromium renders of it.

Chromium is Debian's `chromium`; without it the browser tests skip with the reason, unless
TIDEGATE_REQUIRE_CHROMIUM is set (CI's `.ci/run` sets it and installs the package).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import backend, free_port, gateway, health, request, write_config
from tidegate.telemetry.reloads import EndpointDiff, ReloadEvent, ReloadJournal
from tidegate.telemetry.status_doc import Serving, location, status_document
from tidegate.telemetry.status_page import embed_json, render_page
from tidegate.telemetry.status_service import StatusService
from tidegate.telemetry.status_source import endpoint_counters
from tidegate.telemetry.status_stats import EndpointCounters, StatsRing, quantile

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1)
XSS = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


# pure parts -------------------------------------------------------------------------------------
def test_quantile_reads_a_histogram_as_prometheus_does() -> None:
    # 10 observations: 4 up to 5 ms, 4 in (5, 10] ms, 2 in (10, 25] ms.
    buckets = (4, 4, 2, 0, 0, 0)
    assert quantile(0.5, BOUNDS, buckets) == pytest.approx(0.00625)  # rank 5: 1/4 into 5-10
    assert quantile(0.99, BOUNDS, buckets) == pytest.approx(0.01 + 0.015 * 1.9 / 2)
    assert quantile(0.5, BOUNDS, (0, 0, 0, 0, 0, 3)) == 0.1  # overflow: the last bound
    assert quantile(0.5, BOUNDS, (0,) * 6) is None


def test_ring_gives_rates_quantiles_and_series_per_endpoint() -> None:
    ring = StatsRing(size=3)
    route = "GET /users/{id}"
    ring.add(100.0, {route: EndpointCounters(0, 0, BOUNDS, (0,) * 6)})
    ring.add(102.0, {route: EndpointCounters(10, 2, BOUNDS, (10, 0, 0, 0, 0, 0))})
    ring.add(104.0, {route: EndpointCounters(30, 2, BOUNDS, (10, 0, 20, 0, 0, 0))})
    [row] = ring.endpoints()
    assert row["route"] == route and row["requests"] == 30 and row["errors"] == 2
    assert row["rate"] == 7.5 and row["error_rate"] == 0.5  # over the 4 s window
    assert row["series"]["rate"] == [5.0, 10.0]
    assert row["series"]["errors"] == [1.0, 0.0]
    assert row["series"]["p50"] == [2.5, 17.5]  # ms: the second interval's 20 are in 10-25 ms
    assert row["p50_ms"] == pytest.approx(13.75)  # whole window: rank 15 of 30, 5 into (10, 25]
    # The ring keeps `size` intervals; a counter that went down (a restart) counts anew.
    ring.add(106.0, {route: EndpointCounters(4, 0, BOUNDS, (4, 0, 0, 0, 0, 0))})
    ring.add(108.0, {route: EndpointCounters(8, 0, BOUNDS, (8, 0, 0, 0, 0, 0))})
    [row] = ring.endpoints()
    assert row["series"]["rate"] == [10.0, 2.0, 2.0]


def test_document_has_serving_history_diff_and_located_last_error() -> None:
    events = [
        ReloadEvent("applied", "start", time=0, generation=1, config_hash="aaa",
                    build_seconds=0.0123, diff=EndpointDiff(("GET /a",))),
        ReloadEvent("rejected", "change in krakend.json", time=1, generation=1,
                    error={"kind": "syntax", "message": "unexpected end", "file": "krakend.json",
                           "line": 4, "col": 2, "path": None, "error": "krakend.json:4:2: x"}),
    ]
    doc = status_document(Serving(1, "aaa", 2), events, StatsRing(), now=5)
    assert doc["serving"] == {"generation": 1, "config_hash": "aaa", "workers": 2}
    assert [h["result"] for h in doc["history"]] == ["rejected", "applied"]
    assert doc["history"][1]["diff"] == {"added": ["GET /a"], "removed": [], "changed": []}
    assert doc["history"][1]["build_ms"] == 12.3
    error = doc["last_error"]
    assert error["location"] == "krakend.json:4:2" and error["current"] is True
    assert error["message"] == "unexpected end" and error["serving_generation"] == 1
    assert error["all"] is None  # one problem: its location and message say it all
    # A good save afterwards: the error is history, fixed by generation 2.
    events.append(ReloadEvent("applied", "change in krakend.json", time=2, generation=2,
                              config_hash="bbb", diff=EndpointDiff((), (), ("GET /a",))))
    error = status_document(Serving(2, "bbb", 2), events, StatsRing())["last_error"]
    assert error["current"] is False and error["fixed_by"] == 2
    json.dumps(doc)  # all of it is JSON


def test_location_is_file_line_col_then_json_path() -> None:
    assert location({"file": "k.json", "line": 3, "col": 9,
                     "path": "endpoints[0].backend"}) == "k.json:3:9: endpoints[0].backend"
    assert location({"path": "endpoints[1].method"}) == "endpoints[1].method"
    assert location({"message": "worker 0 died"}) == ""


def test_embedded_json_cannot_close_its_script_element() -> None:
    text = embed_json({"route": "</script><script>alert(1)</script><!--", "x": "a&b\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"route": "</script><script>alert(1)</script><!--",
                                "x": "a&b\u2028"}
    page = render_page({"serving": None, "route": "</script><b>x</b>"}).decode()
    assert page.count("</script>") == 2  # the data block's and the script's own


def test_service_samples_and_answers_page_and_json() -> None:
    journal = ReloadJournal()
    journal.record(ReloadEvent("applied", "start", generation=1, config_hash="abc",
                               diff=EndpointDiff(("GET /a",))))
    counts = {"n": 0}
    enough = asyncio.Event()

    def counters() -> dict[str, EndpointCounters]:
        counts["n"] += 1
        if counts["n"] >= 3:
            enough.set()
        return {"GET /a": EndpointCounters(counts["n"], 0, BOUNDS, (counts["n"], 0, 0, 0, 0, 0))}

    service = StatusService(journal, lambda: Serving(1, "abc", 2), counters, every=0.0)

    async def sampled() -> None:
        task = asyncio.ensure_future(service.run())
        await asyncio.wait_for(enough.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(sampled())
    assert len(service.ring.samples) >= 3
    status, headers, body = service.json()
    doc = json.loads(body)
    assert status == 200 and ("Cache-Control", "no-store") in headers
    assert doc["serving"]["config_hash"] == "abc" and doc["history"][0]["generation"] == 1
    assert doc["endpoints"][0]["requests"] == counts["n"]  # a live read, newer than the ring
    status, headers, page = service.page()
    assert dict(headers)["Content-Type"].startswith("text/html")
    assert "script-src 'sha256-" in dict(headers)["Content-Security-Policy"]
    assert b'id="status-data"' in page


def test_endpoint_counters_sum_statuses_and_fold_bucket_layouts() -> None:
    labels = ("http.request.method", "url.scheme", "http.route", "http.response.status_code")
    small = (0.01, 0.1)
    families = {
        ("http.server.duration", "histogram", labels, BOUNDS): {
            ("GET", "http", "/a", "200"): [3, 1, 0, 0, 0, 0, 0.02],
            ("GET", "http", "/a", "502"): [0, 0, 0, 0, 0, 2, 0.4],
            ("POST", "http", "/b", "201"): [1, 0, 0, 0, 0, 0, 0.001]},
        ("http.server.duration", "histogram", labels, small): {  # before a reload
            ("GET", "http", "/a", "200"): [1, 0, 0, 0.001]},
        ("krakend.proxy.duration", "histogram", ("http.route",), BOUNDS): {
            ("/a",): [9, 0, 0, 0, 0, 0, 0.0]},
    }
    counters = endpoint_counters(families)
    assert set(counters) == {"GET /a", "POST /b"}
    a = counters["GET /a"]
    assert (a.requests, a.errors, a.bounds) == (7, 2, BOUNDS)
    assert a.buckets == (3, 2, 0, 0, 0, 2)  # the 10 ms observation went to the 10 ms bucket
    assert counters["POST /b"].errors == 0


# the Grafana dashboard --------------------------------------------------------------------------
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboards" / "tidegate.json"
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "delta", "changes", "histogram_quantile", "time", "clamp_min", "abs", "vector", "scalar",
    "by", "without", "on", "ignoring", "group_left", "group_right", "unless", "and", "or",
    "offset", "bool", "label_values"}


FORMATS = ("legendFormat", "titleFormat", "textFormat")


def dashboard_queries(dashboard: dict[str, object]) -> list[tuple[str, str]]:
    """Every PromQL text of a dashboard (panel targets, annotations, template variables),
    each with the label templates (``{{http_route}}``) its legend, annotation text or
    annotation tags use."""
    found: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("expr", "definition"):
                if isinstance(node.get(key), str):
                    tags = [t for t in str(node.get("tagKeys", "")).split(",") if t]
                    found.append((node[key], " ".join(
                        [str(node.get(f, "")) for f in FORMATS] + [f"{{{{{t}}}}}" for t in tags])))
            for key, value in node.items():
                if key not in ("expr", "definition"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return found


def query_labels(expr: str, formats: str = "") -> set[str]:
    """The label names a query needs: in its matchers, its grouping, its legend templates."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels: set[str] = set()
    for body in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", body))
    for body in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels |= {name.strip() for name in body.split(",") if name.strip()}
    labels |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", formats))
    match = re.match(r"\s*label_values\([^,]+,\s*(\w+)\)", text)
    if match:
        labels.add(match.group(1))
    return labels


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, labels or durations)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"label_values\(([^,()]+),[^)]*\)", r"\1", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    text = re.sub(r"\boffset\s+\w+", " ", text)
    text = re.sub(r"\$\w+|\b\d[\w.]*", " ", text)  # variables, numbers
    return {n for n in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text) if n not in PROMQL_WORDS}


def test_metric_names_are_read_out_of_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, http_route) (rate(http_server_duration_bucket'
            '{http_route=~"$route", code=~"5.."}[$__rate_interval]))) / on (x) '
            'tidegate_config_info offset 1m unless up > 1e3')
    assert metric_names(expr) == {"http_server_duration_bucket", "tidegate_config_info", "up"}
    assert metric_names("label_values(http_server_duration_count, http_route)") == {
        "http_server_duration_count"}
    assert query_labels(expr, "{{http_route}} p99") == {"le", "http_route", "code", "x"}


def test_dashboard_charts_endpoints_backends_and_reload_annotations() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    for wanted in ("Request rate by endpoint", "p50 latency by endpoint",
                   "p99 latency by endpoint", "Errors (5xx) by endpoint", "Backend errors"):
        assert any(t.startswith(wanted) for t in titles), wanted
    annotations = {a["name"]: a for a in dashboard["annotations"]["list"]}
    assert "tidegate_config_info" in metric_names(annotations["Reloads"]["expr"])
    assert "tidegate_reloads_total" in metric_names(annotations["Rejected saves"]["expr"])
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(metric_names(t["expr"]) for t in panel["targets"])


# Chromium ---------------------------------------------------------------------------------------
def chromium_binary() -> str:
    """Debian's chromium; skip (or fail under TIDEGATE_REQUIRE_CHROMIUM) without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("TIDEGATE_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (TIDEGATE_REQUIRE_CHROMIUM) but missing")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


def run_chromium(url: str, *args: str, timeout: float = 90.0) -> str:
    """One headless Chromium run over `url`; its stdout. The browser's whole process group
    (it forks helpers) is ours and is killed if it outlives `timeout`."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--virtual-time-budget=6000", *args, url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        assert proc.returncode == 0, f"chromium exited {proc.returncode}"
        return out


def by_id(dom: str, ident: str) -> str:
    """The text of the element with `id` (a leaf: no element inside)."""
    found = re.search(rf'id="{ident}"[^>]*>([^<]*)<', dom)
    assert found, f"no element #{ident} in the DOM:\n{dom[:3000]}"
    return unescape(found.group(1))


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the RGB(A) rows of an 8-bit, non-interlaced PNG
    (what Chromium writes), with the scanline filters undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind_, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind_ == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind_ == 2:  # Up
            line = bytearray((x + u) & 255 for x, u in zip(line, prev, strict=True))
        elif kind_ == 3:  # Average
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif kind_ == 4:  # Paeth
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def assert_screenshot(path: Path, width: int, height: int) -> None:
    """A PNG of the window's size that shows a page: several colours, and no single colour
    covering nearly everything (a blank or crashed render is one colour)."""
    w, h, bpp, rows = decode_png(path.read_bytes())
    assert (w, h) == (width, height)
    colours: Counter[bytes] = Counter()
    for row in rows:
        colours.update(row[i:i + 3] for i in range(0, len(row), bpp))
    top, count = colours.most_common(1)[0]
    assert len(colours) > 50, f"only {len(colours)} colours"
    assert count < 0.97 * w * h, f"{top.hex()} covers {count / (w * h):.0%}"


@contextmanager
def serve(pages: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 answering `pages` (path -> content type, body)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = pages.get(self.path, ("text/plain", b"not found"))
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def hostile_document(generation: int) -> dict[str, object]:
    """A document whose route, file and message are markup: they must show as text."""
    ring = StatsRing()
    for i in range(5):
        ring.add(1000.0 + 2 * i, {f"GET /x{XSS}": EndpointCounters(
            10 * i, i, BOUNDS, (5 * i, 5 * i, 0, 0, 0, 0))})
    events = [ReloadEvent("applied", "start", time=0, generation=1, config_hash="c0ffee",
                          diff=EndpointDiff((f"GET /x{XSS}",))),
              ReloadEvent("rejected", f"change in {XSS}.json", time=1, generation=1,
                          error={"kind": "value", "message": f"bad value {XSS}",
                                 "file": f"{XSS}.json", "line": 7, "col": 3, "path": None,
                                 "error": f"{XSS}.json:7:3: bad value {XSS}\n"
                                          f"{XSS}.json:9:1: endpoints[1]: second problem"})]
    return status_document(Serving(generation, f"hash{generation}", 1), events, ring)


@pytest.mark.slow
def test_chromium_renders_markup_from_config_as_text_and_polls(tmp_path: Path) -> None:
    first, later = hostile_document(1), hostile_document(2)
    pages = {"/__status": ("text/html; charset=utf-8", render_page(first)),
             "/__status.json": ("application/json", json.dumps(later).encode())}
    with serve(pages) as base:
        dom = run_chromium(f"{base}/__status", "--dump-dom")
        shot = tmp_path / "page.png"
        run_chromium(f"{base}/__status", f"--screenshot={shot}", "--window-size=1000,700")
    assert 'data-rendered="1"' in dom
    # The poll replaced the embedded document with the served one.
    assert by_id(dom, "generation") == "2" and by_id(dom, "config-hash") == "hash2"
    assert by_id(dom, "error-location") == f"{XSS}.json:7:3"
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None and "data-pwned" not in body.group(0)
    assert "<img" not in dom  # the markup is text (&lt;img), not an element
    assert dom.count('class="endpoint"') == 1
    assert "second problem" in dom.split('class="mono all"', 1)[1].split("</div>", 1)[0]
    assert_screenshot(shot, 1000, 700)


def test_a_live_sample_makes_totals_exact_without_entering_the_ring() -> None:
    ring = StatsRing()
    route = "GET /a"
    ring.add(10.0, {route: EndpointCounters(2, 0, BOUNDS, (2, 0, 0, 0, 0, 0))})
    live = {route: EndpointCounters(6, 1, BOUNDS, (6, 0, 0, 0, 0, 0))}
    doc = status_document(None, [], ring, now=12.0, live=live)
    [row] = doc["endpoints"]
    assert row["requests"] == 6 and row["errors"] == 1 and row["rate"] == 2.0
    assert doc["window_seconds"] == 2.0 and len(ring.samples) == 1


# a real gateway -----------------------------------------------------------------------------------
def gateway_config(bport: int, mport: int, timeout: str = "5s") -> str:
    """The configuration as text (its line:col is what the page must show): the first
    endpoint's `timeout` is on line 6."""
    host = json.dumps([f"http://127.0.0.1:{bport}"])
    return f"""{{
  "version": 3, "name": "status-test", "timeout": "5s", "listen_ip": "127.0.0.1",
  "extra_config": {{"telemetry/opentelemetry": {{"exporters": {{"prometheus": [
    {{"name": "local", "listen_ip": "127.0.0.1", "port": {mport}}}]}}}}}},
  "endpoints": [
    {{"endpoint": "/users/{{id}}", "timeout": {json.dumps(timeout)},
     "backend": [{{"host": {host}, "url_pattern": "/echo/{{id}}"}}]}},
    {{"endpoint": "/fail", "backend": [{{"host": {host}, "url_pattern": "/status/500"}}]}}
  ]
}}
"""


def status_json(port: int) -> dict[str, Any]:
    status, headers, body = request(port, "GET", "/__status.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    return json.loads(body)


@pytest.mark.slow
def test_status_page_of_a_real_gateway_in_chromium(tmp_path: Path) -> None:
    chromium_binary()  # skip early, before starting anything
    config = tmp_path / "krakend.json"
    mport = free_port()
    with backend() as bport:
        config.write_text(gateway_config(bport, mport))
        port = free_port()
        with gateway(str(config), port, "--watch", workers=2) as gw:
            gw.wait_for(f"listening on 127.0.0.1:{mport}")  # the telemetry listener
            for i in range(6):
                assert request(port, "GET", f"/users/{i}")[0] == 200
            for _ in range(2):
                assert request(port, "GET", "/fail")[0] == 500
            # A broken save whose error text carries markup: shown as text, located.
            broken = gateway_config(bport, mport, timeout="<b>fast</b>")
            config.write_text(broken)
            gw.wait_for("configuration rejected")
            served = health(port)["generation"]
            # The workers ship their counts every second: wait until the node has them all.
            deadline = time.monotonic() + 15
            while True:
                doc = status_json(mport)
                rows = {r["route"]: r for r in doc["endpoints"]}
                if (rows.get("GET /users/{id}", {}).get("requests") == 6
                        and rows.get("GET /fail", {}).get("errors") == 2):
                    break
                assert time.monotonic() < deadline, doc
                threading.Event().wait(0.2)  # polling the node's own answer, bounded
            assert doc["serving"]["generation"] == served["id"]
            assert doc["serving"]["config_hash"] == served["config_hash"]
            dom = run_chromium(f"http://127.0.0.1:{mport}/__status", "--dump-dom")
            shot = tmp_path / "status.png"
            run_chromium(f"http://127.0.0.1:{mport}/__status", f"--screenshot={shot}",
                         "--window-size=1200,900")
            status, _, metrics = request(mport, "GET", "/metrics")
            assert status == 200
    assert by_id(dom, "generation") == str(served["id"])
    assert by_id(dom, "config-hash") == served["config_hash"]
    col = broken.splitlines()[5].index('"<b>') + 1  # the value's opening quote
    where = f"{config}:6:{col}: endpoints[0].timeout"
    assert by_id(dom, "error-location") == where
    assert "&lt;b&gt;fast&lt;/b&gt;" in dom and "<b>fast" not in dom
    for route in ("GET /users/{id}", "GET /fail"):
        assert f'data-route="{route}"' in dom
    assert_screenshot(shot, 1200, 900)
    # Every metric the Grafana dashboard queries is one this gateway exposes, with every
    # label the query filters, groups or names in a legend (Prometheus adds instance, job).
    exposed: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.decode()):
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(sample.labels)
    for expr, formats in dashboard_queries(json.loads(DASHBOARD.read_text())):
        names = metric_names(expr)
        assert names <= set(exposed), f"{expr}: not exposed: {sorted(names - set(exposed))}"
        have = set().union(*(exposed[n] for n in names)) | {"instance", "job", "le"}
        wanted = query_labels(expr, formats)
        assert wanted <= have, f"{expr}: no label {sorted(wanted - have)} on {sorted(names)}"


@pytest.mark.slow
def test_without_prometheus_the_page_is_on_the_telemetry_metrics_listener(
        tmp_path: Path) -> None:
    sport, port = free_port(), free_port()
    config = tmp_path / "krakend.json"

    def data(*endpoints: dict[str, Any]) -> dict[str, Any]:
        return {"version": 3, "listen_ip": "127.0.0.1", "endpoints": list(endpoints),
                "extra_config": {"telemetry/metrics": {"listen_address": f"127.0.0.1:{sport}"}}}

    with backend() as bport:
        a = {"endpoint": "/a", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                            "url_pattern": "/echo"}]}
        write_config(config, data(a))
        with gateway(str(config), port, "--watch") as gw:
            gw.wait_for(f"telemetry/metrics listening on 127.0.0.1:{sport}")
            served = health(port)["generation"]
            doc = status_json(sport)
            status, headers, page = request(sport, "GET", "/__status")
            # A good save: the page follows the generation, with what changed.
            write_config(config, data({**a, "output_encoding": "string"},
                                      {**a, "endpoint": "/b"}))
            gw.wait_for("generation 2 active")
            after, then = status_json(sport), health(port)["generation"]
    assert doc["serving"] == {"generation": served["id"],
                              "config_hash": served["config_hash"], "workers": 1}
    assert doc["history"][0]["diff"]["added"] == ["GET /a"]
    assert after["serving"]["generation"] == then["id"] == 2
    assert after["serving"]["config_hash"] == then["config_hash"] != served["config_hash"]
    assert after["history"][0]["diff"] == {"added": ["GET /b"], "removed": [],
                                           "changed": ["GET /a"]}
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert b"<title>tidegate status</title>" in page
