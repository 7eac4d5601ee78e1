"""go-logging's string patterns (``%{time:...} %{level:.4s} %{message}``), compiled once into a
list of parts that render a Python log record as KrakenD's logger would render its own.

Verbs: ``time`` (a Go layout, default RFC 3339 with milliseconds), ``level``, ``id``, ``pid``,
``program``, ``module``, ``message``, ``longfile``, ``shortfile``, ``longpkg``, ``shortpkg``,
``longfunc``, ``shortfunc`` (each with an optional Go printf layout such as ``.4s`` or ``-8s``)
and ``color`` (``bold``, ``reset``: ANSI escapes, written whatever the output, as go-logging
does). ``callpath`` is refused: a Python stack is not a Go call path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from tidegate.golang.fmt import sprintf
from tidegate.golang.time import GoTime, format_time, local_zone

# krakend-gologging's patterns (the prefix is written before the pattern, by the backend).
DEFAULT_PATTERN = " %{time:2006/01/02 - 15:04:05.000} %{color}▶ %{level}%{color:reset} %{message}"
LOGSTASH_PATTERN = ('{"@timestamp":"%{time:2006-01-02T15:04:05.000+00:00}", "@version": 1, '
                    '"level": "%{level}", "message": "%{message}", "module": "%{module}"}')
SYSLOG_PATTERN = "%{level} > %{message}"
# krakend-logstash's record timestamp.
LOGSTASH_TIME = "2006-01-02T15:04:05.000000-07:00"
MODULE = "KRAKEND"  # the go-logging module KrakenD logs under
PROGRAM = "tidegate"

_VERB = re.compile(r"%{([a-z]+)(?::(.*?[^\\]))?}")
_DEFAULT_LAYOUT = {"time": "2006-01-02T15:04:05.999Z07:00", "id": "d", "pid": "d"}
_VERBS = ("time", "level", "id", "pid", "program", "module", "message", "longfile",
          "shortfile", "longpkg", "shortpkg", "longfunc", "shortfunc", "color")
_COLORS = {"CRITICAL": "\033[35m", "ERROR": "\033[31m", "WARNING": "\033[33m",
           "DEBUG": "\033[36m"}
_BOLD = {k: v[:-1] + ";1m" for k, v in _COLORS.items()}
_RESET = "\033[0m"

Part = Callable[[logging.LogRecord], str]


@dataclass(frozen=True)
class Pattern:
    """A compiled pattern: its source (for equality) and its parts."""

    source: str
    parts: tuple[Part, ...]

    def render(self, record: logging.LogRecord) -> str:
        """The record as one line (without the newline)."""
        return "".join(p(record) for p in self.parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def level_name(record: logging.LogRecord) -> str:
    """go-logging's level names (Python's FATAL is CRITICAL there)."""
    name = record.levelname
    return "CRITICAL" if name == "FATAL" else name


def message(record: logging.LogRecord) -> str:
    """The message, with its traceback on the following lines when there is one."""
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


def go_time(created: float) -> GoTime:
    """A record's time as a Go time in the local zone."""
    ns = int(created * 1e9)
    return GoTime(dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=local_zone()),
                  ns % 1_000_000_000)


def compile_pattern(source: str) -> Pattern:
    """The parts of a pattern; ValueError names an unknown or refused verb (as go-logging's
    NewStringFormatter does, a pattern without any verb is refused too)."""
    parts: list[Part] = []
    prev = 0
    found = False
    for m in _VERB.finditer(source):
        found = True
        if m.start() > prev:
            parts.append(_static(source[prev:m.start()]))
        parts.append(_part(m.group(1), m.group(2)))
        prev = m.end()
    if not found:
        raise ValueError(f"invalid log format {source!r}: no %{{verb}} in it")
    if prev < len(source):
        parts.append(_static(source[prev:]))
    return Pattern(source, tuple(parts))


def _static(text: str) -> Part:
    return lambda _r: text


def _part(verb: str, layout: str | None) -> Part:
    if verb == "callpath":
        raise ValueError("the %{callpath} verb is not supported by tidegate (a Python stack "
                         "is not a Go call path)")
    if verb not in _VERBS:
        raise ValueError(f"unknown variable %{{{verb}}} in the log format (known: "
                         f"{', '.join(_VERBS)})")
    if verb == "time":
        go_layout = layout or _DEFAULT_LAYOUT["time"]
        return lambda r: format_time(go_time(r.created), go_layout)
    if verb == "color":
        if layout == "reset":
            return lambda _r: _RESET
        table = _BOLD if layout == "bold" else _COLORS
        return lambda r: table.get(level_name(r), "")
    value = _VALUES[verb]
    fmt = "%" + (layout or _DEFAULT_LAYOUT.get(verb, "s"))
    if fmt in ("%s", "%d"):
        return lambda r: str(value(r))
    sprintf(fmt, [value(_PROBE)])  # a layout Go's fmt cannot use fails here, not per line
    return lambda r: sprintf(fmt, [value(r)])


_PID = os.getpid


def _pkg(record: logging.LogRecord) -> str:
    return record.name


_VALUES: dict[str, Callable[[logging.LogRecord], object]] = {
    "level": level_name,
    "id": lambda r: getattr(r, "seq", 0),
    "pid": lambda r: r.process or _PID(),
    "program": lambda r: PROGRAM,
    "module": lambda r: MODULE,
    "message": message,
    "longfile": lambda r: f"{r.pathname}:{r.lineno}",
    "shortfile": lambda r: f"{os.path.basename(r.pathname)}:{r.lineno}",
    "longpkg": _pkg,
    "shortpkg": lambda r: r.name.rpartition(".")[2],
    "longfunc": lambda r: r.funcName or "???",
    "shortfunc": lambda r: r.funcName or "???",
}
_PROBE = logging.LogRecord("tidegate", logging.INFO, __file__, 1, "probe", None, None)

HOSTNAME = socket.gethostname() or "localhost"


def logstash_record(record: logging.LogRecord, module: str) -> str:
    """krakend-logstash's JSON record of one log line."""
    return json.dumps({
        "@timestamp": format_time(go_time(record.created), LOGSTASH_TIME),
        "@version": 1, "level": level_name(record), "message": message(record),
        "module": module, "host": HOSTNAME}, ensure_ascii=False)
