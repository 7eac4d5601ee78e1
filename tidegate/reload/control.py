"""The control pipe between the supervisor and a worker, as typed values.

One JSON object per line, tagged by ``op``. Both sides import this module, so a field added
here is added to both ends at once; `decode` refuses what it does not know instead of guessing.

    supervisor → worker   Load (compile and swap in generation `gen`), Status, Stop
    worker → supervisor   Ready (started, reading its control pipe), Loaded (`gen` is
                          serving), Failed (`gen` could not be built), Metrics (the
                          worker's metric series that moved, every second)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson


@dataclass(frozen=True, slots=True)
class Load:
    """Compile `data` (already validated by the supervisor) and serve it as generation `gen`."""

    op: ClassVar[str] = "load"
    gen: int
    config_hash: str
    data: dict[str, Any]
    debug: bool = False
    # Protections the config asks for that the operator let through (--allow-unimplemented):
    # the workers show them on /__health.
    unprotected: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Status:
    """Server-wide facts for `/__health` that do not make a generation."""

    op: ClassVar[str] = "status"
    last_reload_error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stop:
    """Drain and exit (SIGTERM does the same)."""

    op: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker has started (imports done) and reads its control pipe: a Load now costs
    only the compile."""

    op: ClassVar[str] = "ready"


@dataclass(frozen=True, slots=True)
class Loaded:
    """Generation `gen` is swapped in and serving."""

    op: ClassVar[str] = "loaded"
    gen: int


@dataclass(frozen=True, slots=True)
class Failed:
    """Generation `gen` could not be built here; the worker keeps what it served."""

    op: ClassVar[str] = "failed"
    gen: int
    error: str


@dataclass(frozen=True, slots=True)
class Metrics:
    """The worker's cumulative metric series that moved since its last Metrics
    (`telemetry.recorder.Table.snapshot`); sent every second, and once more after draining.
    An empty list is a heartbeat: the supervisor's aggregate is current up to now."""

    op: ClassVar[str] = "metrics"
    families: list[Any]


ToWorker = Load | Status | Stop
ToSupervisor = Ready | Loaded | Failed | Metrics
Message = ToWorker | ToSupervisor

_TYPES: dict[str, type[Message]] = {t.op: t for t in (Load, Status, Stop, Ready, Loaded, Failed,
                                                      Metrics)}


class ProtocolError(ValueError):
    """A line on the control pipe that is not one of the messages above: a bug, not input."""


def encode(msg: Message) -> bytes:
    """One line of JSON, newline included.

    Fields are read as they are (no field holds a dataclass): `asdict` would deep-copy a
    Load's whole configuration and every list of a metrics snapshot first (2 ms a snapshot).
    """
    return orjson.dumps({"op": msg.op, **{f.name: getattr(msg, f.name) for f in fields(msg)}}
                        ) + b"\n"


def decode(line: bytes) -> Message:
    """The message a line carries; raises ProtocolError on anything else."""
    try:
        raw = orjson.loads(line)
        cls = _TYPES[raw.pop("op")]
        names = {f.name for f in fields(cls)}
        if set(raw) != names:
            raise ProtocolError(f"{cls.op}: fields {sorted(raw)}, expected {sorted(names)}")
        return cls(**raw)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"not a control message: {line[:80]!r}") from exc
