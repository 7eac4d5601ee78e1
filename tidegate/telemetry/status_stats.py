"""Per-endpoint rate, latency quantiles and errors for the status page, from cumulative counts.

The node aggregate holds counters that only grow (requests, errors, a latency histogram per
endpoint). A chart needs rates over time, so the supervisor samples those counters every few
seconds into a short ring: the page gets a history the moment it opens, without a time-series
database. Each point is the difference of two samples; quantiles are read from the histogram's
difference the way Prometheus's `histogram_quantile` reads it (linear inside a bucket), so the
page and a Grafana panel over the same buckets agree.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# 60 samples 2 s apart: the last two minutes, enough to see a reload's effect on latency.
SAMPLE_SECONDS = 2.0
RING_SIZE = 60


@dataclass(frozen=True, slots=True)
class EndpointCounters:
    """What the node has counted for one endpoint since it started (cumulative).

    `bounds` are the latency histogram's upper bounds in seconds (ascending, finite); `buckets`
    the count of observations in each of them, not cumulative, plus one for "above the last
    bound": ``len(buckets) == len(bounds) + 1``.
    """

    requests: int
    errors: int
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()


Snapshot = Mapping[str, EndpointCounters]  # "GET /users/{id}" -> counters


def quantile(q: float, bounds: Sequence[float], buckets: Sequence[int]) -> float | None:
    """The `q` quantile (seconds) of a histogram, as Prometheus's `histogram_quantile`.

    Linear interpolation inside the bucket that holds the rank (the first bucket starts at 0);
    a rank in the overflow bucket reads as the last finite bound. None without observations.
    """
    total = sum(buckets)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets[:len(bounds)]):
        if count > 0 and seen + count >= rank:
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _delta(new: int, old: int) -> int:
    """A counter's increase; a counter that went down was reset (a node restart): count anew."""
    return new - old if new >= old else new


@dataclass(frozen=True, slots=True)
class Point:
    """One endpoint between two samples."""

    rate: float  # requests per second
    error_rate: float  # errors per second
    p50: float | None  # seconds
    p99: float | None


def point(new: EndpointCounters, old: EndpointCounters | None, seconds: float) -> Point:
    """The rates and quantiles of the interval between two samples of one endpoint."""
    if old is None:
        old = EndpointCounters(0, 0, new.bounds, tuple(0 for _ in new.buckets))
    seconds = max(seconds, 1e-9)
    if old.bounds == new.bounds and len(old.buckets) == len(new.buckets):
        buckets = [_delta(n, o) for n, o in zip(new.buckets, old.buckets, strict=True)]
    else:  # the histogram's buckets changed: this interval reads as the new total
        buckets = list(new.buckets)
    return Point(_delta(new.requests, old.requests) / seconds,
                 _delta(new.errors, old.errors) / seconds,
                 quantile(0.5, new.bounds, buckets), quantile(0.99, new.bounds, buckets))


def _num(value: float | None, scale: float = 1.0) -> float | None:
    """Rounded for JSON (a chart needs no more), None kept as a gap."""
    if value is None or math.isnan(value):
        return None
    return round(value * scale, 3)


class StatsRing:
    """The last `size` samples of the node's counters, and the series the page draws."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self.samples: deque[tuple[float, Snapshot]] = deque(maxlen=size + 1)

    def add(self, now: float, snapshot: Snapshot) -> None:
        """Keep one sample taken at `now` (seconds since the epoch)."""
        self.samples.append((now, dict(snapshot)))

    def window(self, now: float | None = None) -> float:
        """Seconds from the oldest sample to the newest (or `now`): what the table covers."""
        if not self.samples:
            return 0.0
        return (self.samples[-1][0] if now is None else now) - self.samples[0][0]

    def endpoints(self, live: tuple[float, Snapshot] | None = None) -> list[dict[str, Any]]:
        """One row per endpoint of the newest sample: totals; rate, errors and quantiles
        (milliseconds) over the ring's window; and one point per interval for the charts.

        `live` is a sample taken now and not kept: the totals are exact when the page loads,
        while the ring keeps its regular spacing however often the page is read.
        """
        samples = list(self.samples)
        if live is not None and (not samples or live[0] > samples[-1][0]):
            samples.append(live)
        if not samples:
            return []
        first_time, first = samples[0]
        latest_time, latest = samples[-1]
        rows = []
        for route in sorted(latest):
            series: dict[str, list[float | None]] = {
                "t": [], "rate": [], "errors": [], "p50": [], "p99": []}
            for (t0, old), (t1, new) in itertools.pairwise(samples):
                if route not in new:
                    continue
                p = point(new[route], old.get(route), t1 - t0)
                series["t"].append(round(t1, 3))
                series["rate"].append(_num(p.rate))
                series["errors"].append(_num(p.error_rate))
                series["p50"].append(_num(p.p50, 1000))
                series["p99"].append(_num(p.p99, 1000))
            counters = latest[route]
            if len(samples) > 1:
                whole = point(counters, first.get(route), latest_time - first_time)
                rate, error_rate = _num(whole.rate), _num(whole.error_rate)
            else:  # one sample: quantiles since the start, no rate yet
                whole = point(counters, None, 1.0)
                rate = error_rate = None
            rows.append({
                "route": route, "requests": counters.requests, "errors": counters.errors,
                "rate": rate, "error_rate": error_rate,
                "p50_ms": _num(whole.p50, 1000), "p99_ms": _num(whole.p99, 1000),
                "series": series})
        return rows
