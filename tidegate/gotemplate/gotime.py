"""Go's time.Time, time.Duration, layouts ("2006-01-02") and ParseDuration, for Sprig dates."""

from __future__ import annotations

import datetime as _dt
import os
import re
import time as _time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .gotypes import I64, GoObject

_UTC = _dt.UTC
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


class GoTimeError(ValueError):
    """A time package error text."""


def load_location(name: str) -> _dt.tzinfo:
    """time.LoadLocation ("" and "UTC" are UTC, "Local" follows TZ)."""
    if name in ("", "UTC"):
        return _UTC
    if name == "Local":
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise GoTimeError(f"unknown time zone {name}") from None


def local_zone() -> _dt.tzinfo:
    tz = os.environ.get("TZ")
    if tz is not None:
        if tz in ("", "UTC", "UTC0"):
            return _UTC
        try:
            return ZoneInfo(tz.lstrip(":"))
        except (ZoneInfoNotFoundError, ValueError):
            return _UTC
    try:
        return ZoneInfo("localtime")
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


class GoMonth(GoObject):
    go_type = "time.Month"
    go_kind = "int"

    def __init__(self, m: int) -> None:
        self.m = m

    def go_string(self) -> str:
        return _MONTHS[self.m - 1] if 1 <= self.m <= 12 else f"%!Month({self.m})"


class GoWeekday(GoObject):
    go_type = "time.Weekday"
    go_kind = "int"

    def __init__(self, d: int) -> None:
        self.d = d

    def go_string(self) -> str:
        return _DAYS[self.d]


class GoTime(GoObject):
    """time.Time: an aware datetime plus nanoseconds and Go's zone name."""

    go_type = "time.Time"
    go_kind = "struct"
    go_methods = frozenset({"Year", "Month", "Day", "Hour", "Minute", "Second", "Nanosecond",
                            "Weekday", "YearDay", "Unix", "UnixNano", "UnixMilli", "String",
                            "UTC", "Local", "IsZero"})

    def __init__(self, dt: _dt.datetime, nsec: int = 0, zone: str | None = None) -> None:
        self.dt = dt
        self.nsec = nsec  # sub-second nanoseconds
        self.zone = zone

    def zone_name(self) -> str:
        if self.zone is not None:
            return self.zone
        name = self.dt.tzname()
        if self.dt.tzinfo is _UTC:
            return "UTC"
        return name or ""

    def offset(self) -> int:
        off = self.dt.utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def unix(self) -> int:
        return int((self.dt - _dt.datetime(1970, 1, 1, tzinfo=_UTC)).total_seconds() // 1)

    def go_string(self) -> str:
        return format_time(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def go_equal(self, other: Any) -> bool:
        return (isinstance(other, GoTime) and self.dt == other.dt and self.nsec == other.nsec
                and self.offset() == other.offset())

    def to_json_value(self) -> str:
        return format_time(self, "2006-01-02T15:04:05.999999999Z07:00")

    def m_Year(self) -> int:
        return self.dt.year

    def m_Month(self) -> GoMonth:
        return GoMonth(self.dt.month)

    def m_Day(self) -> int:
        return self.dt.day

    def m_Hour(self) -> int:
        return self.dt.hour

    def m_Minute(self) -> int:
        return self.dt.minute

    def m_Second(self) -> int:
        return self.dt.second

    def m_Nanosecond(self) -> int:
        return self.nsec

    def m_Weekday(self) -> GoWeekday:
        return GoWeekday((self.dt.weekday() + 1) % 7)

    def m_YearDay(self) -> int:
        return self.dt.timetuple().tm_yday

    def m_Unix(self) -> I64:
        return I64(self.unix())

    def m_UnixNano(self) -> I64:
        return I64(self.unix() * 1_000_000_000 + self.nsec)

    def m_UnixMilli(self) -> I64:
        return I64(self.unix() * 1000 + self.nsec // 1_000_000)

    def m_String(self) -> str:
        return self.go_string()

    def m_UTC(self) -> GoTime:
        return GoTime(self.dt.astimezone(_UTC), self.nsec)

    def m_Local(self) -> GoTime:
        return GoTime(self.dt.astimezone(local_zone()), self.nsec)

    def m_IsZero(self) -> bool:
        return self.dt.year == 1 and self.dt.month == 1 and self.dt.day == 1 and \
            self.dt.hour == 0 and self.dt.minute == 0 and self.dt.second == 0 and self.nsec == 0


def now() -> GoTime:
    ns = _time.time_ns()
    dt = _dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=local_zone())
    return GoTime(dt, ns % 1_000_000_000)


def from_unix(sec: int) -> GoTime:
    return GoTime(_dt.datetime.fromtimestamp(sec, tz=local_zone()), 0)


def in_zone(t: GoTime, tz: _dt.tzinfo) -> GoTime:
    return GoTime(t.dt.astimezone(tz), t.nsec)


ZERO_TIME = GoTime(_dt.datetime(1, 1, 1, tzinfo=_UTC), 0)

_TOKENS = ["January", "Monday", "2006", "-07:00:00", "-070000", "-07:00", "-0700",
           "Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07", "-07", "Jan", "Mon", "MST",
           "002", "__2", "_2", "15", "01", "02", "03", "04", "05", "06", "PM", "pm",
           "1", "2", "3", "4", "5"]


def _next_token(layout: str, i: int) -> tuple[str | None, int]:
    """The layout token at i (None for a literal char) and its length."""
    c = layout[i]
    if c in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
        j = i + 1
        d = layout[j]
        while j < len(layout) and layout[j] == d:
            j += 1
        if j >= len(layout) or not layout[j].isdigit():
            return layout[i:j], j - i
    for tok in _TOKENS:
        if layout.startswith(tok, i):
            if tok == "Jan" and layout.startswith("January", i):
                continue
            if tok == "Mon" and layout.startswith("Monday", i):
                continue
            if tok in ("1", "2", "3", "4", "5") and tok == "2" and layout.startswith("2006", i):
                continue
            return tok, len(tok)
    return None, 1


def format_time(t: GoTime, layout: str) -> str:
    """Time.Format."""
    dt = t.dt
    out: list[str] = []
    i = 0
    while i < len(layout):
        tok, n = _next_token(layout, i)
        i += n
        if tok is None:
            out.append(layout[i - 1])
            continue
        if tok[0] in ".," and len(tok) > 1:
            digits = len(tok) - 1
            frac = f"{t.nsec:09d}"[:digits]
            if tok[1] == "9":
                frac = frac.rstrip("0")
                if frac:
                    out.append(tok[0] + frac)
            else:
                out.append(tok[0] + frac)
            continue
        off = t.offset()
        if tok == "2006":
            out.append(f"{dt.year:04d}")
        elif tok == "06":
            out.append(f"{dt.year % 100:02d}")
        elif tok == "01":
            out.append(f"{dt.month:02d}")
        elif tok == "1":
            out.append(str(dt.month))
        elif tok == "January":
            out.append(_MONTHS[dt.month - 1])
        elif tok == "Jan":
            out.append(_MONTHS[dt.month - 1][:3])
        elif tok == "02":
            out.append(f"{dt.day:02d}")
        elif tok == "_2":
            out.append(f"{dt.day:2d}")
        elif tok == "2":
            out.append(str(dt.day))
        elif tok == "002":
            out.append(f"{dt.timetuple().tm_yday:03d}")
        elif tok == "__2":
            out.append(f"{dt.timetuple().tm_yday:3d}")
        elif tok == "15":
            out.append(f"{dt.hour:02d}")
        elif tok in ("03", "3"):
            h = dt.hour % 12 or 12
            out.append(f"{h:02d}" if tok == "03" else str(h))
        elif tok in ("04", "4"):
            out.append(f"{dt.minute:02d}" if tok == "04" else str(dt.minute))
        elif tok in ("05", "5"):
            out.append(f"{dt.second:02d}" if tok == "05" else str(dt.second))
        elif tok in ("PM", "pm"):
            s = "PM" if dt.hour >= 12 else "AM"
            out.append(s if tok == "PM" else s.lower())
        elif tok == "Monday":
            out.append(_DAYS[(dt.weekday() + 1) % 7])
        elif tok == "Mon":
            out.append(_DAYS[(dt.weekday() + 1) % 7][:3])
        elif tok == "MST":
            name = t.zone_name()
            if name:
                out.append(name)
            else:
                out.append(_fmt_off(off, "-0700"))
        else:  # numeric zones
            if tok[0] == "Z" and off == 0:
                out.append("Z")
            else:
                out.append(_fmt_off(off, tok.lstrip("Z").replace("07", "-07", 1)
                                    if tok[0] == "Z" else tok))
    return "".join(out)


def _fmt_off(off: int, tok: str) -> str:
    sign = "-" if off < 0 else "+"
    off = abs(off)
    h, rem = divmod(off, 3600)
    m, s = divmod(rem, 60)
    if tok == "-07":
        return f"{sign}{h:02d}"
    if tok == "-0700":
        return f"{sign}{h:02d}{m:02d}"
    if tok == "-07:00":
        return f"{sign}{h:02d}:{m:02d}"
    if tok == "-070000":
        return f"{sign}{h:02d}{m:02d}{s:02d}"
    return f"{sign}{h:02d}:{m:02d}:{s:02d}"


_NUM_RANGES = {"2006": r"\d{4}", "06": r"\d{2}", "01": r"\d{2}", "1": r"\d{1,2}",
               "02": r"\d{2}", "_2": r" ?\d{1,2}", "2": r"\d{1,2}", "002": r"\d{3}",
               "__2": r" {0,2}\d{1,3}", "15": r"\d{1,2}", "03": r"\d{2}", "3": r"\d{1,2}",
               "04": r"\d{2}", "4": r"\d{1,2}", "05": r"\d{2}", "5": r"\d{1,2}"}


def parse_time(layout: str, value: str, loc: _dt.tzinfo) -> GoTime:
    """time.ParseInLocation (common layouts); GoTimeError with Go's text on failure."""
    parts: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(layout):
        tok, n = _next_token(layout, i)
        i += n
        if tok is None:
            parts.append(re.escape(layout[i - 1]))
            continue
        names.append(tok)
        g = f"(?P<g{len(names) - 1}>"
        if tok in ("05", "5") and not (i < len(layout) and layout[i] in ".,"
                                       and _next_token(layout, i)[0] is not None):
            # Go accepts a fractional second after the seconds even if the layout has none
            parts.append(g + _NUM_RANGES[tok] + f")(?P<f{len(names) - 1}>[.,]\\d+)?")
        elif tok in _NUM_RANGES:
            parts.append(g + _NUM_RANGES[tok] + ")")
        elif tok in ("January", "Monday"):
            parts.append(g + "[A-Za-z]+)")
        elif tok in ("Jan", "Mon"):
            parts.append(g + "[A-Za-z]{3})")
        elif tok in ("PM", "pm"):
            parts.append(g + "[AaPp][Mm])")
        elif tok == "MST":
            parts.append(g + "[A-Z]{3,5}|[+-]\\d{2,4})")
        elif tok[0] in ".,":
            digits = len(tok) - 1
            parts.append(g + "[.,]\\d+)?" if tok[1] == "9" else g + f"[.,]\\d{{{digits}}})")
        else:
            z = "Z|" if tok.startswith("Z") else ""
            parts.append(g + z + "[+-]\\d{2}(?::?\\d{2}(?::?\\d{2})?)?)")
    m = re.fullmatch("".join(parts), value)
    if m is None:
        raise GoTimeError(f'parsing time "{value}" as "{layout}": cannot parse "{value}" as '
                          f'"{layout}"')
    year, month, day, hour, minute, sec, nsec = 1, 1, 1, 0, 0, 0, 0
    pm: bool | None = None
    off: int | None = None
    zone_abbr: str | None = None
    for idx, tok in enumerate(names):
        v = m.group(f"g{idx}")
        if v is None:
            continue
        if tok == "2006":
            year = int(v)
        elif tok == "06":
            year = int(v) + (1900 if int(v) >= 69 else 2000)
        elif tok in ("01", "1"):
            month = int(v)
        elif tok in ("January", "Jan"):
            names_ = _MONTHS if tok == "January" else [x[:3] for x in _MONTHS]
            if v not in names_:
                raise GoTimeError(f'parsing time "{value}" as "{layout}": cannot parse '
                                  f'"{v}" as "{tok}"')
            month = names_.index(v) + 1
        elif tok in ("02", "_2", "2"):
            day = int(v)
        elif tok in ("15", "03", "3"):
            hour = int(v)
            if tok != "15" and hour > 12:
                raise GoTimeError(f'parsing time "{value}": hour out of range')
        elif tok in ("04", "4"):
            minute = int(v)
        elif tok in ("05", "5"):
            sec = int(v)
            frac = m.groupdict().get(f"f{idx}")
            if frac:
                nsec = int((frac[1:] + "000000000")[:9])
        elif tok in ("PM", "pm"):
            pm = v.upper() == "PM"
        elif tok[0] in ".,":
            nsec = int((v[1:] + "000000000")[:9])
        elif tok == "MST":
            zone_abbr = v
        elif tok not in ("Monday", "Mon", "002", "__2"):
            if v == "Z":
                off = 0
            else:
                sign = -1 if v[0] == "-" else 1
                digits = v[1:].replace(":", "")
                hh, mm, ss = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
                off = sign * (hh * 3600 + mm * 60 + ss)
    if pm is not None and hour <= 12:
        if pm and hour < 12:
            hour += 12
        elif not pm and hour == 12:
            hour = 0
    for bad, what in ((not 1 <= month <= 12, "month"), (not 1 <= day <= 31, "day"),
                      (hour >= 24, "hour"), (minute >= 60, "minute"), (sec >= 60, "second")):
        if bad:
            raise GoTimeError(f'parsing time "{value}": {what} out of range')
    try:
        naive = _dt.datetime(year, month, day, hour, minute, sec)
    except ValueError:
        raise GoTimeError(f'parsing time "{value}": day out of range') from None
    if off is not None:
        local = naive.replace(tzinfo=loc)
        if local.utcoffset() == _dt.timedelta(seconds=off):
            return GoTime(local, nsec)
        if off == 0 and loc is _UTC:
            return GoTime(naive.replace(tzinfo=_UTC), nsec)
        tz = _dt.timezone(_dt.timedelta(seconds=off))
        return GoTime(naive.replace(tzinfo=tz), nsec, zone="")
    if zone_abbr is not None:
        local = naive.replace(tzinfo=loc)
        if local.tzname() == zone_abbr:
            return GoTime(local, nsec)
        if zone_abbr == "UTC":
            return GoTime(naive.replace(tzinfo=_UTC), nsec)
        return GoTime(naive.replace(tzinfo=_dt.timezone(_dt.timedelta(0))), nsec,
                      zone=zone_abbr)
    return GoTime(naive.replace(tzinfo=loc), nsec)


# ---------------------------------------------------------------- durations
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DUR_RE = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(s: str) -> int:
    """time.ParseDuration in nanoseconds."""
    orig = s
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise GoTimeError(f'time: invalid duration "{orig}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            if m is None and re.match(r"\d*\.?\d*", s[pos:]).group(0):
                num = re.match(r"\d*\.?\d*", s[pos:]).group(0)
                rest = s[pos + len(num):]
                unit = re.match(r"[^\d.]*", rest).group(0)
                if unit:
                    raise GoTimeError(f'time: unknown unit "{unit}" in duration "{orig}"')
                raise GoTimeError(f'time: missing unit in duration "{orig}"')
            raise GoTimeError(f'time: invalid duration "{orig}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    v = round(total)
    return -v if neg else v


def format_duration(d: int) -> str:
    """Duration.String."""
    if d == 0:
        return "0s"
    neg = d < 0
    u = abs(d)
    if u < 1_000_000_000:
        if u < 1000:
            s = f"{u}ns"
        elif u < 1_000_000:
            s = _frac(u, 1000) + "µs"
        else:
            s = _frac(u, 1_000_000) + "ms"
    else:
        secs_total, ns = divmod(u, 1_000_000_000)
        h, rem = divmod(secs_total, 3600)
        m, sec = divmod(rem, 60)
        s = _frac(sec * 1_000_000_000 + ns, 1_000_000_000) + "s"
        if h or m:
            s = f"{m}m" + s
        if h:
            s = f"{h}h" + s
    return ("-" if neg else "") + s


def _frac(v: int, unit: int) -> str:
    whole, rem = divmod(v, unit)
    if rem == 0:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}." + f"{rem:0{width}d}".rstrip("0")
