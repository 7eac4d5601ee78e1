"""Behaviour of the Go template engine that users rely on (values, printf, errors, KrakenD)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidegate.config.flexible import render_flexible_config
from tidegate.errors import TemplateError
from tidegate.golang.json_values import decode
from tidegate.gotemplate.cli import main as cli_main
from tidegate.gotemplate.funcs import krakend_funcs
from tidegate.gotemplate.template import ExecError, ParseError, TemplateSet


def render(text: str, data: object = None, name: str = "krakend.tmpl") -> str:
    ts = TemplateSet(krakend_funcs(""))
    ts.parse(name, text)
    return ts.execute(name, {} if data is None else data)


def json_data(raw: str) -> object:
    return decode(raw.encode())


@pytest.mark.parametrize(("raw", "want"), [
    ("1000000", "1e+06"), ("100000", "100000"), ("12345678", "1.2345678e+07"),
    ("0.1", "0.1"), ("-0", "-0"), ("1e-05", "1e-05"), ("123.456", "123.456"),
])
def test_json_numbers_print_as_float64(raw: str, want: str) -> None:
    assert render("{{ . }}", json_data(raw)) == want


def test_to_json_escapes_as_the_gateway_does() -> None:
    """Sprig's toJson is Go 1.22+'s encoding/json, as the rendered responses: \\b and \\f, and
    a small float64 with a one-digit exponent."""
    data = json_data('{"s": "\\b\\f\\u0001<", "f": 0.0000001}')
    assert render("{{ toJson . }}", data) == '{"f":1e-7,"s":"\\b\\f\\u0001\\u003c"}'


def test_missing_and_null_values() -> None:
    data = json_data('{"n": null, "l": [1, null]}')
    assert render("[{{ .missing }}] [{{ .n }}] [{{ print .missing }}] {{ .l }}", data) == \
        "[<no value>] [<no value>] [<nil>] [1 <nil>]"


def test_printf_verbs_follow_go() -> None:
    data = json_data('{"port": 8080, "strs": ["a", "b"]}')
    assert render('{{ printf "%d|%v|%5.1f|%q|%x" .port .port 3.14159 .strs 255 }}', data) == \
        '%!d(float64=8080)|8080|  3.1|["a" "b"]|ff'
    assert render('{{ printf "%s %[3]s" "a" }}') == "a %!s(BADINDEX)"


def test_comparison_of_float_with_int_literal_is_an_error() -> None:
    with pytest.raises(ExecError) as err:
        render("{{ eq .port 8080 }}", json_data('{"port": 8080}'))
    assert err.value.message == (
        'template: krakend.tmpl:1:3: executing "krakend.tmpl" at <eq .port 8080>: '
        "error calling eq: incompatible types for comparison")
    assert render("{{ eq .port 8080.0 }}", json_data('{"port": 8080}')) == "true"


def test_parse_error_names_file_and_line() -> None:
    with pytest.raises(ParseError) as err:
        render("a\nb\n{{ if .x }}{{ frobnicate }}{{ end }}")
    assert err.value.message == 'template: krakend.tmpl:3: function "frobnicate" not defined'


def test_control_flow_and_variables() -> None:
    data = json_data('{"list": [1, 2, 3], "name": "gw"}')
    tmpl = ("{{ $n := 0 }}{{ range $i, $v := .list }}{{ if eq $i 1 }}{{ continue }}{{ end }}"
            "{{ $n = add $n $v }}{{ end }}{{ $n }} {{ with .name }}{{ . | upper }}{{ end }}")
    assert render(tmpl, data) == "4 GW"


def test_marshal_escapes_html_and_keeps_integers() -> None:
    data = json_data('{"k": "<&>", "n": 1000000, "m": {"b": 1, "a": [true, null]}}')
    assert render("{{ marshal . }}", data) == \
        '{"k":"\\u003c\\u0026\\u003e","m":{"a":[true,null],"b":1},"n":1000000}'
    assert render("{{ toRawJson .k }}", data) == '"<&>"'


def test_sprig_functions() -> None:
    assert render('{{ list 3 1 2 | sortAlpha | join "," }}') == "1,2,3"
    assert render('{{ "hello_world" | camelcase }} {{ "FirstName" | snakecase }}') == \
        "HelloWorld first_name"
    assert render('{{ trunc 3 "abcdef" }} {{ default "x" "" }} {{ add 1 2 }}') == "abc x 3"
    assert render('{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ keys $d | join "" }}') == "ab"
    assert render('{{ semverCompare "^1.2.0" "1.4.1" }}') == "true"
    assert render('{{ "plaintext" | encryptAES "k" | decryptAES "k" }}') == "plaintext"


def _tree(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "service.json").write_text('{"port": 8080, "hosts": ["http://a"]}')
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "be.tmpl").write_text('{"host": {{ marshal .hosts }}}')
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "extra.txt").write_text('"x": 1')
    return {"FC_ENABLE": "1", "FC_SETTINGS": str(tmp_path / "settings"),
            "FC_TEMPLATES": str(tmp_path / "templates"),
            "FC_PARTIALS": str(tmp_path / "partials")}


def test_render_flexible_config(tmp_path: Path) -> None:
    env = _tree(tmp_path)
    base = tmp_path / "krakend.tmpl"
    base.write_text('{"port": {{ .service.port }}, "b": {{ template "be.tmpl" .service }}, '
                    '{{ include "extra.txt" }}}')
    env["FC_OUT"] = str(tmp_path / "out.json")
    rendered = render_flexible_config(str(base), env)
    assert json.loads(rendered.text) == {"port": 8080, "b": {"host": ["http://a"]}, "x": 1}
    assert (tmp_path / "out.json").read_text() == rendered.text
    assert rendered.source_name == str(base)
    assert str(base) in rendered.files
    assert any(f.endswith("service.json") for f in rendered.files)
    assert any(f.endswith("extra.txt") for f in rendered.files)
    assert env["FC_SETTINGS"] in rendered.watch_dirs


def test_render_flexible_config_errors(tmp_path: Path) -> None:
    env = _tree(tmp_path)
    base = tmp_path / "krakend.tmpl"
    base.write_text('{\n  "port": {{ .service.port.x }}\n}')
    with pytest.raises(TemplateError) as err:
        render_flexible_config(str(base), env)
    assert err.value.message == ('template: krakend.tmpl:2:21: executing "krakend.tmpl" at '
                                 "<.service.port.x>: can't evaluate field x in type interface {}")
    assert (err.value.file, err.value.line, err.value.col) == (str(base), 2, 21)
    (tmp_path / "settings" / "bad.json").write_text('{"a": 1,}')
    with pytest.raises(TemplateError) as err:
        render_flexible_config(str(base), env)
    assert "bad.json: invalid character '}' looking for beginning of object key string" in \
        err.value.message


def test_cli_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.json").write_text('{"name": "gw"}')
    (tmp_path / "krakend.tmpl").write_text("hello {{ .name }}")
    assert cli_main(["--data", "data.json", "krakend.tmpl"]) == 0
    assert capsys.readouterr().out == "hello gw"
    (tmp_path / "krakend.tmpl").write_text("{{ fail \"boom\" }}")
    assert cli_main(["--data", "data.json", "krakend.tmpl"]) == 1
    assert capsys.readouterr().err.startswith("exec error: template: krakend.tmpl:1:3: ")
    assert cli_main(["missing.tmpl"]) == 1
    assert capsys.readouterr().err == \
        "io error: open missing.tmpl: no such file or directory\n"
