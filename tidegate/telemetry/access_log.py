"""The access log: exactly one line per request, written when its response has been written.

Formats: ``gin`` (KrakenD's, gin's default LoggerWithFormatter without colours:
``[GIN] 2006/01/02 - 15:04:05 | 200 |    1.234ms |       127.0.0.1 | GET      "/path"``),
``json`` (one object) and ``logfmt``; the last two carry the matched endpoint pattern (route),
the response body size and the generation id, so a latency change can be tied to a reload.

Built once per generation (format, skip paths, generation id and the sink are fixed): a request
costs one format and one queued write (the sink gathers a loop iteration's lines into one
``write``, see `logging_sinks.LineWriter`). The gin line is joined from encoded pieces, each
kept between requests: the clock's start of line (once a second), the status column and the
latency's digits by table, the padded address and the quoted path remembered per logger
(bounded); a path's entry also says whether it is skipped. No text is built or encoded per
request on that path.
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
from tidegate.telemetry.logging_sinks import LineWriter

if TYPE_CHECKING:
    from tidegate.messages import Request

Emit = Callable[[str], None]
Clock = Callable[[], float]
# Remembered gin pieces per logger (quoted paths, padded addresses): forgotten when full.
_MEMO_MAX: Final = 1024
# Characters of a key (a path, with its query) a memo holds at most: a longer one is quoted
# each time, so a client sending long unique paths (up to the 1 MiB head) cannot make a memo
# hold ~2 GiB before it is forgotten.
_MEMO_KEY: Final = 512
# A path's remembered piece when its requests are not logged (`logger_skip_paths`).
_SKIPPED: Final = b""
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
# The latency column is right-aligned on 8 characters (gin pads it as `%8v` would).
_LATENCY_WIDTH: Final = 8


def _pads(fracs: tuple[str, ...]) -> tuple[tuple[bytes, ...], ...]:
    """Per fraction, the latency column's padding by the integer part's digit count."""
    by_len = {n: tuple(b" " * max(0, _LATENCY_WIDTH - n - d) for d in range(4))
              for n in {len(f) for f in fracs}}
    return tuple(by_len[len(f)] for f in fracs)


# The same pieces encoded for the gin line: the integer part's digits, the fraction with the
# column's separator, and the padding in front (by the fraction and the digits' count).
_DIGITS: Final = tuple(s.encode() for s in _INT)
_MS_FRACS: Final = tuple(f"{f} | ".encode() for f in _FRAC_MS)
_MS_PADS: Final = _pads(_FRAC_MS)
_US_FRACS: Final = tuple(f"{f} | ".encode() for f in _FRAC_US)
_US_PADS: Final = _pads(_FRAC_US)
# The status column and its separator, as the gin line has them (from 100 on).
_STATUS_COLUMNS: Final = tuple(f"{code:3d} | ".encode() for code in range(100, 600))
_METHOD_COLUMNS: Final = {m: f"{m:<7}  ".encode() for m in (
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")}
_GET_COLUMN: Final = _METHOD_COLUMNS["GET"]


def _logfmt_value(s: str) -> str:
    if s and s.isprintable() and not any(c in s for c in ' "=\\'):
        return s
    return json.dumps(s, ensure_ascii=False)


class _Clock:
    """Wall-clock strings, formatted once per second (``wall``: the wall clock, `time.time`)."""

    __slots__ = ("_gin", "_iso", "_second", "_until", "_wall", "_zone")

    def __init__(self, wall: Clock) -> None:
        self._wall = wall
        self._second = -1
        self._gin = b""  # "[GIN] 2006/01/02 - 15:04:05 | " encoded
        self._until = 0.0  # `time.perf_counter` when `_gin` is a second old
        self._iso = ""
        self._zone = "Z"

    def gin(self, perf: float) -> bytes:
        """The gin line's start up to its status column, at `perf` (`time.perf_counter`):
        the wall clock is read only when the second it was formatted for has passed."""
        if perf >= self._until:
            now = self._wall()
            second = int(now)
            if second != self._second:
                self._tick(second)
            self._until = perf + (second + 1 - now)
        return self._gin

    def now(self) -> float:
        """The wall clock."""
        return self._wall()

    def iso(self, now: float) -> str:
        """RFC 3339 with milliseconds (local offset)."""
        second = int(now)
        if second != self._second:
            self._tick(second)
        return f"{self._iso}.{int((now - second) * 1000):03d}{self._zone}"

    def _tick(self, second: int) -> None:
        t = time.localtime(second)
        self._second = second
        self._gin = f"[GIN] {time.strftime('%Y/%m/%d - %H:%M:%S', t)} | ".encode()
        self._iso = time.strftime("%Y-%m-%dT%H:%M:%S", t)
        off = time.strftime("%z", t)
        self._zone = "Z" if off in ("+0000", "-0000") else f"{off[:3]}:{off[3:]}"


def _gin_quote(path: str) -> bytes:
    """The path as gin's ``%#v`` prints it, with the line's newline."""
    if path.isascii() and path.isprintable() and '"' not in path and "\\" not in path:
        return f'"{path}"\n'.encode()
    return f"{quote(path)}\n".encode()


def _address_column(ip: str) -> bytes:
    """gin's ``%15s`` of the client address, with the column's separator."""
    return f"{ip:>15} | ".encode()


def _remember(memo: dict[str, bytes], key: str, value: bytes) -> bytes:
    if len(key) > _MEMO_KEY:
        return value
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value


class AccessLogger:
    """One generation's access log."""

    __slots__ = ("_clock", "_format", "_gin_format", "_ips", "_last_address", "_last_ip",
                 "_paths", "_perf", "_queries", "_skip", "_writer", "emit", "generation")

    def __init__(self, settings: AccessLog, generation: int, emit: Emit,
                 writer: LineWriter | None = None, perf: Clock = perf_counter,
                 wall: Clock = wall_clock) -> None:
        """``writer``: the sink `emit` writes to, when it is stdout's (the encoded line is
        queued on it directly); ``perf`` and ``wall``: `time.perf_counter` and `time.time`."""
        self.generation = generation
        self.emit = emit
        self._writer = writer
        self._skip = settings.skip_paths
        self._perf = perf
        self._clock = _Clock(wall)
        # gin (the default) is built by `record` itself; the other two through `_format`.
        self._format = self._logfmt if settings.format == "logfmt" else self._json
        self._gin_format = settings.format == "gin"
        # The request's path (as it came) -> the decoded path as gin prints it, with the
        # newline; `_SKIPPED` when it is one of the skip paths.
        self._paths: dict[str, bytes] = {}
        self._queries: dict[str, bytes] = {}  # "path?query" -> the same, with the query
        self._ips: dict[str, bytes] = {}  # client address -> its padded column
        self._last_ip = ""  # the address of the last line, and its column
        self._last_address = _address_column("")

    def record(self, request: Request, status: int, size: int, started: float) -> None:
        """Log one answered request (``started``: `time.perf_counter` when it was handed over)."""
        if not self._gin_format:
            self._record_text(request, status, size, started)
            return
        try:
            path = request.path
            quoted = self._paths.get(path)
            if quoted is None:
                quoted = self._learn(path)
            if len(quoted) == 0:  # a skip path (`_SKIPPED`)
                return
            perf = self._perf()
            ns = int((perf - started) * 1e9)
            query = request.query
            if query:
                quoted = self._with_query(path, query)
            ip = request.client_ip
            # The last address first: a connection's requests come in turn, and most
            # clients of a gateway are a few (a balancer's) addresses.
            address = self._last_address if ip == self._last_ip else self._address(ip)
            method = request.method
            if method == "GET":  # by far the most common: no lookup
                method_column = _GET_COLUMN
            else:
                method_column = _METHOD_COLUMNS.get(method) or f"{method:<7}  ".encode()
            status_column = (_STATUS_COLUMNS[status - 100] if 100 <= status < 600
                             else f"{status:3d} | ".encode())
            # gin_latency's two common ranges from the encoded tables (same conditions).
            if 1_000_000 < ns < 1_000_000_000:
                tens = ns // 10_000
                digits = _DIGITS[tens // 100]
                pad = _MS_PADS[tens % 100][len(digits)]
                frac = _MS_FRACS[tens % 100]
            elif 1000 <= ns < 1_000_000:
                digits = _DIGITS[ns // 1000]
                pad = _US_PADS[ns % 1000][len(digits)]
                frac = _US_FRACS[ns % 1000]
            else:
                pad = digits = b""
                frac = (gin_latency(ns).rjust(_LATENCY_WIDTH) + " | ").encode()
            # Compiled, `%` of bytes pieces is one allocation and a copy of each (a join
            # takes a buffer view of each piece).
            line = b"%b%b%b%b%b%b%b%b" % (self._clock.gin(perf), status_column, pad, digits,
                                          frac, address, method_column, quoted)
            writer = self._writer
            if writer is not None:
                writer.append(line)
            else:
                self.emit(line.decode())
        except Exception:  # a logging bug must never take the connection down
            log.exception("access log")

    def _learn(self, path: str) -> bytes:
        """A path's remembered piece: as gin prints it once decoded, or `_SKIPPED`."""
        decoded = unquote(path) if "%" in path else path
        if self._skip and decoded in self._skip:
            return _remember(self._paths, path, _SKIPPED)
        return _remember(self._paths, path, _gin_quote(decoded))

    def _address(self, ip: str) -> bytes:
        """The address column (padded, with its separator) of a client address."""
        address = self._ips.get(ip)
        if address is None:
            address = _remember(self._ips, ip, _address_column(ip))
        self._last_ip = ip
        self._last_address = address
        return address

    def _with_query(self, path: str, query: str) -> bytes:
        """The quoted piece of a path with its query (the query as it came)."""
        key = f"{path}?{query}"
        quoted = self._queries.get(key)
        if quoted is None:
            decoded = unquote(path) if "%" in path else path
            quoted = _remember(self._queries, key, _gin_quote(f"{decoded}?{query}"))
        return quoted

    def _record_text(self, request: Request, status: int, size: int, started: float) -> None:
        """`record` in the JSON and logfmt formats."""
        ns = int((self._perf() - started) * 1e9)
        path = request.path
        if "%" in path:
            path = unquote(path)
        if self._skip and path in self._skip:
            return
        try:
            line = self._format(request, path, status, size, ns, self._clock.now())
            writer = self._writer
            if writer is not None:
                writer.append(line.encode())
            else:
                self.emit(line)
        except Exception:  # a logging bug must never take the connection down
            log.exception("access log")

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
