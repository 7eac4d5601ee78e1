"""The built-in schema: valid, complete (no key the code reads is missing), and what lint uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support import SHARED
from tests.test_conformance import NOT_IMPLEMENTED_YET
from tidegate.cli import main
from tidegate.config.fields import SCOPES
from tidegate.config.model import build_service
from tidegate.config.namespaces import NAMESPACES, at_scope
from tidegate.config.sources import load_file, parse_text
from tidegate.lint import build_schema, lint, unknown_attribute_warnings, walk
from tidegate.lint.linter import builtin_validator, lint_schema
from tidegate.pipeline.generation import Generation, ServerStatus

FIXTURE = SHARED / "conformance" / "fixtures" / "krakend.json"


class Recording(dict):
    """A dict that writes down every key the code asks it for, under a label."""

    def __init__(self, label: str, log: set[tuple[str, str]], data: dict[str, Any]) -> None:
        super().__init__(data)
        self.label = label
        self.log = log

    def get(self, key: Any, default: Any = None) -> Any:
        self.log.add((self.label, key))
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.log.add((self.label, key))
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.log.add((self.label, str(key)))
        return super().__contains__(key)


def _wrap(data: Any, label: str, log: set[tuple[str, str]]) -> Any:
    """Wrap a config so each level records under its own label (service, endpoint, backend,
    <level>.extra_config, <level>:<namespace>)."""
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        if key == "endpoints" and label == "service":
            value = [_wrap(v, "endpoint", log) for v in value]
        elif key == "backend" and label == "endpoint":
            value = [_wrap(v, "backend", log) for v in value]
        elif key == "extra_config" and label in SCOPES:
            value = Recording(f"{label}.extra_config", log, {
                ns: Recording(f"{label}:{ns}", log, cfg) if isinstance(cfg, dict) else cfg
                for ns, cfg in value.items()})
        out[key] = value
    return Recording(label, log, out)


FULL = {
    "version": 3, "name": "full", "port": 8080, "listen_ip": "127.0.0.1", "timeout": "3s",
    "cache_ttl": "1s", "host": ["http://h"], "output_encoding": "json", "debug_endpoint": True,
    "echo_endpoint": True, "disable_rest": False,
    "extra_config": {"router": {"return_error_msg": True}},
    "endpoints": [
        {"endpoint": "/a/{id}", "method": "GET", "timeout": "1s", "cache_ttl": "1s",
         "output_encoding": "json", "concurrent_calls": 2, "input_headers": ["X-A"],
         "input_query_strings": ["q"],
         "extra_config": {"proxy": {"sequential": True, "static": {
             "strategy": "always", "data": {"a": 1}},
             "flatmap_filter": [{"type": "del", "args": ["a"]}]}},
         "backend": [
             {"url_pattern": "/x/{id}", "host": ["http://b"], "method": "GET",
              "encoding": "json", "disable_host_sanitize": False,
              "is_collection": False, "group": "g", "target": "t", "allow": ["a"],
              "mapping": {"a": "b"}, "input_headers": ["X-A"], "input_query_strings": ["q"],
              "extra_config": {"backend/http": {"return_error_details": "e",
                                                "return_error_code": False},
                               "proxy": {"flatmap_filter": [{"type": "del", "args": ["a"]}]}}},
             {"url_pattern": "/y/{resp0_id}", "deny": ["b"]},
         ]},
        {"endpoint": "/b", "backend": [{"url_pattern": "/"}]},
    ],
}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_key_the_builders_read_is_in_the_schema() -> None:
    """Type-check and compile a full configuration through recording dicts: each key asked for
    must be declared at that level (field tables and namespace registry)."""
    log: set[tuple[str, str]] = set()
    service = build_service(_wrap(json.loads(json.dumps(FULL)), "service", log))
    Generation(service, 0, "", debug=False, status=ServerStatus())
    assert ("endpoint:proxy", "sequential") in log  # the recording works down to components
    missing, marked_unsupported = [], []
    for label, key in sorted(log):
        if label in SCOPES:
            known = SCOPES[label]
        elif label.endswith(".extra_config"):
            scope = label.split(".")[0]
            known = {n: ns for n, ns in at_scope(scope).items() if ns.supported}
        else:
            scope, _, ns = label.partition(":")
            fields = NAMESPACES[ns].fields
            known = fields[scope] if fields else {}
        if key not in known:
            missing.append(f"{label}: {key}")
        elif getattr(known[key], "supported", True) is False:
            marked_unsupported.append(f"{label}: {key}")
    assert missing == []
    # Read by the code yet declared "not supported": only what is parsed but not acted upon.
    assert marked_unsupported == ["service: disable_rest"]


def test_a_full_configuration_lints_clean() -> None:
    assert [str(i) for i in lint(FULL)
            if i.severity == "error" or i.code == "unsupported"] == [
        "disable_rest: `disable_rest` is not supported by tidegate yet: it is ignored"]


def test_schema_command_prints_the_schema(capsys) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == build_schema()


def test_krakends_example_config_lints_as_krakends_schema_does() -> None:
    """KrakenD's own v2.13 schema refuses its fixture's two backend-level timeouts (which lura
    ignores): so does tidegate's, and nothing else."""
    doc = load_file(str(FIXTURE))
    assert lint_schema(doc.data, builtin_validator()) == []
    assert [str(i) for i in lint(doc.data) if i.severity == "error"] == [
        f"endpoints[2].backend[{j}].timeout: `timeout` is ignored by KrakenD and tidegate "
        "(lura overwrites a backend's timeout with its endpoint's)" for j in (0, 1)]


def test_krakends_example_config_passes_check_tl(capsys, monkeypatch) -> None:
    from tests.support import free_port

    monkeypatch.setenv("KRAKEND_PORT", str(free_port()))
    monkeypatch.chdir(FIXTURE.parent.parent)  # its Lua sources are relative to the suite
    allow = [arg for name in NOT_IMPLEMENTED_YET for arg in ("--allow-unimplemented", name)]
    assert main(["check", "-tc", str(FIXTURE), *allow]) == 0  # -l: see the test above
    captured = capsys.readouterr()
    assert captured.out.strip() == "Syntax OK!"
    lines = captured.err.splitlines()
    assert lines and all(line.startswith("WARNING: ") for line in lines)
    opted_out = [line for line in lines if "serving WITHOUT the protection" in line]
    assert len(opted_out) == len(NOT_IMPLEMENTED_YET)
    ignored = [line for line in lines if line not in opted_out]
    # /lua/custom_error loads collection.lua (string.find...) without allow_open_libs: its
    # json_error() works, the file's other functions could not (a true warning).
    assert all("not supported by tidegate yet" in line
               or "`timeout` is ignored by KrakenD" in line
               or "uses Lua's standard library" in line for line in ignored)
    implemented = [n for n, ns in NAMESPACES.items() if ns.supported]
    for line in ignored:  # no false alarm about a namespace tidegate implements
        assert not any(f"`{name}`" in line for name in implemented), line
    assert not any("`telemetry/metrics`" in line for line in ignored)  # implemented now


BROKEN = [
    {"version": 3, "endpoint": [], "extra_config": {"routr": {}, "proxy": {}}},
    {"version": 3, "endpoints": [{"endpoint": "/a", "methd": "GET", "extra_config": {
        "backend/http": {}, "proxy": {"sequencial": True}},
        "backend": [{"url_patern": "/", "extra_config": {"router": {}, "x/y": 1}}]}]},
]


@pytest.mark.parametrize("data", BROKEN)
def test_the_walker_and_the_schema_agree_on_unknown_keys(data: dict[str, Any]) -> None:
    """`run` warns (walker) about exactly the keys `check -l` refuses (schema)."""
    schema_paths = {i.path for i in lint_schema(data, builtin_validator())
                    if i.code in ("unknown", "misplaced")}
    walker_paths = {i.path for i in walk(data) if i.code in ("unknown", "misplaced")}
    assert walker_paths == schema_paths and walker_paths


def test_unknown_attribute_warnings_for_run() -> None:
    text = json.dumps({"version": 3, "timout": "1s", "endpoints": [
        {"endpoint": "/a", "extra_config": {"documentation/openapi": {}},
         "backend": [{"url_pattern": "/", "headers_to_pass": []}]}]}, indent=2)
    doc = parse_text(text, "krakend.json")
    assert unknown_attribute_warnings(doc.data, doc) == [
        "krakend.json:3:13: timout: unknown attribute `timout`, did you mean `timeout`? "
        "(allowed here: `allow_insecure_connections`, `async_agent`, `cache_ttl`, "
        "`client_tls`, `debug_endpoint`, "
        "`dialer_fallback_delay`, `dialer_keep_alive`, `dialer_timeout`, "
        "`disable_compression`, `disable_keep_alives`, `disable_rest`, `dns_cache_ttl`, "
        "`echo_endpoint`, `endpoints`, `expect_continue_timeout`, `extra_config`, `host`, "
        "`idle_connection_timeout`, `idle_timeout`, `listen_ip`, `max_header_bytes`, "
        "`max_idle_connections`, `max_idle_connections_per_host`, `max_shutdown_wait_time`, "
        "`name`, `output_encoding`, `plugin`, `port`, `read_header_timeout`, `read_timeout`, "
        "`response_header_timeout`, `sequential_start`, `timeout`, `tls`, `use_h2c`, "
        "`version`, `write_timeout`)",
        'krakend.json:8:34: endpoints[0].extra_config["documentation/openapi"]: component '
        "`documentation/openapi` is not supported by tidegate yet: it is ignored",
        "krakend.json:13:30: endpoints[0].backend[0].headers_to_pass: unknown attribute "
        "`headers_to_pass` (allowed here: `allow`, `deny`, `disable_host_sanitize`, "
        "`encoding`, `extra_config`, `group`, `host`, `input_headers`, "
        "`input_query_strings`, `is_collection`, `mapping`, `method`, `sd`, `sd_scheme`, "
        "`target`, `url_pattern`)",
        'krakend.json:11:9: endpoints[0].backend[0]: no host for this backend (set "host" here '
        'or at the root): its requests fail with "no hosts available", as in KrakenD',
    ]
    assert unknown_attribute_warnings({"version": 3}) == []


def test_v1_attribute_names_are_lint_errors_naming_the_v3_name() -> None:
    """KrakenD 2 ignores them, so lint refuses them (and `run` warns: see test_v1_names...)."""
    data = {"version": 3, "host": ["h"],
            "endpoints": [{"endpoint": "/a", "headers_to_pass": ["X"],
                           "backend": [{"url_pattern": "/", "whitelist": ["a"]}]}]}
    assert [(i.severity, str(i)) for i in lint(data)] == [
        ("error", "endpoints[0].headers_to_pass: `headers_to_pass` is a KrakenD v1 name, "
                  "ignored by KrakenD 2 and tidegate: use `input_headers`"),
        ("error", "endpoints[0].backend[0].whitelist: `whitelist` is a KrakenD v1 name, "
                  "ignored by KrakenD 2 and tidegate: use `allow`"),
    ]


def test_legacy_namespace_names_are_lint_errors_with_a_rename_hint() -> None:
    """KrakenD applies them under their current name; its v2.13 schema refuses them."""
    data = {"version": 3, "host": ["h"],
            "extra_config": {"github_com/luraproject/lura/router/gin": {"return_error_msg": True}},
            "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/", "extra_config": {
                "github.com/devopsfaith/krakend/http": {"return_error_code": True}}}]}]}
    assert [(i.severity, str(i)) for i in lint(data)] == [
        ("error", 'extra_config["github_com/luraproject/lura/router/gin"]: '
                    "`github_com/luraproject/lura/router/gin` is a KrakenD v1 namespace: "
                    "use `router`"),
        ("error", 'endpoints[0].backend[0].extra_config["github.com/devopsfaith/krakend/http"]'
                    ": `github.com/devopsfaith/krakend/http` is a KrakenD v1 namespace: "
                    "use `backend/http`"),
    ]


# --- -s: a user's schema ---------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return str(path)


GOOD = {"version": 3, "endpoints": [{"endpoint": "/a", "backend": [
    {"host": ["http://h"], "url_pattern": "/"}]}]}


def test_custom_schema_errors_are_reported_with_place(tmp_path: Path, capsys) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "required": ["name"], "properties": {"version": {"const": 3},
                                                   "endpoints": {"type": "string"}}}
    cfg = _write(tmp_path, "krakend.json", GOOD)
    assert main(["check", "-c", cfg, "-s", _write(tmp_path, "s.json", schema)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"ERROR linting the configuration file: {cfg}:1:1: name: missing required attribute "
        "`name`",
        f"ERROR linting the configuration file: {cfg}:3:16: endpoints: expected a string, got "
        "a list",
    ]


def test_custom_schema_that_accepts(tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path, "krakend.json", GOOD)
    assert main(["check", "-c", cfg, "-s", _write(tmp_path, "s.json", {"type": "object"})]) == 0
    assert capsys.readouterr().out == "Syntax OK!\n"


def test_custom_schema_problems(tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path, "krakend.json", GOOD)
    assert main(["check", "-c", cfg, "-s", "https://www.krakend.io/schema/krakend.json"]) == 2
    assert "without network" in capsys.readouterr().err
    bad = _write(tmp_path, "s.json", {"type": 12})
    assert main(["check", "-c", cfg, "-s", bad]) == 1
    assert capsys.readouterr().err.startswith(
        f"ERROR reading the lint schema: {bad}: not a valid JSON Schema at type: 12 is not "
        "valid under any of the given schemas")
    missing = str(tmp_path / "nope.json")
    assert main(["check", "-c", cfg, "-s", missing]) == 1
    assert capsys.readouterr().err == (f"ERROR reading the lint schema: {missing}: cannot read "
                                       "the configuration: No such file or directory\n")
