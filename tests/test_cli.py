"""The command line as users type it: exit codes, messages, KrakenD's combined short flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tidegate import __version__
from tidegate.cli import main

GOOD = {"version": 3, "name": "cli", "endpoints": [
    {"endpoint": "/a/{id}", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/{id}"}]}]}


def write(tmp_path: Path, data: object, name: str = "krakend.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return str(path)


def test_version(capsys) -> None:
    assert main(["version"]) == 0
    assert f"tidegate {__version__}" in capsys.readouterr().out


def test_check_valid_config_says_syntax_ok(tmp_path: Path, capsys) -> None:
    assert main(["check", "-c", write(tmp_path, GOOD)]) == 0
    assert capsys.readouterr().out.strip().endswith("Syntax OK!")


def test_check_combined_flags_print_what_was_understood(tmp_path: Path, capsys) -> None:
    assert main(["check", "-ddc", write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr().out
    assert "Endpoint: GET /a/{id}" in out and "URL: /{id}" in out and "Syntax OK!" in out


def test_check_syntax_error_is_located(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, '{\n  "version": 3,\n  "endpoints": [}\n}')
    assert main(["check", "-c", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR parsing the configuration file: {path}:3:17: ")


def test_check_value_error_names_path_and_position(tmp_path: Path, capsys) -> None:
    data = json.loads(json.dumps(GOOD))
    data["endpoints"][0]["backend"][0]["url_pattern"] = "/{user}"
    path = write(tmp_path, data)
    assert main(["check", "-c", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:12:26: endpoints[0].backend[0].url_pattern: undefined parameter {{user}}" \
        in err


def test_check_yaml_config(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "version: 3\nendpoints:\n  - endpoint: /a\n    backend:\n"
                           "      - host: [http://h]\n        url_pattern: /\n", "krakend.yaml")
    assert main(["check", "-c", path]) == 0


def test_check_test_flag_reports_port_in_use(tmp_path: Path, capsys) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        data = dict(GOOD, port=busy.getsockname()[1], listen_ip="127.0.0.1")
        assert main(["check", "-tc", write(tmp_path, data)]) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def test_usage_error_exits_2(capsys) -> None:
    assert main(["check"]) == 2
    assert main(["frobnicate"]) == 2


def test_run_with_invalid_config_exits_1_without_serving(tmp_path: Path) -> None:
    path = write(tmp_path, {"version": 2, "endpoints": []})
    proc = subprocess.run([sys.executable, "-m", "tidegate", "run", "-c", path, "-p", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "version: unsupported version number 2: expected 3" in proc.stderr
