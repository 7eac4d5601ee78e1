"""A worker's metric tables: plain ints and bucket lists in dicts, keyed by label tuples.

The request path never calls an SDK: a stage holds the series it records into (label tuples
built at compile time; only the status code is looked up per request). A histogram series
records into a `Histogram`: a compiled object whose bucket counts are C integer fields and
whose sum is a C double, copied into the series' list when a snapshot is taken: adding to a
list's boxed numbers allocated two objects an observation (~570 instructions; decision 83).
The server layer is recorded by the protocol once the answer is known, into the `ServerMeter`
the metrics stages put on the request (`Request.metrics_route`): no stage of its own around
the request. The tables live as long as the worker process (a reload keeps counting into the
same series, so counters stay monotonic), and the worker ships them to the supervisor at least
every second (`snapshot`), which sums the node's workers (`telemetry.aggregate`).

A histogram series is one list: ``len(bounds) + 1`` bucket counts (the last is ``+Inf``), then
the sum (a histogram's as of the last snapshot). A counter series is a one-item list.
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

    __slots__ = ("bounds", "hists", "key", "kind", "labels", "name", "sent", "series",
                 "source")

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
        self.hists: dict[int, Histogram] = {}  # id(series) -> its recording side

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

    def hist(self, values: tuple[str, ...]) -> Histogram:
        """The series of these label values as a histogram records into it."""
        series = self.get(values)
        found = self.hists.get(id(series))
        if found is None:
            found = self.hists[id(series)] = Histogram(series, self.bounds)
        return found

    def fold(self) -> None:
        """Copy every histogram's counts into its series."""
        for hist in list(self.hists.values()):
            hist.fold()


class Cell:
    """One bucket's count, a C integer field of a compiled object: adding 1 to it allocates
    nothing (an item of a list is a boxed number, replaced on every addition)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Histogram:
    """One histogram series on the request path: `observe` adds 1 to its bucket's `Cell`
    and the value to `total` (a C double); `fold` copies them into the series, the wire
    form (``len(bounds) + 1`` bucket counts, then the sum)."""

    __slots__ = ("bounds", "cells", "series", "total")

    def __init__(self, series: Series, bounds: tuple[float, ...]) -> None:
        self.series = series
        self.bounds = bounds
        self.cells = [Cell() for _ in range(len(bounds) + 1)]
        for i, cell in enumerate(self.cells):  # what the series already holds, if anything
            cell.count = int(series[i])
        self.total = float(series[-1])

    def observe(self, value: float) -> None:
        """1 into the bucket of the first bound not below `value` (Prometheus' ``le``),
        `value` into the sum. A scan from the first bound: latencies and sizes land in the
        first few buckets, and compiled it compares C doubles."""
        bounds = self.bounds
        i = 0
        n = len(bounds)
        while i < n and bounds[i] < value:
            i += 1
        self.cells[i].count += 1
        self.total += value

    def fold(self) -> None:
        """The counts and the sum so far into the series (what a snapshot reads)."""
        series = self.series
        i = 0
        for cell in self.cells:
            series[i] = cell.count
            i += 1
        series[i] = self.total


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
        families = list(self.families.values())
        for fam in families:
            fam.fold()
        for fam in families:
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
