"""The reload story as metrics, read from the reload journal (one event per outcome per node).

``tidegate_config_info{hash,generation} 1``, ``tidegate_reloads_total{result}``,
``tidegate_reload_build_seconds`` (histogram) and
``tidegate_last_reload_success_timestamp_seconds``. A rejected save is journaled once by the
supervisor, so it counts once per node whatever the number of workers.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from tidegate.telemetry.reloads import ReloadEvent, ReloadJournal

RESULTS = ("applied", "rejected", "unchanged")
# A build is parse + render + validate + trial compile: milliseconds to seconds.
BUILD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class ReloadMetrics:
    """Counters kept current by `ReloadJournal.subscribe`."""

    reloads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    build_buckets: list[int] = field(default_factory=lambda: [0] * (len(BUILD_BUCKETS) + 1))
    build_sum: float = 0.0
    last_success: float | None = None
    config_hash: str | None = None
    generation: int | None = None

    @classmethod
    def following(cls, journal: ReloadJournal) -> ReloadMetrics:
        """Metrics of every event already journaled and of every one to come."""
        metrics = cls()
        for event in journal.events:
            metrics.record(event)
        journal.subscribe(metrics.record)
        return metrics

    def record(self, event: ReloadEvent) -> None:
        """One journal event."""
        self.reloads[event.result] = self.reloads.get(event.result, 0) + 1
        if event.build_seconds is not None:
            self.build_buckets[bisect_left(BUILD_BUCKETS, event.build_seconds)] += 1
            self.build_sum += event.build_seconds
        if event.result == "applied":
            self.last_success = event.time
            self.config_hash = event.config_hash
            self.generation = event.generation
        elif event.result == "rejected" and event.generation is not None \
                and self.generation is not None and event.generation != self.generation:
            # a worker failed the new one and the old configuration serves under a fresh id
            self.generation = event.generation
