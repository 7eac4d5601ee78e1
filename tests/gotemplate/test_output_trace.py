"""Where each character of a rendered output was written from (errors in the output use it)."""

from __future__ import annotations

from pathlib import Path

from tidegate.gotemplate.funcs import krakend_funcs
from tidegate.gotemplate.template import TemplateSet
from tidegate.gotemplate.trace import Origin, OutputTrace

BASE = """{
  "name": "{{ .name }}",
  {{- /* a comment */ -}}
  "list": [{{ range $i, $x := .items }}{{ if $i }}, {{ end }}{{ template "item" $x }}{{ end }}],
  "extra": {{ include "extra.json" }}
}
"""
ITEM = '{{ define "item" }}{"v": {{ . }},\n  "w": "{{ . }}"}{{ end }}'


def rendered(tmp_path: Path) -> tuple[str, OutputTrace]:
    (tmp_path / "extra.json").write_text('{\n  "a": 1\n}')
    ts = TemplateSet(krakend_funcs(str(tmp_path)))
    ts.parse("krakend.tmpl", BASE)
    ts.parse("item.tmpl", ITEM)
    return ts.execute_traced("krakend.tmpl", {"name": "svc", "items": [7, 8]})


def origin_of(text: str, trace: OutputTrace, needle: str, nth: int = 0) -> Origin | None:
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    return trace.origin(offset)


def test_text_is_traced_to_the_same_character_of_its_template(tmp_path: Path) -> None:
    text, trace = rendered(tmp_path)
    assert origin_of(text, trace, '"name"') == Origin("krakend.tmpl", 2, 3)
    # after a trimmed comment: the text starts where the template's text starts
    assert origin_of(text, trace, '"list"') == Origin("krakend.tmpl", 4, 3)
    assert origin_of(text, trace, "}") == Origin("item.tmpl", 2, 17)  # the first item's end
    # the second item's second line, from the template file that defined it
    assert origin_of(text, trace, '"w"', nth=1) == Origin("item.tmpl", 2, 3)
    assert origin_of(text, trace, ", {") == Origin("krakend.tmpl", 4, 51)


def test_an_actions_output_is_traced_to_the_action(tmp_path: Path) -> None:
    text, trace = rendered(tmp_path)
    assert origin_of(text, trace, "svc") == Origin("krakend.tmpl", 2, 15, action="{{.name}}")
    assert origin_of(text, trace, "8,") == Origin("item.tmpl", 1, 29, action="{{.}}")


def test_an_included_partial_is_traced_into_the_partial(tmp_path: Path) -> None:
    text, trace = rendered(tmp_path)
    include = Origin("krakend.tmpl", 5, 15, action='{{include "extra.json"}}')
    assert origin_of(text, trace, '"a"') == Origin("extra.json", 2, 3, partial=True, via=include)


def test_the_end_of_the_output_is_its_last_character(tmp_path: Path) -> None:
    text, trace = rendered(tmp_path)
    assert trace.origin(len(text)) == trace.origin(len(text) - 1) == Origin("krakend.tmpl", 6, 2)


def test_rendering_nothing_has_no_origin() -> None:
    ts = TemplateSet(krakend_funcs(""))
    ts.parse("t", "{{ if false }}x{{ end }}")
    text, trace = ts.execute_traced("t", {})
    assert text == "" and trace.origin(0) is None
