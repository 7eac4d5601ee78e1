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


# --- integer durations are nanoseconds: below 1 ms is surely a mistake ----------------------

@pytest.mark.parametrize("lint", [False, True])
def test_an_integer_duration_below_a_millisecond_is_a_warning(tmp_path: Path,
                                                              lint: bool) -> None:
    data = one_backend("http://h")
    data["timeout"] = 3000
    data["endpoints"][0]["backend"][0]["timeout"] = 1500  # type: ignore[index]
    path = write(tmp_path, data)
    code, out, err = check(path, lint=lint)
    assert code == 0
    assert out == "Syntax OK!\n"
    assert err.splitlines() == [
        f'WARNING: {path}:12:17: endpoints[0].backend[0].timeout: 1500 is read as 1.5\u00b5s (an '
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
