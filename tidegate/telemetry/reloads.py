"""The reload story of a node, as data: what each reload did, kept by the supervisor.

The coordinator appends one `ReloadEvent` per outcome (a generation applied, a save rejected, a
save that changed nothing); metrics, logs and the status page read the same record, so they
never disagree. A rejected save is recorded once per node (the supervisor validates it once),
not once per worker.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger("tidegate")

Result = Literal["applied", "rejected", "unchanged"]

# Enough history for a status page and a debugging session, bounded whatever the save rate.
HISTORY = 50


@dataclass(frozen=True, slots=True)
class EndpointDiff:
    """Endpoints (``"GET /users/{id}"``) a reload added, removed or changed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @classmethod
    def between(cls, old: Mapping[str, str], new: Mapping[str, str]) -> EndpointDiff:
        """The diff of two fingerprint maps (endpoint → hash of its configuration)."""
        return cls(tuple(sorted(new.keys() - old.keys())),
                   tuple(sorted(old.keys() - new.keys())),
                   tuple(sorted(k for k in new.keys() & old.keys() if new[k] != old[k])))

    def summary(self) -> str:
        """``+2 endpoints, -1, ~3 changed`` (the reload log line's wording)."""
        return (f"+{len(self.added)} endpoints, -{len(self.removed)}, "
                f"~{len(self.changed)} changed")


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """One outcome of a start, a save or a SIGHUP."""

    result: Result
    reason: str  # what triggered it: "start", a changed file, "SIGHUP"
    time: float = field(default_factory=time.time)
    generation: int | None = None  # the generation serving after the event
    config_hash: str | None = None  # the candidate's (applied/unchanged) or None
    build_seconds: float | None = None  # parse, render, validate and trial build
    diff: EndpointDiff | None = None  # applied: against the previous generation
    error: dict[str, Any] | None = None  # rejected: `ConfigError.to_dict()` (file, line, path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, for the status page and `/__status.json`."""
        out: dict[str, Any] = {
            "result": self.result, "reason": self.reason,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "generation": self.generation, "config_hash": self.config_hash,
            "build_seconds": self.build_seconds, "error": self.error}
        if self.diff is not None:
            out["diff"] = {"added": list(self.diff.added), "removed": list(self.diff.removed),
                           "changed": list(self.diff.changed)}
        return out


Listener = Callable[[ReloadEvent], None]


class ReloadJournal:
    """The last `HISTORY` events, and who wants to hear of each new one."""

    def __init__(self, history: int = HISTORY) -> None:
        self.events: deque[ReloadEvent] = deque(maxlen=history)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every event recorded from now on (in the supervisor's loop)."""
        self._listeners.append(listener)

    def record(self, event: ReloadEvent) -> None:
        """Keep `event` and tell the listeners (a failing one is logged, never raised)."""
        self.events.append(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a metrics bug must never stop a reload
                log.exception("reload listener failed")

    def last(self, result: Result | None = None) -> ReloadEvent | None:
        """The latest event (of that result)."""
        for event in reversed(self.events):
            if result is None or event.result == result:
                return event
        return None
