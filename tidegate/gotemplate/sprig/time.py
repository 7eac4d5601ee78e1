"""Sprig date functions (date.go) over `tidegate.golang.time`."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from tidegate.golang.time import (
    ZERO_TIME,
    GoTime,
    GoTimeError,
    format_duration,
    format_time,
    from_unix,
    in_zone,
    load_location,
    local_zone,
    now,
    parse_duration,
)
from tidegate.golang.time_parse import parse_time
from tidegate.golang.types import I64

from ..funcdef import ANY, STRING, TIME, GoError, GoFunc, fn

FUNCS: dict[str, GoFunc] = {}


def _as_time(date: Any) -> GoTime:
    if isinstance(date, GoTime):
        return date
    if type(date) is I64 or type(date) is int:
        return from_unix(int(date))
    return now()


def format_date(layout: str, date: Any, zone: str) -> str:
    t = _as_time(date)
    try:
        loc = load_location(zone)
    except GoTimeError:
        loc = _dt.UTC
    return format_time(in_zone(t, loc), layout)


fn(FUNCS, "date", (STRING, ANY), returns=STRING)(lambda f, d: format_date(f, d, "Local"))
fn(FUNCS, "dateInZone", (STRING, ANY, STRING), returns=STRING)(format_date)
fn(FUNCS, "date_in_zone", (STRING, ANY, STRING), returns=STRING)(format_date)
fn(FUNCS, "htmlDate", (ANY,), returns=STRING)(lambda d: format_date("2006-01-02", d, "Local"))
fn(FUNCS, "htmlDateInZone", (ANY, STRING), returns=STRING)(
    lambda d, z: format_date("2006-01-02", d, z))
fn(FUNCS, "now", (), returns=TIME)(now)


def _add(t: GoTime, ns: int) -> GoTime:
    return t.add_ns(ns)


def _date_modify(f: str, date: GoTime) -> GoTime:
    try:
        return _add(date, parse_duration(f))
    except GoTimeError:
        return date


def _must_date_modify(f: str, date: GoTime) -> GoTime:
    try:
        return _add(date, parse_duration(f))
    except GoTimeError as e:
        raise GoError(str(e)) from None


for _n in ("dateModify", "date_modify"):
    fn(FUNCS, _n, (STRING, TIME), returns=TIME)(_date_modify)
for _n in ("mustDateModify", "must_date_modify"):
    fn(FUNCS, _n, (STRING, TIME), returns=TIME)(_must_date_modify)


@fn(FUNCS, "toDate", (STRING, STRING), returns=TIME)
def to_date(layout: str, s: str) -> GoTime:
    try:
        return parse_time(layout, s, local_zone())
    except GoTimeError:
        return ZERO_TIME


@fn(FUNCS, "mustToDate", (STRING, STRING), returns=TIME)
def must_to_date(layout: str, s: str) -> GoTime:
    try:
        return parse_time(layout, s, local_zone())
    except GoTimeError as e:
        raise GoError(str(e)) from None


@fn(FUNCS, "duration", (ANY,), returns=STRING)
def duration(sec: Any) -> str:
    n = 0
    if type(sec) is str:
        try:
            n = int(sec, 10) if sec.lstrip("+-").isdigit() else 0
        except ValueError:
            n = 0
    elif type(sec) is I64:
        n = int(sec)
    return format_duration(_wrap(n * 1_000_000_000))


def _wrap(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


@fn(FUNCS, "durationRound", (ANY,), returns=STRING)
def duration_round(d: Any) -> str:
    ns = 0
    if type(d) is str:
        try:
            ns = parse_duration(d)
        except GoTimeError:
            ns = 0
    elif type(d) is I64:
        ns = int(d)
    elif isinstance(d, GoTime):
        ns = (now().unix() - d.unix()) * 1_000_000_000
    u = abs(ns)
    hour = 3_600_000_000_000
    for unit, suffix in ((hour * 24 * 365, "y"), (hour * 24 * 30, "mo"), (hour * 24, "d"),
                         (hour, "h"), (60_000_000_000, "m"), (1_000_000_000, "s")):
        if u > unit:
            return f"{u // unit}{suffix}"
    return "0s"


@fn(FUNCS, "ago", (ANY,), returns=STRING)
def ago(date: Any) -> str:
    t = _as_time(date)
    n = now()
    ns = (n.unix() - t.unix()) * 1_000_000_000 + (n.nsec - t.nsec)
    secs = (abs(ns) + 500_000_000) // 1_000_000_000
    return format_duration((secs if ns >= 0 else -secs) * 1_000_000_000)


fn(FUNCS, "unixEpoch", (TIME,), returns=STRING)(lambda t: str(t.unix()))
