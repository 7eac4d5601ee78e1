"""time.ParseInLocation, element by element, with Go's ParseError texts."""

from __future__ import annotations

import calendar
import datetime as _dt

from tidegate.golang.time import _MONTHS, GoTime, GoTimeError, make_time

_UTC = _dt.UTC
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_LONG_MONTHS = _MONTHS
_SHORT_MONTHS = [m[:3] for m in _MONTHS]
_LONG_DAYS = _DAYS
_SHORT_DAYS = [d[:3] for d in _DAYS]
_DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]
_ZERO_X = {"1": "01", "2": "02", "3": "03", "4": "04", "5": "05", "6": "06"}
_NUM_TZ = ["-070000", "-07:00:00", "-0700", "-07:00", "-07"]
_ISO_TZ = ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"]


def _quote(s: str) -> str:
    """Go's time.quote over the UTF-8 bytes (here: latin-1 chars)."""
    out = ['"']
    for c in s:
        if ord(c) >= 0x80 or c < " ":
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append("\\" + c if c in '"\\' else c)
    out.append('"')
    return "".join(out)


def _lower_start(s: str) -> bool:
    return bool(s) and "a" <= s[0] <= "z"


def next_chunk(layout: str) -> tuple[str, str | None, str]:
    """(prefix, std element, suffix) like Go's nextStdChunk; std None at the end."""
    n = len(layout)
    for i, c in enumerate(layout):
        rest = layout[i:]
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                return layout[:i], "January", layout[i + 7:]
            if not _lower_start(layout[i + 3:]):
                return layout[:i], "Jan", layout[i + 3:]
        elif c == "M":
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    return layout[:i], "Monday", layout[i + 6:]
                if not _lower_start(layout[i + 3:]):
                    return layout[:i], "Mon", layout[i + 3:]
            if rest.startswith("MST"):
                return layout[:i], "MST", layout[i + 3:]
        elif c == "0":
            if i + 1 < n and "1" <= layout[i + 1] <= "6":
                return layout[:i], _ZERO_X[layout[i + 1]], layout[i + 2:]
            if rest.startswith("002"):
                return layout[:i], "002", layout[i + 3:]
        elif c == "1":
            if rest.startswith("15"):
                return layout[:i], "15", layout[i + 2:]
            return layout[:i], "1", layout[i + 1:]
        elif c == "2":
            if rest.startswith("2006"):
                return layout[:i], "2006", layout[i + 4:]
            return layout[:i], "2", layout[i + 1:]
        elif c == "_":
            if rest.startswith("_2"):
                if rest.startswith("_2006"):
                    return layout[:i + 1], "2006", layout[i + 5:]
                return layout[:i], "_2", layout[i + 2:]
            if rest.startswith("__2"):
                return layout[:i], "__2", layout[i + 3:]
        elif c in "345":
            return layout[:i], c, layout[i + 1:]
        elif rest[:2] in ("PM", "pm"):
            return layout[:i], rest[:2], layout[i + 2:]
        elif c in "-Z":
            for tok in _NUM_TZ if c == "-" else _ISO_TZ:
                if rest.startswith(tok):
                    return layout[:i], tok, layout[i + len(tok):]
        elif c in ".," and i + 1 < n and layout[i + 1] in "09":
            j = i + 1
            while j < n and layout[j] == layout[i + 1]:
                j += 1
            if not (j < n and layout[j].isdigit()):
                return layout[:i], layout[i:j], layout[j:]
    return layout, None, ""


def _digit(s: str, i: int) -> bool:
    return i < len(s) and "0" <= s[i] <= "9"


def _getnum(s: str, fixed: bool) -> tuple[int, str]:
    if not _digit(s, 0):
        raise ValueError
    if not _digit(s, 1):
        if fixed:
            raise ValueError
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _getnum3(s: str, fixed: bool) -> tuple[int, str]:
    i = 0
    while i < 3 and _digit(s, i):
        i += 1
    if i == 0 or (fixed and i != 3):
        raise ValueError
    return int(s[:i]), s[i:]


def _leading_int(s: str) -> tuple[int, str]:
    i = 0
    while _digit(s, i):
        i += 1
    x = int(s[:i]) if i else 0
    if x >= 1 << 63:
        raise ValueError
    return x, s[i:]


def _atoi(s: str) -> int:
    neg = bool(s) and s[0] in "+-" and s[0] == "-"
    if s and s[0] in "+-":
        s = s[1:]
    x, rem = _leading_int(s)
    if rem:
        raise ValueError
    return -x if neg else x


def _lookup(tab: list[str], val: str) -> tuple[int, str]:
    for i, v in enumerate(tab):
        if len(val) >= len(v) and val[:len(v)].lower() == v.lower():
            return i, val[len(v):]
    raise ValueError


def _skip(value: str, prefix: str) -> tuple[str, bool]:
    while prefix:
        if prefix[0] == " ":
            if value and value[0] != " ":
                return value, False
            prefix = prefix.lstrip(" ")
            value = value.lstrip(" ")
            continue
        if not value or value[0] != prefix[0]:
            return value, False
        prefix, value = prefix[1:], value[1:]
    return value, True


def _nanos(value: str, nbytes: int) -> tuple[int, str]:
    if value[0] not in ".,":
        raise ValueError
    if nbytes > 10:
        value, nbytes = value[:10], 10
    ns = _atoi(value[1:nbytes])
    if ns < 0:
        return 0, "fractional second"
    return ns * 10 ** (10 - nbytes), ""


def _signed_offset(value: str) -> int:
    if value[0] not in "+-":
        return 0
    try:
        x, rem = _leading_int(value[1:])
    except ValueError:
        return 0
    if rem == value[1:] or x > 23:
        return 0
    return len(value) - len(rem)


def _tz_len(value: str) -> int:
    """parseTimeZone: length of a zone abbreviation at the start of value, 0 if none."""
    if len(value) < 3:
        return 0
    if value[:4] in ("ChST", "MeST"):
        return 4
    if value[:3] == "GMT":
        return 3 if len(value) == 3 else 3 + _signed_offset(value[3:])
    if value[0] in "+-":
        return _signed_offset(value)
    up = 0
    while up < 6 and up < len(value) and "A" <= value[up] <= "Z":
        up += 1
    if up == 3:
        return 3
    if up == 4 and (value[3] == "T" or value[:4] == "WITA"):
        return 4
    if up == 5 and value[4] == "T":
        return 5
    return 0


class _Bad(ValueError):
    """An element failed after consuming input: Go reports the rest of the value."""

    def __init__(self, rest: str) -> None:
        super().__init__(rest)
        self.rest = rest


def _consumed(conv, arg, rest: str):
    try:
        return conv(*arg)
    except (ValueError, IndexError):
        raise _Bad(rest) from None


class _State:
    def __init__(self) -> None:
        self.year, self.month, self.day, self.yday = 0, -1, -1, -1
        self.hour = self.minute = self.sec = self.nsec = 0
        self.utc = False
        self.offset: int | None = None
        self.zone_name = ""
        self.am = self.pm = False


def _element(st: _State, std: str, value: str, layout: str) -> tuple[str, str]:
    """Consume one layout element; returns (rest of value, range error or "")."""
    rng = ""
    if std == "06":
        if len(value) < 2:
            raise ValueError
        y = _atoi(value[:2])
        st.year, value = y + (1900 if y >= 69 else 2000), value[2:]
    elif std == "2006":
        if len(value) < 4 or not _digit(value, 0):
            raise ValueError
        st.year, value = _consumed(_atoi, (value[:4],), value[4:]), value[4:]
    elif std in ("Jan", "January"):
        m, value = _lookup(_SHORT_MONTHS if std == "Jan" else _LONG_MONTHS, value)
        st.month = m + 1
    elif std in ("1", "01"):
        st.month, value = _getnum(value, std == "01")
        if not 1 <= st.month <= 12:
            rng = "month"
    elif std in ("Mon", "Monday"):
        _, value = _lookup(_SHORT_DAYS if std == "Mon" else _LONG_DAYS, value)
    elif std in ("2", "_2", "02"):
        if std == "_2" and value[:1] == " ":
            value = value[1:]
        st.day, value = _getnum(value, std == "02")
    elif std in ("__2", "002"):
        if std == "__2":
            for _ in range(2):
                if value[:1] == " ":
                    value = value[1:]
        st.yday, value = _getnum3(value, std == "002")
    elif std == "15":
        st.hour, value = _getnum(value, False)
        if st.hour >= 24:
            rng = "hour"
    elif std in ("3", "03"):
        st.hour, value = _getnum(value, std == "03")
        if st.hour > 12:
            rng = "hour"
    elif std in ("4", "04"):
        st.minute, value = _getnum(value, std == "04")
        if st.minute >= 60:
            rng = "minute"
    elif std in ("5", "05"):
        st.sec, value = _getnum(value, std == "05")
        if st.sec >= 60:
            return value, "second"
        if len(value) >= 2 and value[0] in ".," and _digit(value, 1):
            nxt = next_chunk(layout)[1]
            if nxt is not None and nxt[0] in ".," and len(nxt) > 1:
                return value, ""
            n = 2
            while _digit(value, n):
                n += 1
            st.nsec, rng = _nanos(value, n)
            value = value[n:]
    elif std in ("PM", "pm"):
        if len(value) < 2:
            raise ValueError
        p, value = value[:2], value[2:]
        if p == ("PM" if std == "PM" else "pm"):
            st.pm = True
        elif p == ("AM" if std == "PM" else "am"):
            st.am = True
        else:
            raise _Bad(value)
    elif std[0] in "-Z" and len(std) > 1:
        value = _zone_offset(st, std, value)
    elif std == "MST":
        if value[:3] == "UTC":
            st.utc = True
            return value[3:], ""
        n = _tz_len(value)
        if not n:
            raise ValueError
        st.zone_name, value = value[:n], value[n:]
    elif std[1] == "0":
        nd = len(std)
        if len(value) < nd:
            raise ValueError
        st.nsec, rng = _consumed(_nanos, (value, nd), value[nd:])
        value = value[nd:]
    else:  # .999
        if len(value) < 2 or value[0] not in ".," or not _digit(value, 1):
            return value, ""
        i = 0
        while i < 9 and _digit(value, i + 1):
            i += 1
        st.nsec, rng = _nanos(value, 1 + i)
        value = value[1 + i:]
    return value, rng


def _zone_offset(st: _State, std: str, value: str) -> str:
    if std in ("Z0700", "Z07", "Z07:00") and value[:1] == "Z":
        st.utc = True
        return value[1:]
    body = std.lstrip("Z-")
    if body in ("07:00", "07:00:00"):
        need = 6 if body == "07:00" else 9
        if len(value) < need or value[3] != ":" or (need == 9 and value[6] != ":"):
            raise ValueError
        sign, hh, mm = value[0], value[1:3], value[4:6]
        ss = value[7:9] if need == 9 else "00"
    else:
        need = {"07": 3, "0700": 5, "070000": 7}[body]
        if len(value) < need:
            raise ValueError
        sign, hh = value[0], value[1:3]
        mm = value[3:5] if need >= 5 else "00"
        ss = value[5:7] if need == 7 else "00"
    rest = value[need:]
    off = 0
    for part, mul in ((hh, 3600), (mm, 60), (ss, 1)):
        off += _consumed(_getnum, (part, True), rest)[0] * mul
    if sign not in "+-":
        raise _Bad(rest)
    st.offset = -off if sign == "-" else off
    return value[need:]


def _err(layout: str, value: str, lelem: str, velem: str) -> GoTimeError:
    return GoTimeError(f"parsing time {_quote(value)} as {_quote(layout)}: cannot parse "
                       f"{_quote(velem)} as {_quote(lelem)}")


def _msg(value: str, msg: str) -> GoTimeError:
    return GoTimeError(f"parsing time {_quote(value)}{msg}")


def parse_time(layout: str, value: str, loc: _dt.tzinfo) -> GoTime:
    """time.ParseInLocation(layout, value, loc) with loc also the "local" zone."""
    layout = layout.encode("utf-8", "surrogateescape").decode("latin-1")
    value = value.encode("utf-8", "surrogateescape").decode("latin-1")
    alayout, avalue = layout, value
    st = _State()
    while True:
        prefix, std, suffix = next_chunk(layout)
        value, ok = _skip(value, prefix)
        if not ok:
            raise _err(alayout, avalue, prefix, value)
        if std is None:
            if value:
                raise _msg(avalue, f": extra text: {_quote(value)}")
            break
        layout = suffix
        hold = value
        try:
            value, rng = _element(st, std, value, layout)
        except _Bad as e:
            raise _err(alayout, avalue, std, e.rest) from None
        except (ValueError, IndexError):
            raise _err(alayout, avalue, std, hold) from None
        if rng:
            raise _msg(avalue, f": {rng} out of range")
    hour = st.hour
    if st.pm and hour < 12:
        hour += 12
    elif st.am and hour == 12:
        hour = 0
    year, month, day = st.year, st.month, st.day
    leap = calendar.isleap(year)
    if st.yday >= 0:
        yday, m, d = st.yday, 0, 0
        if leap:
            if yday == 60:
                m, d = 2, 29
            elif yday > 60:
                yday -= 1
        if not 1 <= yday <= 365:
            raise _msg(avalue, ": day-of-year out of range")
        if m == 0:
            m = (yday - 1) // 31 + 1
            if _DAYS_BEFORE[m] < yday:
                m += 1
            d = yday - _DAYS_BEFORE[m - 1]
        if month >= 0 and month != m:
            raise _msg(avalue, ": day-of-year does not match month")
        if day >= 0 and day != d:
            raise _msg(avalue, ": day-of-year does not match day")
        month, day = m, d
    else:
        month = 1 if month < 0 else month
        day = 1 if day < 0 else day
    if day < 1 or day > calendar.monthrange(2000 if leap else 2001, month)[1]:
        raise _msg(avalue, ": day out of range")
    wall = (year, month, day, hour, st.minute, st.sec)
    if st.utc:
        return make_time(wall, st.nsec, _UTC)
    if st.offset is not None:
        t = make_time(wall, st.nsec, _dt.timezone(_dt.timedelta(seconds=st.offset)),
                      st.zone_name)
        local = t.in_zone(loc)
        if local.offset() == st.offset and (not st.zone_name
                                            or local.zone_name() == st.zone_name):
            return local
        return t
    if st.zone_name:
        t = make_time(wall, st.nsec, loc)
        if t.zone_name() == st.zone_name:
            return t
        off = 0
        if len(st.zone_name) > 3 and st.zone_name[:3] == "GMT":
            off = _atoi(st.zone_name[3:]) * 3600
        t = make_time(wall, st.nsec, _UTC)
        return t.in_zone(_dt.timezone(_dt.timedelta(seconds=off)), st.zone_name)
    return make_time(wall, st.nsec, loc)
