"""The access log: exactly one line per request, written when its response has been written.

Formats: ``gin`` (KrakenD's, gin's default LoggerWithFormatter without colours:
``[GIN] 2006/01/02 - 15:04:05 | 200 |    1.234ms |       127.0.0.1 | GET      "/path"``),
``json`` (one object) and ``logfmt``; the last two carry the matched endpoint pattern (route),
the response body size and the generation id, so a latency change can be tied to a reload.

Built once per generation (format, skip paths, generation id and the sink are fixed): a request
costs one format and one queued write (the sink gathers a loop iteration's lines into one
``write``, see `logging_sinks.LineWriter`). The gin line's pieces that repeat from request to
request (the quoted path, the padded client address) are remembered per logger, bounded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from time import perf_counter
from time import time as wall_clock
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from tidegate.golang.strconv import quote
from tidegate.golang.time import format_duration
from tidegate.telemetry.logging_config import AccessLog

if TYPE_CHECKING:
    from tidegate.messages import Request

Emit = Callable[[str], None]
EmitBytes = Callable[[bytes], None]
# Remembered gin pieces per logger (quoted paths, padded addresses): forgotten when full.
_MEMO_MAX: Final = 1024
# Remembered ends of gin lines (address, method and path), all paths together.
_TAILS_MAX: Final = 4096
log = logging.getLogger("tidegate.telemetry")


def gin_latency(ns: int) -> str:
    """gin's latency column: Go's Duration, truncated as gin does before printing."""
    if 1_000_000 < ns < 1_000_000_000:  # the common case, from 1 ms: 10 us steps
        tens = ns // 10_000
        return _INT[tens // 100] + _FRAC_MS[tens % 100]
    if 1000 <= ns < 1_000_000:  # under 1 ms: not truncated
        return _INT[ns // 1000] + _FRAC_US[ns % 1000]
    if ns > 60_000_000_000:
        ns -= ns % 10_000_000_000
    elif ns > 1_000_000_000:
        ns -= ns % 10_000_000
    elif ns > 1_000_000:
        ns -= ns % 10_000
    return format_duration(ns)


# Go's Duration.String pieces for the two common ranges, by table: "1.23ms", "158.954µs".
_INT: Final = tuple(str(i) for i in range(1001))
_FRAC_MS: Final = tuple(f".{i:02d}".rstrip("0").rstrip(".") + "ms" for i in range(100))
_FRAC_US: Final = tuple(f".{i:03d}".rstrip("0").rstrip(".") + "µs" for i in range(1000))
# The status column and its separator, as the gin line has them.
_STATUS_COLUMN: Final = {code: f"{code:3d} | " for code in range(100, 600)}
_PAD: Final = tuple(" " * n for n in range(9))
_METHODS: Final = {m: f"{m:<7}  " for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                      "OPTIONS", "CONNECT", "TRACE")}


def _logfmt_value(s: str) -> str:
    if s and s.isprintable() and not any(c in s for c in ' "=\\'):
        return s
    return json.dumps(s, ensure_ascii=False)


class _Clock:
    """Wall-clock strings, formatted once per second."""

    __slots__ = ("_gin", "_iso", "_second", "_text", "_until", "_zone")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""
        self._gin = ""  # "[GIN] " and `_text`, then the column's separator
        self._until = 0.0  # `time.perf_counter` when `_gin` is a second old
        self._iso = ""
        self._zone = "Z"

    def gin(self, perf: float) -> str:
        """The gin line's start up to its status column, at `perf` (`time.perf_counter`):
        the wall clock is read only when the second it was formatted for has passed."""
        if perf >= self._until:
            now = wall_clock()  # by name: `time.time` is a module lookup per call
            second = int(now)
            if second != self._second:
                self._tick(second)
            self._until = perf + (second + 1 - now)
        return self._gin

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
        self._gin = f"[GIN] {self._text} | "
        self._iso = time.strftime("%Y-%m-%dT%H:%M:%S", t)
        off = time.strftime("%z", t)
        self._zone = "Z" if off in ("+0000", "-0000") else f"{off[:3]}:{off[3:]}"


def _gin_quote(path: str) -> str:
    """The path as gin's ``%#v`` prints it."""
    if path.isascii() and path.isprintable() and '"' not in path and "\\" not in path:
        return f'"{path}"'
    return quote(path)


def _remember(memo: dict[str, str], key: str, value: str) -> str:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value


class AccessLogger:
    """One generation's access log."""

    __slots__ = ("_clock", "_emit_bytes", "_format", "_gin_format", "_ips", "_quoted", "_skip",
                 "_tail_count", "_tails", "emit", "generation")

    def __init__(self, settings: AccessLog, generation: int, emit: Emit,
                 emit_bytes: EmitBytes | None = None) -> None:
        """``emit_bytes``: the same sink taking the encoded line, when it has such an entry
        (one call fewer per request)."""
        self.generation = generation
        self.emit = emit
        self._emit_bytes = emit_bytes
        self._skip = settings.skip_paths
        self._clock = _Clock()
        # gin (the default) is built by `_gin_line`; the other two through `_format`.
        self._format = self._logfmt if settings.format == "logfmt" else self._json
        self._gin_format = settings.format == "gin"
        self._quoted: dict[str, str] = {}  # path (with its query) -> as gin prints it
        self._ips: dict[str, str] = {}  # client address -> its padded column
        # The gin line's end (address, method, quoted path), by path, then address and
        # method: two lookups instead of three pieces looked up and joined per request.
        self._tails: dict[str, dict[str, str]] = {}
        self._tail_count = 0  # ends remembered, over every path (forgotten at `_TAILS_MAX`)

    def record(self, request: Request, status: int, size: int, started: float) -> None:
        """Log one answered request (``started``: `time.perf_counter` when it was handed over)."""
        perf = perf_counter()
        ns = int((perf - started) * 1e9)
        path = request.path
        if "%" in path:
            path = unquote(path)
        if self._skip and path in self._skip:
            return
        try:
            if self._gin_format:  # the default: called directly, not through `_format`
                line = self._gin_line(request, path, status, ns, perf)
            else:
                line = self._format(request, path, status, size, ns, wall_clock())
            if self._emit_bytes is not None:
                self._emit_bytes(line.encode())
            else:
                self.emit(line)
        except Exception:  # a logging bug must never take the connection down
            log.exception("access log")

    def _gin_line(self, request: Request, path: str, status: int, ns: int, perf: float) -> str:
        """`_gin`'s line from pieces kept between requests: the clock's start of the line
        (once a second), the status column by table, the end by path, address and method
        (`time.perf_counter` tells when the second changes: no wall clock read per line)."""
        if request.query:
            path = f"{path}?{request.query}"
        key = f"{request.client_ip} {request.method}"
        by_peer = self._tails.get(path)
        tail = None if by_peer is None else by_peer.get(key)
        if tail is None:
            tail = self._tail(request, path)
            self._tail_count += 1
            if self._tail_count > _TAILS_MAX:
                self._tails.clear()
                self._tail_count = 1
                by_peer = None
            if by_peer is None:
                by_peer = self._tails[path] = {}
            by_peer[key] = tail
        latency = gin_latency(ns)
        if len(latency) < 8:
            latency = _PAD[8 - len(latency)] + latency
        return (f"{self._clock.gin(perf)}{_STATUS_COLUMN.get(status) or f'{status:3d} | '}"
                f"{latency} | {tail}")

    def _tail(self, request: Request, path: str) -> str:
        """The gin line from its address column on (``path`` with its query)."""
        method = _METHODS.get(request.method) or f"{request.method:<7}  "
        ip = self._ips.get(request.client_ip)
        if ip is None:
            ip = _remember(self._ips, request.client_ip, request.client_ip.rjust(15))
        quoted = self._quoted.get(path)
        if quoted is None:
            quoted = _remember(self._quoted, path, _gin_quote(path))
        return f"{ip} | {method}{quoted}\n"

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
