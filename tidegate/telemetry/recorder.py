"""A worker's metric tables: plain ints and bucket lists in dicts, keyed by label tuples.

The request path never calls an SDK: a stage holds the series it records into (label tuples
built at compile time; only the status code is looked up per request), adds 1 to a bucket and
the value to the sum. The server layer is recorded by the protocol once the answer is known,
into the `ServerMeter` the metrics stages put on the request (`Request.metrics_route`): no
stage of its own around the request. The tables live as long as the worker process (a reload
keeps counting into the same series, so counters stay monotonic), and the worker ships them to
the supervisor at least every second (`snapshot`), which sums the node's workers
(`telemetry.aggregate`).

A histogram series is one list: ``len(bounds) + 1`` bucket counts (the last is ``+Inf``), then
the sum. A counter series is a one-item list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidegate.messages import Request, Response

HISTOGRAM = "histogram"
COUNTER = "counter"

Series = list[float]
# (name, kind, label names, bounds): a family's identity on the wire and in the aggregate.
FamilyKey = tuple[str, str, tuple[str, ...], tuple[float, ...]]
# [name, kind, label names, bounds, [[label values, values], ...]]: one family in a snapshot.
WireFamily = list[Any]

# Series per family, whatever a client sends: status codes are the only per-request label.
MAX_SERIES = 10_000


class Family:
    """One metric name with a fixed set of label names (and bucket bounds)."""

    __slots__ = ("bounds", "key", "kind", "labels", "name", "sent", "series", "source")

    def __init__(self, name: str, kind: str, labels: tuple[str, ...],
                 bounds: tuple[float, ...] = (), source: Family | None = None) -> None:
        self.name = name
        # A counter that is the observation count of a histogram's series (nothing to add on
        # the request path): computed when a snapshot is taken.
        self.source = source
        self.kind = kind
        self.labels = labels
        self.bounds = bounds
        self.key: FamilyKey = (name, kind, labels, bounds)
        self.series: dict[tuple[str, ...], Series] = {}
        self.sent: dict[tuple[str, ...], float] = {}  # observation count at the last snapshot

    def get(self, values: tuple[str, ...]) -> Series:
        """The series of these label values (created at zero)."""
        series = self.series.get(values)
        if series is None:
            if len(self.series) >= MAX_SERIES:
                values = tuple("_other" for _ in values)
                series = self.series.get(values)
                if series is not None:
                    return series
            size = len(self.bounds) + 2 if self.kind == HISTOGRAM else 1
            series = self.series[values] = [0] * size
        return series


def observe(series: Series, bounds: tuple[float, ...], value: float) -> None:
    """One observation into a histogram series: 1 into the bucket of the first bound not
    below `value` (Prometheus' ``le``, what `bisect_left` finds), `value` into the sum.

    A scan from the first bound: latencies and sizes land in the first few buckets, and
    compiled it compares C doubles where `bisect_left` calls a function that compares float
    objects (~900 instructions an observation)."""
    i = 0
    n = len(bounds)
    while i < n and bounds[i] < value:
        i += 1
    series[i] += 1
    series[-1] += value


class ServerMeter:
    """Where the protocol records a request's answer (krakend-otel's global layer).

    The metrics SERVICE stage puts one on the request (`Request.metrics_route`: the
    unrouted requests' one; the ROUTER stage replaces it with its endpoint's, or with None
    for an endpoint that is not recorded); the protocol calls `record` when the generation
    answered, `failed` when it raised or the request was cancelled. This base records
    nothing."""

    def record(self, request: Request, response: Response, started: float) -> None:
        """The answer to `request`, served since `started` (`perf_counter`)."""

    def failed(self, request: Request, started: float) -> None:
        """`request` raised (a 500) or was cancelled (the client left)."""


def _count(family: Family, series: Series) -> float:
    if family.kind == HISTOGRAM:
        return sum(series[:-1])
    return series[0]


class Table:
    """Every family of one worker process."""

    def __init__(self) -> None:
        self.families: dict[FamilyKey, Family] = {}

    def family(self, name: str, kind: str, labels: tuple[str, ...],
               bounds: tuple[float, ...] = ()) -> Family:
        """The family of that identity (created empty)."""
        key: FamilyKey = (name, kind, labels, tuple(bounds) if kind == HISTOGRAM else ())
        fam = self.families.get(key)
        if fam is None:
            fam = self.families[key] = Family(name, kind, labels, key[3])
        return fam

    def histogram(self, name: str, labels: tuple[str, ...],
                  bounds: tuple[float, ...]) -> Family:
        return self.family(name, HISTOGRAM, labels, bounds)

    def counter(self, name: str, labels: tuple[str, ...]) -> Family:
        return self.family(name, COUNTER, labels)

    def count_of(self, name: str, source: Family) -> Family:
        """A counter equal to the observation count of each series of `source`."""
        fam = self.family(name, COUNTER, source.labels)
        fam.source = source
        return fam

    def snapshot(self, changed_only: bool = True) -> list[WireFamily]:
        """The cumulative values of the series that moved since the last snapshot (all of
        them with ``changed_only=False``), JSON-ready."""
        out: list[WireFamily] = []
        for fam in list(self.families.values()):
            if fam.source is not None:
                for values, series in list(fam.source.series.items()):
                    fam.series[values] = [sum(series[:-1])]
            rows: list[list[Any]] = []
            for values, series in list(fam.series.items()):
                count = _count(fam, series)
                if changed_only and fam.sent.get(values) == count:
                    continue
                fam.sent[values] = count
                rows.append([list(values), list(series)])
            if rows:
                out.append([fam.name, fam.kind, list(fam.labels), list(fam.bounds), rows])
        return out


_TABLE: Table | None = None


def table() -> Table:
    """This process's table (a worker's: what it ships to its supervisor)."""
    global _TABLE
    if _TABLE is None:
        _TABLE = Table()
    return _TABLE


def active() -> Table | None:
    """The table if anything ever recorded in this process, else None."""
    return _TABLE
