"""`tidegate check` flags: -d/-dd/-ddd layout, -i, -l/-n, warnings without -l, -t."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import SHARED, checkout_env, free_port
from tidegate.cli import main

FIXTURE = SHARED / "conformance" / "fixtures" / "krakend.json"

CONFIG = {
    "version": 3, "name": "dump", "port": 9000, "timeout": "3s", "cache_ttl": "1h",
    "read_timeout": "5s",
    "extra_config": {"router": {"return_error_msg": True},
                     "auth/api-keys": {"roles": ["a"], "strategy": "header"}},
    "endpoints": [{
        "endpoint": "/users/{id}", "input_query_strings": ["q"], "input_headers": ["X-A"],
        "extra_config": {"security/policies": {"req": {"policies": ["true"]}}},
        "backend": [
            {"host": ["http://a:1"], "url_pattern": "/u/{id}", "group": "u", "allow": ["x"],
             "mapping": {"x": "y"}, "extra_config": {"backend/http": {
                 "return_error_details": "e"}}},
            {"host": ["b:2"], "url_pattern": "/p", "method": "POST", "encoding": "xml"},
        ],
    }],
}
# CONFIG's protections tidegate does not implement yet: `check` refuses it without these.
ALLOW = ["--allow-unimplemented", "auth/api-keys", "--allow-unimplemented", "security/policies"]


def _write(tmp_path: Path, data: object, name: str = "krakend.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def test_debug_level_1_in_krakends_layout(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, CONFIG)
    assert main(["check", "-d", "-i", "  ", "-c", path, *ALLOW]) == 0
    assert capsys.readouterr().out == "\n".join([
        f"Parsing configuration file: {path}",
        "Global settings",
        "  Name: dump",
        "  Port: 9000",
        "2 global component configuration(s):",
        "- auth/api-keys (not supported by tidegate yet)",
        "- router",
        "1 API endpoints:",
        "  - GET /users/:id",
        "  Timeout: 3s",
        "  1 endpoint component configuration(s):",
        "  - security/policies (not supported by tidegate yet)",
        "  Connecting to 2 backend(s):",
        "    [+] GET /u/{{.Id}}",
        "    Timeout: 3s",
        "    Hosts: [http://a:1]",
        "    1 backend component configuration(s):",
        "    - backend/http",
        "",
        "    [+] POST /p",
        "    Timeout: 3s",
        "    Hosts: [http://b:2]",
        "    0 backend component configuration(s):",
        "Syntax OK!",
        "",
    ])


def test_debug_level_2_adds_settings_and_component_configs(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, CONFIG)
    assert main(["check", "-ddc", path, *ALLOW]) == 0
    out = capsys.readouterr().out
    for line in ["\tDefault cache TTL: 1h0m0s", "\tDefault timeout: 3s",
                 "\tDefault backend hosts: []", "\tNo TLS section defined",
                 "\troles: [a]", "\tstrategy: header", "\treturn_error_msg: true",
                 "\tEndpoint: GET /users/{id}", "\tQueryString: [q]", "\tCacheTTL: 1h0m0s",
                 "\tHeaders to pass: [X-A]", "\tOutputEncoding: json",
                 "\tConcurrent calls: 1", "\t\treq: map[policies:[true]]",
                 "\t\tURL: /u/{id}", "\t\tDeny: [], Allow: [x]", "\t\tMapping: map[x:y]",
                 "\t\tGroup: u", "\t\tEncoding: json", "\t\tEncoding: xml",
                 "\t\tIs collection: false", "\t\t\treturn_error_details: e"]:
        assert line in out.splitlines(), line
    assert "Read timeout" not in out


def test_debug_level_2_prints_numbers_as_go_prints_a_float64(tmp_path: Path, capsys) -> None:
    """KrakenD decodes the configuration into float64s: %v keeps the sign of zero and writes
    the exponent from 1e+06."""
    config = {"version": 3, "extra_config": {"router": {
        "a": -0.0, "b": 1000000, "c": 0.00001, "d": [1.5, 123456]}}}
    path = _write(tmp_path, config)
    assert main(["check", "-ddc", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in ["\ta: -0", "\tb: 1e+06", "\tc: 1e-05", "\td: [1.5 123456]"]:
        assert line in lines, line


def test_debug_level_3_adds_server_settings(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, CONFIG)
    assert main(["check", "-dddc", path, *ALLOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "\tRead timeout: 5s" in lines
    assert "\tWrite timeout: 0s" in lines
    assert "\tMax idle connections per host: 250" in lines


def test_without_lint_ignored_keys_are_warnings(tmp_path: Path, capsys) -> None:
    data = json.loads(json.dumps(CONFIG))
    data["endpoints"][0]["timout"] = "1s"
    path = _write(tmp_path, data)
    assert main(["check", "-c", path, *ALLOW]) == 0
    captured = capsys.readouterr()
    assert captured.out == "Syntax OK!\n"
    lines = captured.err.splitlines()
    assert [line.split(" ", 3)[1:3] for line in lines[:2]] == [
        ["--allow-unimplemented", "auth/api-keys:"],
        ["--allow-unimplemented", "security/policies:"]]
    assert all("serving WITHOUT the protection" in line for line in lines[:2])
    assert [line.split(": ", 3)[2] for line in lines[2:]] == ["endpoints[0].timout"]
    assert all(line.startswith(f"WARNING: {path}:") for line in lines[2:])


def test_protection_not_implemented_is_refused_where_it_is(tmp_path: Path, capsys) -> None:
    """Fail closed: no opt-out, no "Syntax OK!": one located error per protecting section."""
    path = _write(tmp_path, CONFIG)
    assert main(["check", "-c", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR parsing the configuration file: {path}:12:22: "
        "extra_config[\"auth/api-keys\"]: component `auth/api-keys` is not "
        "implemented: requests would be served without it (to serve anyway, for development "
        "only: --allow-unimplemented auth/api-keys)",
        f"ERROR parsing the configuration file: {path}:29:30: endpoints[0].extra_config"
        "[\"security/policies\"]: component `security/policies` is not implemented: requests "
        "would be served without it (to serve anyway, for development only: "
        "--allow-unimplemented security/policies)"]
    # Half an opt-out is still a refusal, of what is left.
    assert main(["check", "-c", path, *ALLOW[:2]]) == 1
    assert "--allow-unimplemented security/policies)" in capsys.readouterr().err


def test_unknown_opt_out_name_is_a_usage_error(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, CONFIG)
    assert main(["check", "-c", path, "--allow-unimplemented", "security/corz"]) == 2
    assert "unknown name `security/corz`, did you mean `security/cors`?" in (
        capsys.readouterr().err)


def test_lint_refuses_what_run_ignores(tmp_path: Path, capsys) -> None:
    data = json.loads(json.dumps(CONFIG))
    data["endpoints"][0]["timout"] = "1s"
    path = _write(tmp_path, data)
    for flag in ("-l", "-n"):
        assert main(["check", flag, "-c", path, *ALLOW]) == 1
        err = capsys.readouterr().err
        assert (f"ERROR linting the configuration file: {path}:65:17: endpoints[0].timout: "
                "unknown attribute `timout`, did you mean `timeout`?") in err


def test_lint_of_yaml_locates_lines(tmp_path: Path, capsys) -> None:
    path = tmp_path / "krakend.yaml"
    path.write_text("version: 3\nendpoints:\n  - endpoint: /a\n    backend:\n"
                    "      - host: [http://h]\n        url_pattern: /\n        grup: g\n")
    assert main(["check", "-lc", str(path)]) == 1
    assert capsys.readouterr().err.startswith(
        f"ERROR linting the configuration file: {path}:7:15: endpoints[0].backend[0].grup: "
        "unknown attribute `grup`, did you mean `group`?")


def test_krakends_example_passes_check_tl_in_a_real_process() -> None:
    """KrakenD CE's test config asks for JWT, CORS, CEL, Lua...: every protection it asks for is
    implemented now, so `check -t` accepts it with no opt-out. Without -l: KrakenD's schema
    refuses the file's backend-level timeouts (test_schema)."""
    env = {**checkout_env(), "KRAKEND_PORT": str(free_port())}
    cmd = [sys.executable, "-m", "tidegate", "check", "-tc", str(FIXTURE)]
    suite = str(FIXTURE.parent.parent)  # its Lua sources are relative to the suite's folder
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=suite)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Syntax OK!\n"
    assert "ERROR" not in proc.stderr
