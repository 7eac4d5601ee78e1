"""What fuzzing `tidegate check -c` found, each class held by its own case.

Every configuration gets a verdict with a position: hosts Go cannot parse, templates nested
past what the engine can carry, settings files Go's decoder refuses, strings no encoder can
carry; and an integer duration that is surely a mistake gets a warning.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tidegate.checker import check_once

P = "ERROR parsing the configuration file: "


def check(path: Path, *, env: dict[str, str] | None = None, lint: bool = False
          ) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_once(str(path), env=env or {}, out=out, err=err, lint=lint)
    return code, out.getvalue(), err.getvalue()


def one_backend(host: object, root_host: object = None) -> dict[str, object]:
    backend: dict[str, object] = {"url_pattern": "/x"}
    if host is not None:
        backend["host"] = [host]
    data: dict[str, object] = {"version": 3, "endpoints": [
        {"endpoint": "/a", "backend": [backend]}]}
    if root_host is not None:
        data["host"] = [root_host]
    return data


def write(tmp_path: Path, data: object, name: str = "krakend.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1))
    return path


# --- hosts: what Go's url.Parse refuses fails every request; urlsplit used to trim it -------

@pytest.mark.parametrize(("host", "message"), [
    ("http://a b:80", 'parse "http://a b:80": invalid character " " in host name'),
    ("http://ab\r\n:80", 'parse "http://ab\\r\\n:80": net/url: invalid control character in URL'),
    ("http://a\x00b", 'parse "http://a\\x00b": net/url: invalid control character in URL'),
    ("http://ab\t", 'parse "http://ab\\t": net/url: invalid control character in URL'),
    (" http://ab", 'parse " http://ab": first path segment in URL cannot contain colon'),
    ("http://ab:8o", 'parse "http://ab:8o": invalid port ":8o" after host'),
    ("http://[::1", "parse \"http://[::1\": missing ']' in host"),
    ("http://a{b}", 'parse "http://a{b}": invalid character "{" in host name'),
    ("http://%zz", 'parse "http://%zz": invalid URL escape "%zz"'),
    ("http://ab:99999", "dial tcp: address ab:99999: invalid port"),
    ("ab:80:80", "dial tcp: address ab:80:80: too many colons in address"),
])
def test_a_host_go_cannot_parse_is_a_located_error(tmp_path: Path, host: str,
                                                   message: str) -> None:
    path = write(tmp_path, one_backend(host))
    code, out, err = check(path)
    assert code == 1
    assert err == f"{P}{path}:10:7: endpoints[0].backend[0].host[0]: {message}\n"
    assert out == ""


def test_a_root_host_is_checked_once_where_it_is_written(tmp_path: Path) -> None:
    path = write(tmp_path, one_backend(None, root_host="http://a b"))
    code, _, err = check(path)
    assert (code, err) == (1, f'{P}{path}:14:3: host[0]: parse "http://a b": '
                              'invalid character " " in host name\n')


@pytest.mark.parametrize("host", ["http://[::1]:8080", "localhost:8080", "http://user:pw@h:1",
                                  "http://\u00e9.example", "https://h:443/base", "h"])
def test_hosts_go_parses_are_accepted(tmp_path: Path, host: str) -> None:
    code, out, err = check(write(tmp_path, one_backend(host)))
    assert (code, out, err) == (0, "Syntax OK!\n", "")


@pytest.mark.parametrize(("pattern", "message"), [
    ("/a\r\nb", 'parse "http://h/a\\r\\nb": net/url: invalid control character in URL'),
    ("/a\x00", 'parse "http://h/a\\x00": net/url: invalid control character in URL'),
    ("/%zz", 'parse "http://h/%zz": invalid URL escape "%zz"'),
    ("/{x}%", 'parse "http://h/{x}%": invalid URL escape "%"'),
])
def test_a_url_pattern_go_cannot_parse_is_a_located_error(tmp_path: Path, pattern: str,
                                                          message: str) -> None:
    data = one_backend("http://h")
    data["endpoints"][0]["endpoint"] = "/a/{x}"  # type: ignore[index]
    data["endpoints"][0]["backend"][0]["url_pattern"] = pattern  # type: ignore[index]
    path = write(tmp_path, data)
    code, _, err = check(path)
    assert (code, err) == (1, f"{P}{path}:8:21: endpoints[0].backend[0].url_pattern: "
                              f"{message}\n")


@pytest.mark.parametrize("pattern", ["/a b", "/q?x=%zz", "/%2F{x}", "/a?ids=1%2C2"])
def test_url_patterns_go_parses_are_accepted(tmp_path: Path, pattern: str) -> None:
    data = one_backend("http://h")
    data["endpoints"][0]["endpoint"] = "/a/{x}"  # type: ignore[index]
    data["endpoints"][0]["backend"][0]["url_pattern"] = pattern  # type: ignore[index]
    assert check(write(tmp_path, data)) == (0, "Syntax OK!\n", "")


# --- integer durations are nanoseconds: below 1 ms is surely a mistake ----------------------

@pytest.mark.parametrize("lint", [False, True])
def test_an_integer_duration_below_a_millisecond_is_a_warning(tmp_path: Path,
                                                              lint: bool) -> None:
    data = one_backend("http://h")
    data["timeout"] = 3000
    data["endpoints"][0]["timeout"] = 1500  # type: ignore[index]
    path = write(tmp_path, data)
    code, out, err = check(path, lint=lint)
    assert code == 0
    assert out == "Syntax OK!\n"
    assert err.splitlines() == [
        f'WARNING: {path}:14:15: endpoints[0].timeout: 1500 is read as 1.5\u00b5s (an '
        'integer duration is in nanoseconds): did you mean "1500ms" or "1.5s"?',
        f'WARNING: {path}:17:13: timeout: 3000 is read as 3\u00b5s (an integer duration is in '
        'nanoseconds): did you mean "3000ms" or "3s"?',
    ]


def test_an_integer_duration_of_a_millisecond_or_more_says_nothing(tmp_path: Path) -> None:
    data = one_backend("http://h")
    data["timeout"] = 1_000_000
    code, _, err = check(write(tmp_path, data), lint=True)
    assert (code, err) == (0, "")


# --- strings: a lone surrogate is read as U+FFFD, as Go reads it -----------------------------

def test_a_lone_surrogate_escape_is_read_as_a_replacement_character(tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    path.write_text('{"version": 3, "name": "a\\ud800b", "endpoints": [{"endpoint": "/a",'
                    ' "backend": [{"host": ["http://h"], "url_pattern": "/\\udcff"}]}]}')
    out, err = io.StringIO(), io.StringIO()
    code = check_once(str(path), env={}, out=out, err=err, debug=1)
    assert (code, err.getvalue()) == (0, "")
    assert "Name: a\ufffdb" in out.getvalue()


# --- flexible configuration --------------------------------------------------------------

def flexible(tmp_path: Path, template: str, settings: bytes = b'{"a": 1}') -> tuple[Path, dict]:
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "s.json").write_bytes(settings)
    path = tmp_path / "krakend.json"
    path.write_text(template)
    return path, {"FC_ENABLE": "1", "FC_SETTINGS": str(tmp_path / "settings")}


CONFIG = ('{"version": 3, "name": "%s",\n "endpoints": [{"endpoint": "/a", '
          '"backend": [{"host": ["http://h"], "url_pattern": "/"}]}]}')


@pytest.mark.parametrize("depth", [101, 5_000, 10_001])
def test_parentheses_nested_too_deep_are_a_template_error(tmp_path: Path, depth: int) -> None:
    snippet = "{{ " + "(" * depth + "1" + ")" * depth + " }}"
    path, env = flexible(tmp_path, CONFIG % "n" + "\n" + snippet)
    code, _, err = check(path, env=env)
    assert (code, err) == (1, f"{P}{path}:3: template: krakend.json:3: max expression depth "
                              "exceeded (tidegate nests at most 100 levels of parentheses, if, "
                              "with, range and block)\n")


@pytest.mark.parametrize("nested", [
    "{{ if true }}" * 5_000 + "{{ end }}" * 5_000,
    "{{ range $i := list 1 }}" * 5_000 + "{{ end }}" * 5_000,
    "{{ if false }}" + "{{ else if false }}" * 5_000 + "{{ end }}",
    '{{ block "b" . }}' * 200 + "{{ end }}" * 200,
])
def test_actions_nested_too_deep_are_a_template_error(tmp_path: Path, nested: str) -> None:
    path, env = flexible(tmp_path, "\n" + CONFIG % nested)
    code, _, err = check(path, env=env)
    assert (code, err) == (1, f"{P}{path}:2: template: krakend.json:2: max control depth "
                              "exceeded (tidegate nests at most 100 levels of parentheses, if, "
                              "with, range and block)\n")


def test_a_hundred_levels_of_nesting_render(tmp_path: Path) -> None:
    nested = ("{{ with 1 }}" * 50 + "{{ " + "(" * 49 + "print 1" + ")" * 49 + " }}"
              + "{{ end }}" * 50)
    path, env = flexible(tmp_path, CONFIG % nested)
    assert check(path, env=env) == (0, "Syntax OK!\n", "")


def test_template_calls_deeper_than_the_stack_are_located_at_the_deepest_call(
        tmp_path: Path) -> None:
    chain = "".join(f'{{{{define "d{i}"}}}}{{{{template "d{i + 1}"}}}}{{{{end}}}}'
                    for i in range(2_000))
    path, env = flexible(tmp_path, chain + '{{define "d2000"}}x{{end}}\n'
                         + CONFIG % '{{template "d0"}}')
    code, _, err = check(path, env=env)
    assert code == 1
    assert err.startswith(f"{P}{path}:1:")
    assert "exceeded maximum template depth: tidegate's stack ends after" in err


def test_a_byte_that_is_not_utf8_in_a_rendered_string_is_read_as_u_fffd(
        tmp_path: Path) -> None:
    path, env = flexible(tmp_path, CONFIG % 'a{{ "\\xff" }}b')
    out, err = io.StringIO(), io.StringIO()
    code = check_once(str(path), env=env, out=out, err=err, debug=1)
    assert (code, err.getvalue()) == (0, "")
    assert "Name: a\ufffdb" in out.getvalue()


def test_a_settings_file_with_a_byte_order_mark_is_located(tmp_path: Path) -> None:
    path, env = flexible(tmp_path, CONFIG % "n", settings=b'\xef\xbb\xbf{"a": 1}')
    code, _, err = check(path, env=env)
    assert (code, err) == (1, f"{P}{tmp_path}/settings/s.json:1:1: loading flexible-config "
                              "settings: invalid character '\u00ef' looking for beginning of "
                              "value (a byte order mark)\n")


def test_a_settings_file_nested_past_the_stack_is_located(tmp_path: Path) -> None:
    deep = b'{"a":\n' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    path, env = flexible(tmp_path, CONFIG % "n", settings=deep)
    code, _, err = check(path, env=env)
    assert code == 1
    assert err.startswith(f"{P}{tmp_path}/settings/s.json:2:200: loading flexible-config "
                          "settings: invalid JSON: nested deeper than 200 levels")


def test_a_settings_number_beyond_float64_under_a_repeated_key_is_located(
        tmp_path: Path) -> None:
    path, env = flexible(tmp_path, CONFIG % "n", settings=b'{"a": 1,\n "b": -1e400, "b": 2}')
    code, _, err = check(path, env=env)
    assert (code, err) == (1, f"{P}{tmp_path}/settings/s.json:2:7: loading flexible-config "
                              "settings: json: cannot unmarshal number -1e400 into Go value of "
                              "type float64\n")


# --- components ------------------------------------------------------------------------------

def test_a_static_strategy_that_is_not_a_string_is_located(tmp_path: Path) -> None:
    data = one_backend("http://h")
    data["endpoints"][0]["extra_config"] = {  # type: ignore[index]
        "proxy": {"static": {"strategy": ["always"], "data": {}}}}
    path = write(tmp_path, data)
    code, _, err = check(path)
    assert code == 1
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if '"strategy"' in text)
    assert err.startswith(f"{P}{path}:{line}:")
    assert "endpoints[0].extra_config.proxy.static.strategy: unknown static strategy " \
           "['always']" in err


# --- KRAKEND_* overrides -----------------------------------------------------------------

def test_an_integer_override_beyond_64_bits_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, one_backend("http://h"))
    out, err = io.StringIO(), io.StringIO()
    code = check_once(str(path), env={"KRAKEND_MAX_HEADER_BYTES": "9" * 30}, out=out, err=err)
    assert (code, err.getvalue()) == (1, f"{P}{path}:1:1: max_header_bytes: environment "
                                         f"variable KRAKEND_MAX_HEADER_BYTES: integer out of "
                                         f"range: {'9' * 30}\n")
