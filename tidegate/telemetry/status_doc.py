"""`/__status.json`: what the status page shows, assembled from the reload journal and the stats.

A pure function of its inputs (the generation serving, the journal's events, the stats ring):
the page and any script read the same document, and tests feed it values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.telemetry.reloads import ReloadEvent
from tidegate.telemetry.status_stats import SAMPLE_SECONDS, Snapshot, StatsRing


@dataclass(frozen=True, slots=True)
class Serving:
    """The generation the node's workers serve: what `/__health` reports."""

    generation: int
    config_hash: str
    workers: int


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def location(error: Mapping[str, Any]) -> str:
    """``file:line:col`` then the JSON path, as much as the error knows (`ConfigError.location`
    rebuilt from its `to_dict()`, which is all the journal keeps)."""
    where = str(error.get("file") or "")
    if where and error.get("line") is not None:
        where += f":{error['line']}"
        if error.get("col") is not None:
            where += f":{error['col']}"
    path = error.get("path")
    if path:
        where = f"{where}: {path}" if where else str(path)
    return where


def last_error(events: list[ReloadEvent]) -> dict[str, Any] | None:
    """The newest rejected save, and whether it still stands (no good save since)."""
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if event.result != "rejected":
            continue
        error = event.error or {}
        # A good save since (applied, or back to what serves) puts the error behind.
        later = [e for e in events[i + 1:] if e.result != "rejected"]
        # Several problems found in one pass: all of them, one located line each.
        every = str(error.get("error") or "")
        return {
            "reason": event.reason, "time": _stamp(event.time),
            "serving_generation": event.generation, "kind": error.get("kind"),
            "message": error.get("message"), "location": location(error),
            "file": error.get("file"), "line": error.get("line"), "col": error.get("col"),
            "path": error.get("path"), "error": error.get("error") or error.get("message"),
            "all": every if "\n" in every else None,
            "current": not later, "fixed_by": later[0].generation if later else None}
    return None


def history_entry(event: ReloadEvent) -> dict[str, Any]:
    """One reload as the page lists it: the journal's own form, plus the error's location and
    the build time in milliseconds."""
    entry = event.to_dict()
    entry["build_ms"] = (round(event.build_seconds * 1000, 1)
                         if event.build_seconds is not None else None)
    if event.error is not None:
        entry["location"] = location(event.error)
    return entry


def status_document(serving: Serving | None, events: Iterable[ReloadEvent], ring: StatsRing,
                    *, now: float | None = None,
                    live: Snapshot | None = None) -> dict[str, Any]:
    """The whole status: serving generation, reload history (newest first), the last error,
    and per-endpoint rate, latency and errors with their chart series (`live`: the node's
    counters at `now`, so the totals are exact)."""
    events = list(events)
    now = time.time() if now is None else now
    return {
        "now": _stamp(now),
        "serving": None if serving is None else {
            "generation": serving.generation, "config_hash": serving.config_hash,
            "workers": serving.workers},
        "last_error": last_error(events),
        "history": [history_entry(e) for e in reversed(events)],
        "endpoints": ring.endpoints(None if live is None else (now, live)),
        "window_seconds": round(ring.window(now if live is not None else None), 1),
        "sample_seconds": SAMPLE_SECONDS,
    }
