"""The access log: exactly one line per request, written when its response has been written.

Formats: ``gin`` (KrakenD's, gin's default LoggerWithFormatter without colours:
``[GIN] 2006/01/02 - 15:04:05 | 200 |    1.234ms |       127.0.0.1 | GET      "/path"``),
``json`` (one object) and ``logfmt``; the last two carry the matched endpoint pattern (route),
the response body size and the generation id, so a latency change can be tied to a reload.

Built once per generation (format, skip paths, generation id and the sink are fixed): a request
costs one format and one queued write (the sink gathers a loop iteration's lines into one
``write``, see `logging_sinks.LineWriter`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from tidegate.golang.strconv import quote
from tidegate.golang.time import format_duration
from tidegate.telemetry.logging_config import AccessLog

if TYPE_CHECKING:
    from tidegate.messages import Request

Emit = Callable[[str], None]
log = logging.getLogger("tidegate.telemetry")


def gin_latency(ns: int) -> str:
    """gin's latency column: Go's Duration, truncated as gin does before printing."""
    if 1_000_000 < ns <= 1_000_000_000:  # the common case, from 1 ms: 10 us steps
        whole, frac = divmod(ns // 10_000, 100)
        if frac % 10:
            return f"{whole}.{frac:02d}ms"
        return f"{whole}.{frac // 10}ms" if frac else f"{whole}ms"
    if 1000 <= ns < 1_000_000:  # under 1 ms: not truncated
        whole, rem = divmod(ns, 1000)
        return f"{whole}.{rem:03d}".rstrip("0") + "µs" if rem else f"{whole}µs"
    if ns > 60_000_000_000:
        ns -= ns % 10_000_000_000
    elif ns > 1_000_000_000:
        ns -= ns % 10_000_000
    elif ns > 1_000_000:
        ns -= ns % 10_000
    return format_duration(ns)


def _go_quoted(s: str) -> str:
    """``%#v`` of a Go string; the common path (printable ASCII, no quote) stays cheap."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    return quote(s)


def _logfmt_value(s: str) -> str:
    if s and s.isprintable() and not any(c in s for c in ' "=\\'):
        return s
    return json.dumps(s, ensure_ascii=False)


class _Clock:
    """Wall-clock strings, formatted once per second."""

    __slots__ = ("_iso", "_second", "_text", "_zone")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""
        self._iso = ""
        self._zone = "Z"

    def text(self, now: float) -> str:
        """gin's timestamp ``2006/01/02 - 15:04:05`` (local time)."""
        second = int(now)
        if second != self._second:
            self._tick(second)
        return self._text

    def iso(self, now: float) -> str:
        """RFC 3339 with milliseconds (local offset)."""
        second = int(now)
        if second != self._second:
            self._tick(second)
        return f"{self._iso}.{int((now - second) * 1000):03d}{self._zone}"

    def _tick(self, second: int) -> None:
        t = time.localtime(second)
        self._second = second
        self._text = time.strftime("%Y/%m/%d - %H:%M:%S", t)
        self._iso = time.strftime("%Y-%m-%dT%H:%M:%S", t)
        off = time.strftime("%z", t)
        self._zone = "Z" if off in ("+0000", "-0000") else f"{off[:3]}:{off[3:]}"


class AccessLogger:
    """One generation's access log."""

    __slots__ = ("_clock", "_format", "_skip", "emit", "generation")

    def __init__(self, settings: AccessLog, generation: int, emit: Emit) -> None:
        self.generation = generation
        self.emit = emit
        self._skip = settings.skip_paths
        self._clock = _Clock()
        self._format = {"gin": self._gin, "json": self._json, "logfmt": self._logfmt}[
            settings.format]

    def record(self, request: Request, status: int, size: int, started: float) -> None:
        """Log one answered request (``started``: `time.perf_counter` when it was handed over)."""
        ns = int((time.perf_counter() - started) * 1e9)
        path = request.path
        if "%" in path:
            path = unquote(path)
        if self._skip and path in self._skip:
            return
        try:
            self.emit(self._format(request, path, status, size, ns, time.time()))
        except Exception:  # a logging bug must never take the connection down
            log.exception("access log")

    def _gin(self, request: Request, path: str, status: int, size: int, ns: int,
             now: float) -> str:
        if request.query:
            path = f"{path}?{request.query}"
        return (f"[GIN] {self._clock.text(now)} | {status:3d} | {gin_latency(ns):>8} | "
                f"{request.client_ip:>15} | {request.method:<7}  {_go_quoted(path)}\n")

    def _json(self, request: Request, path: str, status: int, size: int, ns: int,
              now: float) -> str:
        return json.dumps({
            "time": self._clock.iso(now), "route": request.route or None,
            "method": request.method, "path": path, "status": status,
            "latency_ms": round(ns / 1e6, 3), "bytes": size, "client_ip": request.client_ip,
            "generation": self.generation}, ensure_ascii=False) + "\n"

    def _logfmt(self, request: Request, path: str, status: int, size: int, ns: int,
                now: float) -> str:
        route = _logfmt_value(request.route) if request.route else '""'
        return (f"time={self._clock.iso(now)} route={route} method={request.method} "
                f"path={_logfmt_value(path)} status={status} latency_ms={ns / 1e6:.3f} "
                f"bytes={size} client_ip={request.client_ip} "
                f"generation={self.generation}\n")
