"""krakend-metrics' numbers (the legacy ``telemetry/metrics``), computed from the node's aggregate.

`/__stats` answers a flat JSON object as go-metrics' ``exp`` handler does for krakend-metrics'
registry (prefix ``krakend.``): counters as numbers, each histogram as ``<name>.count``,
``.min``, ``.max``, ``.mean``, ``.std-dev`` and ``.50-percentile`` … ``.999-percentile``.

* ``krakend.router.response.<endpoint>.status.<code>.count``,
  ``krakend.router.response.<endpoint>.size.*`` (bytes) and ``.time.*`` (nanoseconds);
* ``krakend.proxy.requests.layer.<pipe|backend>.name.<n>.complete.<b>.error.<b>`` and
  ``krakend.proxy.latency.layer.…`` (nanoseconds), ``<n>`` the endpoint (pipe) or the
  backend's URL pattern as lura keeps it (``/users/{{.Id}}``).

The recorder keeps histogram buckets, not samples: min, max and percentiles are estimated
within buckets (go-metrics samples them); counts, sums and means are exact.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tidegate.telemetry.aggregate import NodeMetrics, quantile
from tidegate.telemetry.recorder import HISTOGRAM

PERCENTILES = ((0.5, "50"), (0.75, "75"), (0.95, "95"), (0.99, "99"), (0.999, "999"))
# krakend-influx's percentile fields
INFLUX_PERCENTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
_PARAM = re.compile(r":([A-Za-z0-9_]+)")


def lura_pattern(route: str) -> str:
    """A backend route as krakend-otel labels it (``/a/:id``) back in lura's form
    (``/a/{{.Id}}``), the name krakend-metrics gives the backend layer."""
    return _PARAM.sub(lambda m: "{{." + m.group(1)[:1].upper() + m.group(1)[1:] + "}}", route)


@dataclass(frozen=True, slots=True)
class Hist:
    """A histogram's buckets, summed, and how a value scales (seconds → nanoseconds)."""

    bounds: tuple[float, ...]
    counts: list[float]
    total: float
    scale: float = 1.0

    @property
    def count(self) -> int:
        return int(sum(self.counts))

    def describe(self, percentiles: tuple[float, ...]) -> dict[str, float]:
        """count, min, max, mean, stddev, variance and the percentiles (scaled)."""
        n = self.count
        if n == 0:
            return {"count": 0, "min": 0, "max": 0, "mean": 0.0, "stddev": 0.0,
                    "variance": 0.0, **{str(p): 0.0 for p in percentiles}}
        mean = self.total / n
        mids = []
        for i, c in enumerate(self.counts):
            lower = self.bounds[i - 1] if 0 < i <= len(self.bounds) else 0.0
            upper = self.bounds[i] if i < len(self.bounds) else lower
            mids.append(((lower + upper) / 2, c))
        variance = sum(c * (m - mean) ** 2 for m, c in mids) / n
        low = quantile(0.0001, self.bounds, self.counts) or 0.0
        high = quantile(1.0, self.bounds, self.counts) or 0.0
        out: dict[str, float] = {
            "count": n, "min": int(low * self.scale), "max": int(high * self.scale),
            "mean": mean * self.scale, "stddev": variance ** 0.5 * self.scale,
            "variance": variance * self.scale ** 2}
        for p in percentiles:
            out[str(p)] = (quantile(p, self.bounds, self.counts) or 0.0) * self.scale
        return out


def _merge(into: dict[str, Hist], key: str, bounds: tuple[float, ...], numbers: list[float],
           scale: float) -> None:
    have = into.get(key)
    if have is None or have.bounds != bounds:
        if have is not None and sum(have.counts) >= sum(numbers[:-1]):
            return  # another bucket layout (a reload changed it): keep the larger
        into[key] = Hist(bounds, list(numbers[:-1]), numbers[-1], scale)
        return
    for i, c in enumerate(numbers[:-1]):
        have.counts[i] += c
    into[key] = Hist(bounds, have.counts, have.total + numbers[-1], scale)


@dataclass
class StatsView:
    """The krakend-metrics view of one aggregate read."""

    counters: dict[str, int]
    histograms: dict[str, Hist]


def stats_view(node: NodeMetrics, *, router: bool = True, proxy: bool = True,
               backend: bool = True) -> StatsView:
    """krakend-metrics' counters and histograms (its `*_disabled` layers left out)."""
    counters: dict[str, int] = {}
    hists: dict[str, Hist] = {}
    for (name, kind, labels, bounds), series in node.families().items():
        if kind != HISTOGRAM:
            continue
        idx = {label: i for i, label in enumerate(labels)}
        if router and name in ("http.server.duration", "http.server.response.size"):
            what, scale = ("time", 1e9) if name == "http.server.duration" else ("size", 1.0)
            for values, numbers in series.items():
                route = values[idx["http.route"]]
                if route[:1] != "/":
                    continue  # unrouted answers: krakend-metrics only instruments endpoints
                base = f"krakend.router.response.{route}"
                if what == "time":
                    status = values[idx["http.response.status_code"]]
                    key = f"{base}.status.{status}.count"
                    counters[key] = counters.get(key, 0) + int(sum(numbers[:-1]))
                _merge(hists, f"{base}.{what}", bounds, numbers, scale)
        elif name in ("krakend.proxy.duration", "krakend.backend.duration"):
            layer = "pipe" if name == "krakend.proxy.duration" else "backend"
            if (layer == "pipe" and not proxy) or (layer == "backend" and not backend):
                continue
            for values, numbers in series.items():
                n = values[idx["http.route"]]
                if layer == "backend":
                    n = lura_pattern(n)
                labels_text = (f"layer.{layer}.name.{n}.complete."
                               f"{values[idx['complete']]}.error.{values[idx['error']]}")
                key = f"krakend.proxy.requests.{labels_text}"
                counters[key] = counters.get(key, 0) + int(sum(numbers[:-1]))
                _merge(hists, f"krakend.proxy.latency.{labels_text}", bounds, numbers, 1e9)
    return StatsView(counters, hists)


def stats_json(view: StatsView) -> dict[str, Any]:
    """go-metrics' exp handler's flat object."""
    out: dict[str, Any] = {"cmdline": ["tidegate"]}
    out.update(sorted(view.counters.items()))
    for name, hist in sorted(view.histograms.items()):
        d = hist.describe(tuple(p for p, _ in PERCENTILES))
        out[f"{name}.count"] = d["count"]
        out[f"{name}.min"] = float(d["min"])
        out[f"{name}.max"] = float(d["max"])
        out[f"{name}.mean"] = d["mean"]
        out[f"{name}.std-dev"] = d["stddev"]
        for p, label in PERCENTILES:
            out[f"{name}.{label}-percentile"] = d[str(p)]
    return out


def influx_lines(view: StatsView, host: str, last: dict[str, int],
                 now: float | None = None) -> Iterator[str]:
    """krakend-influx's points in line protocol (precision s): ``requests`` and ``responses``
    counters (``total`` and ``count`` since the last push, `last` keeps the totals), and the
    ``requests`` and ``router.response-size|time`` histograms."""
    stamp = int(now if now is not None else time.time())
    host_tag = _tag(host)
    for key, total in sorted(view.counters.items()):
        if key.startswith("krakend.proxy.requests.layer."):
            layer, name, complete, error = _proxy_parts(key[len("krakend.proxy.requests."):])
            tags = (f"complete={complete},error={error},host={host_tag},layer={layer},"
                    f"name={_tag(name)}")
            measurement = "requests"
        elif key.startswith("krakend.router.response.") and key.endswith(".count"):
            inner = key[len("krakend.router.response."):-len(".count")]
            name, _, status = inner.rpartition(".status.")
            tags = f"host={host_tag},name={_tag(name)},status={_tag(status)}"
            measurement = "responses"
        else:
            continue
        delta = total - last.get(key, 0)
        last[key] = total
        yield f"{measurement},{tags} count={delta}i,total={total}i {stamp}"
    for key, hist in sorted(view.histograms.items()):
        d = hist.describe(INFLUX_PERCENTILES)
        if key.startswith("krakend.proxy.latency.layer."):
            layer, name, complete, error = _proxy_parts(key[len("krakend.proxy.latency."):])
            measurement = "requests"
            tags = (f"complete={complete},error={error},host={host_tag},layer={layer},"
                    f"name={_tag(name)}")
        elif key.startswith("krakend.router.response."):
            name, _, what = key[len("krakend.router.response."):].rpartition(".")
            measurement = f"router.response-{what}"
            tags = f"host={host_tag},name={_tag(name)}"
        else:
            continue
        fields = [f"max={int(d['max'])}i", f"mean={int(d['mean'])}i", f"min={int(d['min'])}i",
                  f"stddev={int(d['stddev'])}i", f"variance={int(d['variance'])}i"]
        fields += [f"p{p}={d[str(p)]}" for p in INFLUX_PERCENTILES]
        yield f"{_measurement(measurement)},{tags} {','.join(fields)} {stamp}"


def _proxy_parts(labels: str) -> tuple[str, str, str, str]:
    """``layer.<l>.name.<n>.complete.<b>.error.<b>`` → (l, n, b, b)."""
    rest = labels[len("layer."):]
    layer, _, rest = rest.partition(".name.")
    name, _, rest = rest.rpartition(".complete.")
    complete, _, error = rest.partition(".error.")
    return layer, name, complete, error


def _tag(value: str) -> str:
    """A tag value escaped for line protocol."""
    return (value or "-").replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=") \
        .replace(" ", "\\ ")


def _measurement(name: str) -> str:
    return name.replace(",", "\\,").replace(" ", "\\ ")
