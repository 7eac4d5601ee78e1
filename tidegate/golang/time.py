"""Go's time.Time, time.Duration, layouts ("2006-01-02") and ParseDuration, for Sprig dates."""

from __future__ import annotations

import datetime as _dt
import os
import re
import time as _time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tidegate.golang.types import I64, GoObject

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


class GoLocation(GoObject):
    go_type = "*time.Location"
    go_kind = "ptr"
    go_methods = frozenset({"String"})

    def __init__(self, name: str) -> None:
        self.name = name

    def go_string(self) -> str:
        return self.name

    def m_String(self) -> str:
        return self.name


class GoTime(GoObject):
    """time.Time: an aware datetime plus nanoseconds and Go's zone name."""

    go_type = "time.Time"
    go_kind = "struct"
    go_methods = frozenset({"Year", "Month", "Day", "Hour", "Minute", "Second", "Nanosecond",
                            "Weekday", "YearDay", "Unix", "UnixNano", "UnixMilli", "UnixMicro",
                            "String", "UTC", "Local", "IsZero", "Format", "Add", "AddDate",
                            "Round", "Truncate", "Location", "In", "Before", "After", "Equal",
                            "Zone", "ISOWeek", "Date", "Clock"})
    go_results = {"Zone": 2, "ISOWeek": 2, "Date": 3, "Clock": 3}
    _ARITY = {"Format": ["string"], "Add": ["time.Duration"], "Round": ["time.Duration"],
              "Truncate": ["time.Duration"], "AddDate": ["int", "int", "int"],
              "In": ["*time.Location"], "Before": ["time.Time"], "After": ["time.Time"],
              "Equal": ["time.Time"]}

    def __init__(self, dt: _dt.datetime, nsec: int = 0, zone: str | None = None,
                 ybias: int = 0) -> None:
        self.dt = dt
        self.nsec = nsec  # sub-second nanoseconds
        self.zone = zone
        # datetime has no year 0: such times are held 400 years (one Gregorian cycle,
        # same weekdays and leap years) later, with ybias = -400
        self.ybias = ybias

    @property
    def year(self) -> int:
        return self.dt.year + self.ybias

    def in_zone(self, tz: _dt.tzinfo, zone: str | None = None) -> GoTime:
        return GoTime(self.dt.astimezone(tz), self.nsec, zone, self.ybias)

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
        secs = int((self.dt - _dt.datetime(1970, 1, 1, tzinfo=_UTC)).total_seconds() // 1)
        return secs + self.ybias // 400 * _CYCLE_SECS

    def go_string(self) -> str:
        return format_time(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def go_equal(self, other: Any) -> bool:
        return (isinstance(other, GoTime) and self.dt == other.dt and self.nsec == other.nsec
                and self.ybias == other.ybias
                and self.offset() == other.offset())

    def to_json_value(self) -> str:
        return format_time(self, "2006-01-02T15:04:05.999999999Z07:00")

    def m_Year(self) -> int:
        return self.year

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

    def method_arity(self, name: str) -> tuple[list[str], bool]:
        return self._ARITY.get(name, []), False

    def add_ns(self, ns: int) -> GoTime:
        secs, nsec = divmod(self.nsec + ns, 1_000_000_000)
        dt = (self.dt.astimezone(_UTC) + _dt.timedelta(seconds=secs)).astimezone(self.dt.tzinfo)
        return GoTime(dt, nsec, self.zone, self.ybias)

    def abs_ns(self) -> int:
        """Nanoseconds since 0001-01-01 UTC."""
        return (self.unix() + 62135596800) * 1_000_000_000 + self.nsec

    def m_Format(self, layout: str) -> str:
        return format_time(self, layout)

    def m_Add(self, d: int) -> GoTime:
        return self.add_ns(int(d))

    def m_Truncate(self, d: int) -> GoTime:
        return self.add_ns(-(self.abs_ns() % d)) if d > 0 else self

    def m_Round(self, d: int) -> GoTime:
        if d <= 0:
            return self
        r = self.abs_ns() % d
        return self.add_ns(-r if r + r < d else d - r)

    def m_AddDate(self, years: int, months: int, days: int) -> GoTime:
        mo = self.dt.month - 1 + months
        y, mo = self.year + years + mo // 12, mo % 12 + 1
        bias = 0
        while y + bias < 1:
            bias += 400
        d = _dt.date.fromordinal(_dt.date(y + bias, mo, 1).toordinal() + self.dt.day - 1 + days)
        return GoTime(self.dt.replace(year=d.year, month=d.month, day=d.day), self.nsec,
                      self.zone, -bias)

    def m_Location(self) -> GoLocation:
        if self.zone is not None:
            return GoLocation(self.zone)
        tz = self.dt.tzinfo
        if tz is _UTC:
            return GoLocation("UTC")
        # time.Local is named after $TZ when set, else "Local"
        return GoLocation(getattr(tz, "key", "UTC") if "TZ" in os.environ else "Local")

    def m_In(self, loc: GoLocation | None) -> GoTime:
        if loc is None:
            raise GoTimeError("time: missing Location in call to Time.In")
        return self

    def m_Before(self, u: GoTime) -> bool:
        return self.abs_ns() < u.abs_ns()

    def m_After(self, u: GoTime) -> bool:
        return self.abs_ns() > u.abs_ns()

    def m_Equal(self, u: GoTime) -> bool:
        return self.abs_ns() == u.abs_ns()

    def m_UnixMicro(self) -> I64:
        return I64(self.unix() * 1_000_000 + self.nsec // 1000)

    def m_UTC(self) -> GoTime:
        return self.in_zone(_UTC)

    def m_Local(self) -> GoTime:
        return self.in_zone(local_zone())

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
    return t.in_zone(tz)


_CYCLE_SECS = 146097 * 86400


def make_time(wall: tuple[int, int, int, int, int, int], nsec: int, tz: _dt.tzinfo,
              zone: str | None = None) -> GoTime:
    """time.Date for an in-range wall clock (year 0..9999) in tz."""
    year, rest = wall[0], wall[1:]
    bias = -400 if year < 1 else 0
    dt = _dt.datetime(year - bias, *rest, tzinfo=tz)
    return GoTime(dt, nsec, zone, bias)


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
            out.append(_pad(t.year, 4))
        elif tok == "06":
            out.append(f"{abs(t.year) % 100:02d}")
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


def _pad(v: int, width: int) -> str:
    return f"-{-v:0{width}d}" if v < 0 else f"{v:0{width}d}"


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
