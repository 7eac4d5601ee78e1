"""The node's metrics: the sum of what every worker process of this supervisor recorded.

Each worker ships its cumulative series that moved (`recorder.Table.snapshot`) at least every
second; the supervisor keeps the latest values per worker and sums them when read (reads are
rare: a scrape, a status page poll). A worker that exits (stopped, restarted, crashed) has its
last values folded into a retired total, so the node's counters never go backwards. What a
crashed worker recorded after its last snapshot (under a second) is lost.

Read API (exporters, the status page): `families()` (every series, summed), `endpoints()` and
`backends()` (per-endpoint and per-backend summaries with p50/p99), `timestamp`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tidegate.telemetry.recorder import HISTOGRAM, FamilyKey, WireFamily

Labels = tuple[str, ...]
SeriesMap = dict[Labels, list[float]]


def _add(into: dict[FamilyKey, SeriesMap], key: FamilyKey, series: SeriesMap) -> None:
    target = into.setdefault(key, {})
    for labels, values in series.items():
        have = target.get(labels)
        if have is None:
            target[labels] = list(values)
        else:
            for i, v in enumerate(values):
                have[i] += v


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint (``GET /users/{id}``), or unrouted answers (route ``"404 Not Found"``)."""

    method: str
    route: str
    requests: int
    errors: int  # answers with a 5xx status
    statuses: dict[int, int]
    p50: float | None  # seconds, from the histogram's buckets (None without requests)
    p99: float | None
    seconds_sum: float


@dataclass(frozen=True, slots=True)
class BackendStats:
    """One backend of one endpoint (`krakend.backend.duration`)."""

    endpoint_method: str
    endpoint_route: str
    method: str
    route: str  # the backend's URL pattern, as krakend-otel labels it (``/users/:id``)
    requests: int
    errors: int
    p50: float | None
    p99: float | None


def quantile(q: float, bounds: tuple[float, ...], counts: list[float]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear within the bucket (the last finite bound
    for the +Inf bucket)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(counts):
        if seen + c >= rank and c > 0:
            if i >= len(bounds):
                return bounds[-1] if bounds else None
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * ((rank - seen) / c)
        seen += c
    return bounds[-1] if bounds else None


@dataclass
class NodeMetrics:
    """Every worker's latest series and the retired ones' totals (supervisor side)."""

    live: dict[int, dict[FamilyKey, SeriesMap]] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)  # worker -> time of its last snapshot
    retired: dict[FamilyKey, SeriesMap] = field(default_factory=dict)

    def update(self, worker: int, families: Iterable[WireFamily]) -> None:
        """A worker's snapshot (cumulative values of the series that moved)."""
        mine = self.live.setdefault(worker, {})
        for name, kind, labels, bounds, rows in families:
            key: FamilyKey = (name, kind, tuple(labels), tuple(bounds))
            series = mine.setdefault(key, {})
            for values, numbers in rows:
                series[tuple(values)] = numbers
        self.seen[worker] = time.time()

    def retire(self, worker: int) -> None:
        """The worker exited: its last values stay in the node's totals."""
        for key, series in self.live.pop(worker, {}).items():
            _add(self.retired, key, series)
        self.seen.pop(worker, None)

    @property
    def timestamp(self) -> float | None:
        """Unix time up to which every live worker's numbers are included (the oldest last
        snapshot), None before any."""
        return min(self.seen.values()) if self.seen else None

    def families(self) -> dict[FamilyKey, SeriesMap]:
        """Every family, summed over the live and retired workers (a fresh copy)."""
        out: dict[FamilyKey, SeriesMap] = {}
        for key, series in self.retired.items():
            _add(out, key, series)
        for families in self.live.values():
            for key, series in families.items():
                _add(out, key, series)
        return out

    def endpoints(self) -> list[EndpointStats]:
        """Per endpoint (method, route), from ``http.server.duration``."""
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        for (name, kind, labels, bounds), series in self.families().items():
            if name != "http.server.duration" or kind != HISTOGRAM:
                continue
            im = labels.index("http.request.method")
            ir = labels.index("http.route")
            ist = labels.index("http.response.status_code")
            for values, numbers in series.items():
                entry = acc.setdefault((values[im], values[ir]), {
                    "statuses": {}, "counts": {}, "sum": 0.0})
                n = sum(numbers[:-1])
                status = int(values[ist]) if values[ist].isdigit() else 0
                entry["statuses"][status] = entry["statuses"].get(status, 0) + int(n)
                merged = entry["counts"].setdefault(bounds, [0.0] * (len(bounds) + 1))
                for i, c in enumerate(numbers[:-1]):
                    merged[i] += c
                entry["sum"] += numbers[-1]
        out = []
        for (method, route), entry in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            bounds, counts = widest_layout(entry["counts"])
            statuses = dict(sorted(entry["statuses"].items()))
            out.append(EndpointStats(
                method, route, sum(statuses.values()),
                sum(n for s, n in statuses.items() if s >= 500), statuses,
                quantile(0.5, bounds, counts), quantile(0.99, bounds, counts), entry["sum"]))
        return out

    def backends(self) -> list[BackendStats]:
        """Per backend of each endpoint, from ``krakend.backend.duration``."""
        acc: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for (name, kind, labels, bounds), series in self.families().items():
            if name != "krakend.backend.duration" or kind != HISTOGRAM:
                continue
            idx = [labels.index(k) for k in ("krakend.endpoint.method", "krakend.endpoint.route",
                                             "http.request.method", "http.route")]
            ie = labels.index("error")
            for values, numbers in series.items():
                key = (values[idx[0]], values[idx[1]], values[idx[2]], values[idx[3]])
                entry = acc.setdefault(key, {"counts": {}, "errors": 0})
                n = sum(numbers[:-1])
                if values[ie] == "true":
                    entry["errors"] += int(n)
                merged = entry["counts"].setdefault(bounds, [0.0] * (len(bounds) + 1))
                for i, c in enumerate(numbers[:-1]):
                    merged[i] += c
        out = []
        for key, entry in sorted(acc.items()):
            bounds, counts = widest_layout(entry["counts"])
            out.append(BackendStats(*key, int(sum(counts)), entry["errors"],
                                    quantile(0.5, bounds, counts),
                                    quantile(0.99, bounds, counts)))
        return out


def widest_layout(by_bounds: dict[tuple[float, ...], list[float]]
            ) -> tuple[tuple[float, ...], list[float]]:
    """The bucket layout with the most observations (the buckets can change on a reload);
    the others' counts are added as observations of their own buckets' upper bounds."""
    if not by_bounds:
        return (), []
    bounds = max(by_bounds, key=lambda b: sum(by_bounds[b]))
    counts = list(by_bounds[bounds])
    for other, numbers in by_bounds.items():
        if other == bounds:
            continue
        for i, c in enumerate(numbers):
            upper = other[i] if i < len(other) else float("inf")
            counts[bisect_left(bounds, upper) if upper != float("inf") else len(bounds)] += c
    return bounds, counts
