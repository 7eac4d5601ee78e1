"""The status page's per-endpoint input, read from the node aggregate's summed series.

The page needs the latency buckets themselves (not only p50/p99 since the start), so that a
sample ring can give quantiles per interval; it reads the server layer's histogram,
``http.server.duration`` by method, route and status, as krakend-otel records it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import add

from tidegate.telemetry.aggregate import NodeMetrics, widest_layout
from tidegate.telemetry.status_stats import EndpointCounters, Snapshot

SERVER_DURATION = "http.server.duration"
HISTOGRAM = "histogram"

# (name, kind, label names, bounds) -> label values -> bucket counts (+Inf last), then the sum.
Families = Mapping[tuple[str, str, tuple[str, ...], tuple[float, ...]],
                   Mapping[tuple[str, ...], Sequence[float]]]


def endpoint_counters(*tables: Families) -> Snapshot:
    """``"GET /users/{id}"`` -> requests, 5xx answers and latency buckets, summed over status
    codes and over `tables` (unrouted answers appear under krakend-otel's route
    ``404 Not Found``).

    Given the aggregate's per-worker tables rather than `NodeMetrics.families()`, it sums only
    the one family it reads: the supervisor samples every 2 s, and summing every family of
    every worker each time would cost a scrape's work for one histogram.
    """
    layouts: dict[str, dict[tuple[float, ...], list[float]]] = {}
    errors: dict[str, int] = {}
    for (name, kind, labels, bounds), series in (
            item for table in tables for item in table.items()):
        if name != SERVER_DURATION or kind != HISTOGRAM:
            continue
        try:
            im, ir = labels.index("http.request.method"), labels.index("http.route")
            ist = labels.index("http.response.status_code")
        except ValueError:  # not the layout this page knows: show nothing rather than wrong
            continue
        size = len(bounds) + 1  # the bucket counts; the sum follows
        for values, numbers in series.items():
            key = f"{values[im]} {values[ir]}"
            per = layouts.setdefault(key, {})
            merged = per.get(bounds)
            if merged is None:
                per[bounds] = list(numbers[:size])
            else:
                merged[:] = map(add, merged, numbers[:size])
            status = values[ist]
            if len(status) == 3 and status >= "500" and status.isdigit():
                errors[key] = errors.get(key, 0) + int(sum(numbers[:size]))
            else:
                errors.setdefault(key, 0)
    out: dict[str, EndpointCounters] = {}
    for key, by_bounds in layouts.items():
        bounds, counts = widest_layout(by_bounds)
        out[key] = EndpointCounters(int(sum(counts)), errors[key], bounds,
                                    tuple(int(c) for c in counts))
    return out


def node_counters(node: NodeMetrics) -> Snapshot:
    """The status page's input from the node aggregate: its exited workers' totals and each
    live worker's latest values."""
    return endpoint_counters(node.retired, *node.live.values())
