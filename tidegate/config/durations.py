"""Go duration strings (``"1m30s"``, ``"150us"``, ``"2h"``) parsed as ``time.ParseDuration``.

KrakenD silently turns a malformed duration into 0; tidegate raises instead.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TERM = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")
_MAX_SECONDS = (2**63 - 1) / 1e9


class DurationError(ValueError):
    """A string that Go's time.ParseDuration would reject."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; raises DurationError with Go's wording on bad input."""
    if not isinstance(text, str):
        raise DurationError(f"invalid duration {text!r}: expected a string such as \"2s\"")
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m and re.fullmatch(r"\d*\.?\d*", s[pos:]):
            raise DurationError(f'time: missing unit in duration "{text}"')
        if not m or (not m.group(1) and not m.group(2)):
            raise DurationError(f'time: invalid duration "{text}"')
        unit = m.group(3)
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration "{text}"')
        number = float(f"{m.group(1) or '0'}.{m.group(2) or '0'}")
        total += number * _UNITS[unit]
        pos = m.end()
    if total > _MAX_SECONDS:
        raise DurationError(f'time: invalid duration "{text}"')
    return sign * total


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String()`` for display (``1m30s``, ``150µs``, ``0s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1e3)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1e6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    secs = _trim(rest / 1e9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{secs}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
