"""`/__status`: one self-contained HTML page (inline CSS and JS, no external asset: works offline).

The server embeds the current `/__status.json` document in the page, so the first paint shows
everything (charts included, from the supervisor's sample ring) without a round trip; the script
then polls the document every couple of seconds. Every string that comes from a configuration
or an error (a route, a file name, a message) reaches the DOM through `textContent` or
`setAttribute`, never as markup, and the embedded JSON has its `<`, `>` and `&` escaped, so a
route or an error text cannot inject HTML. A Content-Security-Policy allowing only this page's
own script and style (by hash) and fetches to its own origin backs that up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

PAGE_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"

STYLE = """
:root { color-scheme: light dark; --fg: #1c2330; --muted: #5b6577; --bg: #f7f8fa;
  --card: #fff; --line: #d9dee7; --ok: #1a7f37; --bad: #c62828; --rate: #2f6fdb;
  --p50: #1a7f37; --p99: #b45309; --err: #c62828; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #9aa3b2;
  --bg: #14171c; --card: #1c2027; --line: #2e343e; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px; font: 14px/1.4 system-ui, sans-serif; color: var(--fg);
  background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 8px; }
.muted { color: var(--muted); } code, .mono { font-family: ui-monospace, monospace; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 14px; min-width: 160px; }
.card .v { font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: var(--card); }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.mono, .card .mono { overflow-wrap: anywhere; } td.time { white-space: nowrap; }
.applied { color: var(--ok); } .rejected { color: var(--bad); } .unchanged { color: var(--muted); }
#last-error { border-left: 4px solid var(--bad); }
#last-error.fixed { border-left-color: var(--ok); }
.add { color: var(--ok); } .rem { color: var(--bad); } .chg { color: var(--p99); }
svg.spark { display: block; } svg.spark polyline { fill: none; stroke-width: 1.5; }
svg.spark line { stroke: currentColor; stroke-opacity: 0.25; }
svg.spark circle { stroke: none; } svg.spark circle.rate { fill: var(--rate); }
svg.spark circle.p50 { fill: var(--p50); } svg.spark circle.p99 { fill: var(--p99); }
svg.spark circle.err { fill: var(--err); }
.rate { stroke: var(--rate); color: var(--rate); } .p50 { stroke: var(--p50); color: var(--p50); }
.p99 { stroke: var(--p99); color: var(--p99); } .err { stroke: var(--err); color: var(--err); }
.all { white-space: pre-wrap; margin-top: 4px; }
.legend span { margin-right: 10px; } #stale { color: var(--bad); }
"""

SCRIPT = """
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var POLL_MS = 2000;
  function el(tag, cls, kids) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    (kids || []).forEach(function (k) {
      e.appendChild(typeof k === "object" && k !== null ? k : document.createTextNode(show(k)));
    });
    return e;
  }
  function show(v) { return v === null || v === undefined || v === "" ? "\\u2014" : String(v); }
  function num(v, unit) { return v === null || v === undefined ? "\\u2014" : v + (unit || ""); }
  function fill(id, nodes) {
    var box = document.getElementById(id);
    while (box.firstChild) { box.removeChild(box.firstChild); }
    nodes.forEach(function (n) { box.appendChild(n); });
  }
  function spark(series, colors, w, h, times, span) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark"); svg.setAttribute("width", w);
    svg.setAttribute("height", h); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    var max = 0;
    series.forEach(function (s) {
      s.forEach(function (v) { if (v !== null && v > max) { max = v; } });
    });
    var base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", 0); base.setAttribute("x2", w); base.setAttribute("y1", h - 0.5);
    base.setAttribute("y2", h - 0.5); svg.appendChild(base);
    series.forEach(function (s, i) {
      var pts = [];
      var flush = function () {
        if (pts.length === 1) {  // a lone interval with a value: a dot, not an invisible line
          var dot = document.createElementNS(SVG, "circle"), xy = pts[0].split(",");
          dot.setAttribute("cx", xy[0]); dot.setAttribute("cy", xy[1]); dot.setAttribute("r", 2);
          dot.setAttribute("class", colors[i]); svg.appendChild(dot);
        } else if (pts.length) {
          var line = document.createElementNS(SVG, "polyline");
          line.setAttribute("points", pts.join(" "));
          line.setAttribute("class", colors[i]); svg.appendChild(line);
        }
        pts = [];
      };
      s.forEach(function (v, j) {
        if (v === null) { flush(); return; }
        // by time over the ring's span, so the charts of every endpoint line up
        var x = span[1] > span[0] ? ((times[j] - span[0]) * (w - 2)) / (span[1] - span[0]) + 1
                                  : w / 2;
        var y = max > 0 ? h - 2 - (v / max) * (h - 4) : h - 2;
        pts.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      flush();
    });
    var title = document.createElementNS(SVG, "title");
    title.textContent = "max " + max; svg.appendChild(title);
    return svg;
  }
  function diffCell(d) {
    if (!d) { return el("td", "", [""]); }
    var td = el("td", "mono");
    [["added", "+", "add"], ["removed", "-", "rem"], ["changed", "~", "chg"]].forEach(function (k) {
      (d[k[0]] || []).forEach(function (name) {
        td.appendChild(el("div", k[2], [k[1] + " " + name]));
      });
    });
    if (!td.firstChild) { td.appendChild(document.createTextNode("no endpoint changed")); }
    return td;
  }
  function render(doc) {
    var s = doc.serving || {};
    document.getElementById("generation").textContent = show(s.generation);
    document.getElementById("config-hash").textContent = show(s.config_hash);
    document.getElementById("workers").textContent = show(s.workers);
    document.getElementById("updated").textContent = show(doc.now);
    document.getElementById("window").textContent = show(doc.window_seconds);
    var e = doc.last_error, box = document.getElementById("last-error");
    if (e) {
      var where = el("span", "", [e.location]);
      where.id = "error-location";
      box.hidden = false; box.className = "card" + (e.current ? "" : " fixed");
      fill("last-error", [
        el("div", "", [el("strong", e.current ? "rejected" : "applied",
          [e.current ? "Last save rejected" : "Last error (fixed by generation " +
           show(e.fixed_by) + ")"]), " \\u00b7 " + show(e.reason) + " \\u00b7 " + show(e.time)]),
        el("div", "mono", ["at ", where]),
        el("div", "mono", [el("span", "", [show(e.message)])]),
        e.all ? el("div", "mono all", [e.all]) : document.createTextNode(""),
        el("div", "muted", ["kind " + show(e.kind) + "; still serving generation " +
                            show(e.serving_generation)])]);
    } else { box.hidden = true; }
    var span = [Infinity, -Infinity];
    (doc.endpoints || []).forEach(function (r) {
      ((r.series || {}).t || []).forEach(function (t) {
        span = [Math.min(span[0], t), Math.max(span[1], t)];
      });
    });
    fill("endpoints", (doc.endpoints || []).map(function (r) {
      var tr = el("tr", "endpoint", [el("td", "mono route", [r.route]),
        el("td", "n", [num(r.rate)]), el("td", "n", [num(r.p50_ms, " ms")]),
        el("td", "n", [num(r.p99_ms, " ms")]), el("td", "n", [num(r.error_rate)]),
        el("td", "n", [r.requests]), el("td", "n", [r.errors])]);
      tr.setAttribute("data-route", r.route);
      var ser = r.series || {}, t = ser.t || [];
      tr.appendChild(el("td", "", [spark([ser.rate || []], ["rate"], 120, 28, t, span)]));
      tr.appendChild(el("td", "", [spark([ser.p50 || [], ser.p99 || []],
                                         ["p50", "p99"], 120, 28, t, span)]));
      tr.appendChild(el("td", "", [spark([ser.errors || []], ["err"], 120, 28, t, span)]));
      return tr;
    }));
    document.getElementById("no-endpoints").hidden = (doc.endpoints || []).length > 0;
    fill("history", (doc.history || []).map(function (h) {
      var where = h.error ? (h.location || h.error.message || "") : "";
      return el("tr", "", [el("td", "time", [h.time]), el("td", h.result, [h.result]),
        el("td", "", [h.reason]), el("td", "n", [h.generation]),
        el("td", "mono", [h.config_hash]), el("td", "n", [num(h.build_ms, " ms")]),
        diffCell(h.diff), el("td", "mono", [where])]);
    }));
  }
  function poll() {
    fetch("__status.json", {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (doc) {
      render(doc); document.getElementById("stale").textContent = "";
    }).catch(function (err) {
      document.getElementById("stale").textContent = "update failed: " + err.message;
    }).then(function () { setTimeout(poll, POLL_MS); });
  }
  render(JSON.parse(document.getElementById("status-data").textContent));
  document.body.setAttribute("data-rendered", "1");
  setTimeout(poll, POLL_MS);
})();
"""

BODY = """<body>
<h1>tidegate status</h1>
<div class="muted">updated <span id="updated"></span> <span id="stale"></span></div>
<div class="cards">
 <div class="card"><div class="muted">generation</div><div class="v" id="generation"></div></div>
 <div class="card"><div class="muted">config hash</div>
  <div class="v mono" id="config-hash"></div></div>
 <div class="card"><div class="muted">workers</div><div class="v" id="workers"></div></div>
</div>
<div class="card" id="last-error" hidden></div>
<h2>Endpoints <span class="muted">(rates and quantiles over the last <span id="window"></span> s)
</span></h2>
<div class="legend"><span class="rate">&#9632; req/s</span><span class="p50">&#9632; p50</span>
<span class="p99">&#9632; p99</span><span class="err">&#9632; errors/s</span></div>
<table><thead><tr><th>endpoint</th><th>req/s</th><th>p50</th><th>p99</th><th>errors/s</th>
<th>requests</th><th>errors</th><th>rate</th><th>latency</th><th>errors</th></tr></thead>
<tbody id="endpoints"></tbody></table>
<p class="muted" id="no-endpoints">No request counted yet.</p>
<h2>Reloads <span class="muted">(newest first)</span></h2>
<table><thead><tr><th>time</th><th>result</th><th>reason</th><th>generation</th>
<th>config hash</th><th>build</th><th>endpoints</th><th>error</th></tr></thead>
<tbody id="history"></tbody></table>
<noscript><p>This page draws with JavaScript; the same facts are in
<a href="__status.json">__status.json</a>.</p></noscript>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only this page's own script and style run, and it talks only to its own origin.
CSP = ("default-src 'none'; script-src " + _sha256(SCRIPT) + "; style-src " + _sha256(STYLE)
       + "; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")


def embed_json(doc: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, no ``<!--``, no
    HTML-significant character left raw (JSON.parse reads the escapes back)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_page(doc: Any) -> bytes:
    """The whole page with `doc` (a `/__status.json` document) embedded for the first paint."""
    return "".join([
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>tidegate status</title>\n<style>", STYLE, "</style></head>\n", BODY,
        "<script id=\"status-data\" type=\"application/json\">", embed_json(doc), "</script>\n",
        "<script>", SCRIPT, "</script>\n</body></html>\n"]).encode()


def page_headers() -> list[tuple[str, str]]:
    """Headers of `/__status`: never cached, never sniffed, never framed, CSP as above."""
    return [("Content-Type", PAGE_TYPE), ("Cache-Control", "no-store"),
            ("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff")]


def json_body(doc: Any) -> bytes:
    """`/__status.json`'s body."""
    return json.dumps(doc, separators=(",", ":")).encode()


def json_headers() -> list[tuple[str, str]]:
    """Headers of `/__status.json`."""
    return [("Content-Type", JSON_TYPE), ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff")]
