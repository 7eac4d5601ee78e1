"""Regressions found by differential testing against the Go 1.19 + Sprig 3.2.3 renderer.

Every expected value below is the reference renderer's output for the same template/data.
"""

from __future__ import annotations

import pytest

from tidegate.golang.json_values import JSONError, decode
from tidegate.gotemplate.funcs import krakend_funcs
from tidegate.gotemplate.template import ExecError, TemplateSet


def render(text: str, data: object = None, name: str = "krakend.tmpl") -> str:
    ts = TemplateSet(krakend_funcs(""))
    ts.parse(name, text)
    return ts.execute(name, {} if data is None else data)


def exec_error(text: str, data: object = None) -> str:
    with pytest.raises(ExecError) as err:
        render(text, data)
    return err.value.message


def at(action: str, msg: str, col: int = 3) -> str:
    return f'template: krakend.tmpl:1:{col}: executing "krakend.tmpl" at <{action}>: {msg}'


@pytest.mark.parametrize(("tpl", "want"), [
    # %q/%c of an invalid rune (negative int) print U+FFFD, %+q escapes it
    ('{{ printf "%q|%+q|%#q|%c|%5q" -7 -7 -7 -7 -1 }}',
     "'\ufffd'|'\\ufffd'|'\ufffd'|\ufffd|  '\ufffd'"),
    # %U honours the precision as a minimum digit count, never zero-pads the width
    ('{{ printf "%+12.10U|%#.6U|%U|%.2U|%#012U" 12 65 -1 5 65 }}',
     "U+000000000C|U+000041 'A'|U+FFFFFFFFFFFFFFFF|U+0005|  U+0041 'A'"),
    # %b of denormal floats keeps the raw mantissa with exponent -1074
    ('{{ printf "%b|%b|%b|%b" 5e-324 1e-310 -2.2250738585072014e-308 1.0 }}',
     "1p-1074|20240225330731p-1074|-4503599627370496p-1074|4503599627370496p-52"),
])
def test_printf_rune_and_float_verbs(tpl: str, want: str) -> None:
    assert render(tpl) == want


@pytest.mark.parametrize(("tpl", "want"), [
    # shopspring/decimal has no negative zero
    ('{{ mulf -1.5 0 }}|{{ divf 0 -3 }}|{{ addf -0.0 0 }}', "0|0|0"),
    # math.Floor/Ceil keep the sign of zero
    ("{{ round -0.0 2 }}|{{ round -0.001 2 }}|{{ round 0.3 0 }}|{{ round -0.3 0 }}",
     "-0|-0.01|0|-1"),
])
def test_float_sign_of_zero(tpl: str, want: str) -> None:
    assert render(tpl) == want


@pytest.mark.parametrize(("tpl", "want"), [
    ('{{ divf 1 "" }}', at('divf 1 ""', "error calling divf: decimal division by 0")),
    ('{{ chunk 2 "x" }}', at('chunk 2 "x"', "error calling chunk: Cannot chunk type string")),
    ('{{ mustChunk 2 1.5 }}',
     at("mustChunk 2 1.5", "error calling mustChunk: Cannot chunk type float64")),
    ("{{ deepCopy nil }}", at("deepCopy nil", "error calling deepCopy: "
                               "reflect: call of reflect.Value.Type on zero Value")),
    ('{{ eq (list 3 1 2) (dict "a" 1 "b" "x") }}',
     at('eq (list 3 1 2) (dict "a" 1 "b" "x")', "error calling eq: non-comparable types "
        "[%!s(int=3) %!s(int=1) %!s(int=2)]: []interface {}, map[string]interface {}: "
        "map[a:1 b:x]")),
    ('{{ mustToDate "3:04PM" "13:04PM" }}',
     at('mustToDate "3:04PM" "13:04PM"',
        'error calling mustToDate: parsing time "13:04PM": hour out of range')),
])
def test_sprig_error_texts(tpl: str, want: str) -> None:
    assert exec_error(tpl) == want


def test_eq_same_kind_containers_still_non_comparable_type() -> None:
    assert exec_error("{{ eq (dict) (dict) }}") == at(
        "eq (dict) (dict)", "error calling eq: non-comparable type map[]: "
        "map[string]interface {}")


def test_to_date_accepts_fraction_after_seconds() -> None:
    assert render('{{ toDate "2006-01-02T15:04:05Z07:00" "2021-01-01T10:00:00.5Z" }}') == \
        "2021-01-01 10:00:00.5 +0000 UTC"


@pytest.mark.parametrize(("raw", "want"), [
    # Go's scanner feeds a ' ' at EOF, so truncated literals fail on that space
    ("nul", "invalid character ' ' in literal null (expecting 'l')"),
    ("tru", "invalid character ' ' in literal true (expecting 'e')"),
    ("-", "invalid character ' ' in numeric literal"),
    ("1.", "invalid character ' ' after decimal point in numeric literal"),
    ("1e+", "invalid character ' ' in exponent of numeric literal"),
    ('"\\', "invalid character ' ' in string escape code"),
    ('"\\u12', "invalid character ' ' in \\u hexadecimal character escape"),
    ("[1,", "unexpected end of JSON input"),
    # the offending character is the first byte, not the rune
    ("\u00f1", "invalid character '\u00c3' looking for beginning of value"),
    ('{"a":1}\u00f1', "invalid character '\u00c3' after top-level value"),
    ("\ufeff{}", "invalid character '\u00ef' looking for beginning of value"),
])
def test_json_syntax_errors(raw: str, want: str) -> None:
    with pytest.raises(JSONError) as err:
        decode(raw.encode())
    assert str(err.value) == want


@pytest.mark.parametrize(("tpl", "want"), [
    ('{{ template "krakend.tmpl" }}',
     'template: krakend.tmpl:1:12: executing "krakend.tmpl" at <{{template "krakend.tmpl"}}>: '
     "exceeded maximum template depth (100000)"),
    ('{{define "a"}}x{{template "b" .}}{{end}}{{define "b"}}{{template "a" .}}{{end}}'
     '{{template "a" 1}}',
     'template: krakend.tmpl:1:65: executing "b" at <{{template "a" .}}>: '
     "exceeded maximum template depth (100000)"),
    ('{{define "a"}}x{{template "b" .}}{{end}}{{define "b"}}{{template "c" .}}{{end}}'
     '{{define "c"}}{{if .}}{{template "a" .}}{{end}}{{end}}{{template "a" 1}}',
     'template: krakend.tmpl:1:26: executing "a" at <{{template "b" .}}>: '
     "exceeded maximum template depth (100000)"),
])
def test_infinite_template_recursion(tpl: str, want: str) -> None:
    with pytest.raises(ExecError) as err:
        render(tpl)
    assert err.value.message == want
