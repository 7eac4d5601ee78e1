"""Date regressions against the Go 1.19 + Sprig 3.2.3 renderer (expected = its output, TZ=UTC)."""

from __future__ import annotations

import pytest

from tidegate.gotemplate.funcs import krakend_funcs
from tidegate.gotemplate.template import ExecError, TemplateSet


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")


def render(text: str) -> str:
    ts = TemplateSet(krakend_funcs(""))
    ts.parse("t.tmpl", text)
    return ts.execute("t.tmpl", {})


def parse_error(layout: str, value: str) -> str:
    tpl = "{{ mustToDate %s %s }}" % (layout, value)  # noqa: UP031
    with pytest.raises(ExecError) as err:
        render(tpl)
    msg = err.value.message
    return msg[msg.index("error calling mustToDate: ") + 26:]


@pytest.mark.parametrize(("layout", "value", "want"), [
    ('"2006-01-02"', '"x"', 'parsing time "x" as "2006-01-02": cannot parse "x" as "2006"'),
    ('"2006-01-02"', '""', 'parsing time "" as "2006-01-02": cannot parse "" as "2006"'),
    ('"2006-01-02"', '"2021-01-02 "', 'parsing time "2021-01-02 ": extra text: " "'),
    ('""', '"a"', 'parsing time "a": extra text: "a"'),
    ('"2006-01-02"', '"2021-1-02"',
     'parsing time "2021-1-02" as "2006-01-02": cannot parse "1-02" as "01"'),
    ('"2006-01-02"', '"2021-13-02"', 'parsing time "2021-13-02": month out of range'),
    ('"x2006"', '"y"', 'parsing time "y" as "x2006": cannot parse "y" as "x"'),
    ('"Jan 2 2006"', '"Fob 3 2020"',
     'parsing time "Fob 3 2020" as "Jan 2 2006": cannot parse "Fob 3 2020" as "Jan"'),
    ('"Monday"', '"Fooday"',
     'parsing time "Fooday" as "Monday": cannot parse "Fooday" as "Monday"'),
    ('"3:04PM"', '"3:04pm"', 'parsing time "3:04pm" as "3:04PM": cannot parse "" as "PM"'),
    ('"06-01"', '"x1-01"', 'parsing time "x1-01" as "06-01": cannot parse "x1-01" as "06"'),
    ('"15:04:05.000"', '"10:30:00.12"',
     'parsing time "10:30:00.12" as "15:04:05.000": cannot parse ".12" as ".000"'),
    ('"15:04:05.999"', '"10:30:00.123456789123"',
     'parsing time "10:30:00.123456789123": extra text: "123"'),
    ('"2006-01-02 -0700"', '"2020-01-01 Z"',
     'parsing time "2020-01-01 Z" as "2006-01-02 -0700": cannot parse "Z" as "-0700"'),
    ('"2006 MST"', '"2020 xyz"',
     'parsing time "2020 xyz" as "2006 MST": cannot parse "xyz" as "MST"'),
    ('"002 2006"', '"366 2021"', 'parsing time "366 2021": day-of-year out of range'),
    ('"2006-01-02"', '"é"',
     'parsing time "\\xc3\\xa9" as "2006-01-02": cannot parse "\\xc3\\xa9" as "2006"'),
    ('"\\"2006"', '"\\"x"', 'parsing time "\\"x" as "\\"2006": cannot parse "x" as "2006"'),
])
def test_parse_error_names_the_element(layout: str, value: str, want: str) -> None:
    assert parse_error(layout, value) == want


@pytest.mark.parametrize(("tpl", "want"), [
    ('{{ mustToDate "Jan 2 2006" "feb 3 2020" }}', "2020-02-03 00:00:00 +0000 UTC"),
    ('{{ mustToDate "2006  01" "2020 01" }}|{{ mustToDate "2006 01" "2020  01" }}',
     "2020-01-01 00:00:00 +0000 UTC|2020-01-01 00:00:00 +0000 UTC"),
    ('{{ mustToDate "002 2006" "366 2020" }}', "2020-12-31 00:00:00 +0000 UTC"),
    ('{{ mustToDate "06" "-1" }}', "1999-01-01 00:00:00 +0000 UTC"),
    ('{{ mustToDate "2006 MST" "2020 GMT+3" }}', "2020-01-01 03:00:00 +0300 GMT+3"),
    ('{{ mustToDate "2006 MST" "2020 GMT-13" }}', "2019-12-31 11:00:00 -1300 GMT-13"),
    ('{{ mustToDate "2006 -0700 MST" "2020 +0000 GMT" }}', "2020-01-01 00:00:00 +0000 GMT"),
])
def test_parse_elements(tpl: str, want: str) -> None:
    assert render(tpl) == want


@pytest.mark.parametrize(("tpl", "want"), [
    ('{{ toDate "15:04" "10:30" }}', "0000-01-01 10:30:00 +0000 UTC"),
    ('{{ mustToDate "" "" }}', "0000-01-01 00:00:00 +0000 UTC"),
    ('{{ $t := mustToDate "15:04" "10:30" }}{{ $t.Year }}|{{ $t.Unix }}', "0|-62167181400"),
    ('{{ mustToDate "2006-01-02 MST" "0000-01-01 CET" }}', "0000-01-01 00:00:00 +0000 CET"),
    ('{{ $t := mustToDate "2006-01-02" "0000-02-29" }}{{ $t.Weekday }}|{{ $t.YearDay }}',
     "Tuesday|60"),
    ('{{ mustToDate "2006-01-02" "0000-01-01" | dateModify "-1h" }}',
     "-0001-12-31 23:00:00 +0000 UTC"),
    ('{{ mustToDate "2006-01-02" "0000-01-01" | dateModify "-8761h" | date "06 2006" }}',
     "02 -0002"),
])
def test_year_zero(tpl: str, want: str) -> None:
    assert render(tpl) == want


_T = ('{{ $t := toDate "2006-01-02T15:04:05.999999999Z07:00" '
      '"2020-02-29T23:59:59.123456789-05:30" }}')


def _at(action: str, msg: str) -> str:
    return f'template: t.tmpl:1:99: executing "t.tmpl" at <{action}>: {msg}'


@pytest.mark.parametrize(("tpl", "want"), [
    ("{{ $t.Location }}|{{ $t.UTC.Location }}|{{ $t.Local.Location }}", "|UTC|UTC"),
    ("{{ $t.Round 3600000000000 }}|{{ $t.Truncate 3600000000000 }}",
     "2020-02-29 23:30:00 -0530 -0530|2020-02-29 23:30:00 -0530 -0530"),
    ("{{ $t.Round 1000 }}|{{ $t.Truncate 1000000 }}|{{ $t.Round 86400000000000 }}",
     "2020-02-29 23:59:59.123457 -0530 -0530|2020-02-29 23:59:59.123 -0530 -0530|"
     "2020-02-29 18:30:00 -0530 -0530"),
    ('{{ $t.Format "Jan 2" }}|{{ $t.Format "2006-01-02T15:04:05Z07:00" }}',
     "Feb 29|2020-02-29T23:59:59-05:30"),
    ("{{ $t.Add 3600000000000 }}|{{ $t.Add -1 }}",
     "2020-03-01 00:59:59.123456789 -0530 -0530|2020-02-29 23:59:59.123456788 -0530 -0530"),
    ("{{ $t.AddDate 1 2 3 }}|{{ $t.AddDate 0 -2 0 }}|{{ $t.AddDate -2021 0 0 }}",
     "2021-05-02 23:59:59.123456789 -0530 -0530|2019-12-29 23:59:59.123456789 -0530 -0530|"
     "-0001-03-01 23:59:59.123456789 -0530 -0530"),
    ("{{ $t.Unix }}|{{ $t.UnixNano }}|{{ $t.UnixMilli }}|{{ $t.UnixMicro }}",
     "1583040599|1583040599123456789|1583040599123|1583040599123456"),
    ("{{ $t.Year }}|{{ $t.Month }}|{{ $t.Day }}|{{ $t.Hour }}|{{ $t.YearDay }}|{{ $t.Weekday }}",
     "2020|February|29|23|60|Saturday"),
    ('{{ $u := toDate "2006-01-02" "2020-02-29" }}{{ $t.Before $u }}|{{ $t.After $u }}|'
     "{{ $t.Equal $t.UTC }}|{{ $u.Location }}", "false|true|true|UTC"),
    ('{{ printf "%v|%T" $t.Location $t.Location }}', "|*time.Location"),
])
def test_time_methods(tpl: str, want: str) -> None:
    assert render(_T + tpl) == want


@pytest.mark.parametrize(("tpl", "want"), [
    ("{{ $t.Zone }}", _at("$t.Zone", 'can\'t call method/function "Zone" with 2 results')),
    ("{{ $t.ISOWeek }}",
     _at("$t.ISOWeek", 'can\'t call method/function "ISOWeek" with 2 results')),
    ("{{ $t.Clock }}", _at("$t.Clock", 'can\'t call method/function "Clock" with 3 results')),
    ("{{ $t.Zone 1 }}", _at("$t.Zone", "wrong number of args for Zone: want 0 got 1")),
    ("{{ $t.Format }}", _at("$t.Format", "wrong number of args for Format: want 1 got 0")),
    ("{{ $t.In nil }}",
     _at("$t.In", "error calling In: time: missing Location in call to Time.In")),
    ("{{ $t.Add (mul 2 3) }}", _at("3", "wrong type for value; expected time.Duration; "
                                   "got int64").replace(":99:", ":111:")),
])
def test_time_method_errors(tpl: str, want: str) -> None:
    with pytest.raises(ExecError) as err:
        render(_T + tpl)
    assert err.value.message == want


# urlParse follows net/url: leading spaces stay in the path (no scheme, no authority)
@pytest.mark.parametrize(("tpl", "want"), [
    ('{{ urlParse " /a b" | toJson }}',
     '{"fragment":"","host":"","hostname":"","opaque":"","path":" /a b","query":"",'
     '"scheme":"","userinfo":""}'),
    ('{{ urlParse " //host/p?q#f" | toJson }}',
     '{"fragment":"f","host":"","hostname":"","opaque":"","path":" //host/p","query":"q",'
     '"scheme":"","userinfo":""}'),
    ('{{ (urlParse " ").path | len }}|{{ (urlParse "http://x/#a%20b").fragment }}', "1|a b"),
    ('{{ (urlParse "http://x/a%e9").path | toJson }}', '"/a\\ufffd"'),
])
def test_url_parse_like_net_url(tpl: str, want: str) -> None:
    assert render(tpl) == want


@pytest.mark.parametrize(("arg", "msg"), [
    ('"  http://x/y"', 'parse "  http://x/y": first path segment in URL cannot contain colon'),
    ('"\\t/a"', 'parse "\\t/a": net/url: invalid control character in URL'),
    ('" a%20b%zz"', 'parse " a%20b%zz": invalid URL escape "%zz"'),
])
def test_url_parse_errors(arg: str, msg: str) -> None:
    with pytest.raises(ExecError) as err:
        render("{{ urlParse %s }}" % arg)  # noqa: UP031
    assert err.value.message.endswith(f"error calling urlParse: unable to parse url: {msg}")
