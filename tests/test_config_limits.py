"""Values no later stage can carry are refused where the file is read, with a position.

Integers beyond 64 bits and nesting past `MAX_DEPTH` used to escape as orjson or recursion
errors from deep inside a build; a FIFO or a device in place of a file used to block the read
for ever; an endpoint named like a built-in route used to fail in the router. `check -c` says
where each one is and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tidegate.config import sources
from tidegate.errors import ConfigError, ConfigIOError, ConfigSyntaxError
from tidegate.reload.builder import build_candidate


def load(tmp_path: Path, name: str, text: str) -> sources.Document:
    path = tmp_path / name
    path.write_text(text)
    return sources.load_file(str(path))


@pytest.mark.parametrize(("literal", "shown"), [
    (str(2**64), "18446744073709551616"),
    (str(-(2**63) - 1), "-9223372036854775809"),
    ("9" * 5000, "999999999999…999999 (5000 digits)"),
])
def test_json_integer_beyond_64_bits_is_located(tmp_path: Path, literal: str,
                                                 shown: str) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        load(tmp_path, "k.json", '{\n  "version": 3,\n  "x": [1, ' + literal + "]\n}")
    assert str(info.value) == f"{tmp_path / 'k.json'}:3:12: x[1]: integer out of range: {shown}"


def test_integers_at_the_edges_of_64_bits_are_accepted(tmp_path: Path) -> None:
    doc = load(tmp_path, "k.json", f'{{"a": {2**64 - 1}, "b": {-(2**63)}}}')
    assert doc.data == {"a": 2**64 - 1, "b": -(2**63)}


def test_toml_integer_beyond_64_bits_is_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        load(tmp_path, "k.toml", 'version = 3\nport = 123456789012345678901234567890\n')
    assert str(info.value) == (f"{tmp_path / 'k.toml'}:2:8: port: integer out of range: "
                               "123456789012345678901234567890")


def test_json_number_that_overflows_to_infinity_is_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        load(tmp_path, "k.json", '{"version": 3, "x": 1e400}')
    assert str(info.value) == f"{tmp_path / 'k.json'}:1:21: x: number out of range"


@pytest.mark.parametrize("levels", [199, 300, 1_000, 10_000])
def test_json_nested_too_deep_is_a_located_syntax_error(tmp_path: Path, levels: int) -> None:
    text = '{"x":\n ' + "[" * levels + "]" * levels + "}"
    if levels < sources.MAX_DEPTH:
        assert load(tmp_path, "k.json", text).data["x"]
        return
    with pytest.raises(ConfigSyntaxError) as info:
        load(tmp_path, "k.json", text)
    # The root object is level 1: the 200th bracket opens level 201.
    assert f"{tmp_path / 'k.json'}:2:201: " in str(info.value)
    assert "nested deeper than 200 levels" in str(info.value)


def test_yaml_nested_too_deep_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        load(tmp_path, "k.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested deeper than 200 levels" in str(info.value)


@pytest.mark.parametrize(("make", "kind"), [
    (os.mkfifo, "a FIFO"),
    (lambda p: os.symlink("/dev/zero", p), "a character device"),
])
def test_a_config_that_is_not_a_regular_file_is_refused(tmp_path: Path, make, kind) -> None:
    path = tmp_path / "krakend.json"
    make(path)
    with pytest.raises(ConfigIOError) as info:
        sources.load_file(str(path))
    assert str(info.value) == f"{path}: cannot read the configuration: not a regular file ({kind})"


def test_a_flexible_config_settings_fifo_is_refused(tmp_path: Path) -> None:
    (tmp_path / "settings").mkdir()
    os.mkfifo(tmp_path / "settings" / "svc.json")
    tmpl = tmp_path / "krakend.tmpl"
    tmpl.write_text('{"version": 3, "endpoints": []}')
    env = {"FC_ENABLE": "1", "FC_SETTINGS": str(tmp_path / "settings")}
    with pytest.raises(ConfigError) as info:
        build_candidate(str(tmpl), env, port=None, debug=False)
    assert "svc.json: loading flexible-config settings: not a regular file (a FIFO)" in str(
        info.value)


@pytest.mark.parametrize(("endpoint", "builtin", "switches"), [
    ("/__health", "/__health", {}),
    ("/__debug/", "/__debug/*", {"debug_endpoint": True}),
    ("/__echo/{x}", "/__echo/*", {"echo_endpoint": True}),
])
def test_an_endpoint_named_like_a_builtin_route_is_located(tmp_path: Path, endpoint: str,
                                                           builtin: str, switches) -> None:
    import json

    path = tmp_path / "krakend.json"
    data = {"version": 3, **switches, "endpoints": [
        {"endpoint": "/ok", "backend": [{"host": ["http://127.0.0.1:1"], "url_pattern": "/"}]},
        {"endpoint": endpoint,
         "backend": [{"host": ["http://127.0.0.1:1"], "url_pattern": "/"}]}]}
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(ConfigError) as info:
        build_candidate(str(path), {}, port=None, debug=False)
    assert info.value.to_dict()["path"] == "endpoints[1].endpoint"
    assert str(info.value).endswith(
        f"endpoints[1].endpoint: GET {endpoint} collides with the built-in route {builtin}")
    assert info.value.line is not None


def test_debug_routes_are_free_when_the_debug_endpoint_is_off(tmp_path: Path) -> None:
    import json

    path = tmp_path / "krakend.json"
    path.write_text(json.dumps({"version": 3, "endpoints": [
        {"endpoint": "/__debug/x",
         "backend": [{"host": ["http://127.0.0.1:1"], "url_pattern": "/"}]}]}))
    assert build_candidate(str(path), {}, port=None, debug=False).fingerprints


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"version": 3,\n "port": 18446744073709551616}',
     ":2:10: port: integer out of range: 18446744073709551616"),
    ('{"version": 3, "x": ' + "[" * 10_000 + "]" * 10_000 + "}",
     ":1:220: invalid JSON: nested deeper than 200 levels"),
    ('{"version": 3, "x": ' + "[" * 250 + "]" * 250 + "}",
     ":1:220: nested deeper than 200 levels"),
    ('{"version": 3, "endpoints": [{"endpoint": "/__health", "backend": '
     '[{"host": ["http://127.0.0.1:1"], "url_pattern": "/"}]}]}',
     ":1:43: endpoints[0].endpoint: GET /__health collides with the built-in route /__health"),
])
def test_check_locates_pathological_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "krakend.json"
    path.write_text(text)
    done = check(path)
    assert done.returncode == 1, done.stderr
    assert f"ERROR parsing the configuration file: {path}{expected}" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_refuses_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    os.mkfifo(path)
    done = check(path)
    assert done.returncode == 1
    assert done.stderr == (f"ERROR parsing the configuration file: {path}: cannot read the "
                           "configuration: not a regular file (a FIFO)\n")
