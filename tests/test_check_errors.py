"""`tidegate check -l` on broken configurations: the exact lines a user reads, with place.

Every case writes one file, runs ``tidegate check`` through `tidegate.cli.main` and compares
stderr line by line. ``{file}`` stands for the file's path. An expected line ending in ``…`` is
compared as a prefix (used where a message goes on to list every namespace of a level).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tidegate.cli import main


def backend(**kw: Any) -> dict[str, Any]:
    return {"host": ["http://backend:8000"], "url_pattern": "/", **kw}


def endpoint(path: str = "/a", *backends: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"endpoint": path, **kw, "backend": list(backends) or [backend()]}


def config(*endpoints: dict[str, Any], **root: Any) -> dict[str, Any]:
    return {"version": 3, **root, "endpoints": list(endpoints) or [endpoint()]}


class Case(NamedTuple):
    id: str
    content: Any  # a dict (written as indented JSON), text, bytes, or None (no file)
    expected: list[str]
    name: str = "krakend.json"
    code: int = 1


def _endpoint_extra(extra: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return config(endpoint("/a", **kw, extra_config=extra))


def _backend_extra(extra: dict[str, Any]) -> dict[str, Any]:
    return config(endpoint("/a", backend(extra_config=extra)))


L = "ERROR linting the configuration file: {file}"
P = "ERROR parsing the configuration file: {file}"
W = "WARNING: {file}"

CASES: list[Case] = [
    # --- unknown attributes, with "did you mean" ---------------------------------------------
    Case("root-key-typo", config(endpoint(), extra_confg={}), [
        L + ":3:18: extra_confg: unknown attribute `extra_confg`, did you mean `extra_config`? "
            "(allowed here: …"]),
    Case("endpoint-key-typo", config(endpoint("/a", methd="POST")), [
        L + ":6:16: endpoints[0].methd: unknown attribute `methd`, did you mean `method`? "
            "(allowed here: `backend`, `cache_ttl`, `concurrent_calls`, `endpoint`, "
            "`extra_config`, `input_headers`, `input_query_strings`, `method`, "
            "`output_encoding`, `timeout`)"]),
    Case("backend-url-pattern-typo", config(endpoint("/a", {"host": ["http://b"],
                                                             "url_patern": "/x"})), [
        L + ":7:9: endpoints[0].backend[0].url_pattern: missing required attribute `url_pattern`",
        L + ":11:25: endpoints[0].backend[0].url_patern: unknown attribute `url_patern`, did "
            "you mean `url_pattern`? (allowed here: …"]),
    Case("backend-hosts-plural", config(endpoint("/a", {"hosts": ["http://b"],
                                                         "url_pattern": "/"})), [
        W + ":7:9: endpoints[0].backend[0]: no host for this backend (set \"host\" here or at "
            "the root): its requests fail with \"no hosts available\", as in KrakenD",
        L + ":8:20: endpoints[0].backend[0].hosts: unknown attribute `hosts`, did you mean "
            "`host`? (allowed here: …"]),
    Case("endpoint-timeout-typo", config(endpoint("/a", timout="3s")), [
        L + ":6:17: endpoints[0].timout: unknown attribute `timout`, did you mean `timeout`? "
            "(allowed here: …"]),
    Case("root-case-typo", config(endpoint(), Port=8080), [
        L + ":3:11: Port: unknown attribute `Port`, did you mean `port`? (allowed here: …"]),
    # --- namespaces: unknown, misplaced, inner typos -----------------------------------------
    Case("service-namespace-typo", config(endpoint(), extra_config={"routr": {}}), [
        L + ":4:14: extra_config.routr: unknown namespace `routr`, did you mean `router`? "
            "(namespaces accepted in the extra_config of the root: …"]),
    Case("endpoint-namespace-typo", _endpoint_extra({"qos/ratelimit/routr": {"max_rate": 1}}), [
        P + ":7:32: endpoints[0].extra_config[\"qos/ratelimit/routr\"]: unknown namespace "
            "`qos/ratelimit/routr`, did you mean `qos/ratelimit/router`? refused: a `qos/` "
            "section asks for a protection, and requests would be served without it"]),
    Case("backend-namespace-at-endpoint", _endpoint_extra(
        {"backend/http": {"return_error_details": "x"}}), [
        L + ":7:25: endpoints[0].extra_config[\"backend/http\"]: misplaced component "
            "`backend/http`: it belongs in the extra_config of a backend, not of an endpoint"]),
    Case("router-at-backend", _backend_extra({"router": {"return_error_msg": True}}), [
        L + ":13:23: endpoints[0].backend[0].extra_config.router: misplaced component `router`: "
            "it belongs in the extra_config of the root, not of a backend"]),
    Case("proxy-at-root", config(endpoint(), extra_config={"proxy": {"sequential": True}}), [
        L + ":4:14: extra_config.proxy: misplaced component `proxy`: it belongs in the "
            "extra_config of an endpoint or a backend, not of the root"]),
    Case("proxy-option-typo", _endpoint_extra({"proxy": {"sequencial": True}}), [
        L + ":8:25: endpoints[0].extra_config.proxy.sequencial: unknown attribute `sequencial`, "
            "did you mean `sequential`? (allowed here: `combiner`, `decompress_gzip`, "
            "`flatmap_filter`, `max_payload`, `sequential`, `sequential_propagated_params`, "
            "`static`, `strategy`)"]),
    Case("router-option-typo", config(endpoint(), extra_config={
        "router": {"return_error_msgs": True}}), [
        L + ":5:28: extra_config.router.return_error_msgs: unknown attribute "
            "`return_error_msgs`, did you mean `return_error_msg`? (allowed here: …"]),
    Case("backend-only-proxy-option", _endpoint_extra({"proxy": {"shadow": True}}), [
        L + ":8:21: endpoints[0].extra_config.proxy.shadow: misplaced option `shadow`: `proxy` "
            "takes it in the extra_config of a backend, not of an endpoint"]),
    # --- wrong types -------------------------------------------------------------------------
    Case("port-as-string", config(endpoint(), port="8080"), [
        L + ":3:11: port: expected an integer, got string '8080'"]),
    Case("port-out-of-range", config(endpoint(), port=70000), [
        P + ":3:11: port: port 70000 out of range 0-65535"]),
    Case("debug-endpoint-yes", config(endpoint(), debug_endpoint="yes"), [
        P + ":3:21: debug_endpoint: expected a boolean, got string 'yes'"]),
    Case("host-as-string", config(endpoint(), host="http://backend"), [
        L + ":3:11: host: expected a list, got string 'http://backend'"]),
    # KrakenD (mapstructure, weakly typed) reads one object as a list of one
    Case("endpoints-as-object", {"version": 3, "endpoints": {"endpoint": "/a"}}, [
        P + ":3:16: endpoints[0].backend: endpoint GET /a has no backends: declare at least one",
        L + ":3:16: endpoints: expected a list, got an object"]),
    Case("backend-as-object", config({"endpoint": "/a", "backend": backend()}), [
        L + ":6:18: endpoints[0].backend: expected a list, got an object"]),
    Case("input-headers-number", config(endpoint("/a", input_headers=["X-A", 7])), [
        L + ":8:9: endpoints[0].input_headers[1]: expected a string, got number 7"]),
    Case("mapping-not-string", config(endpoint("/a", backend(mapping={"a": 1}))), [
        L + ":13:18: endpoints[0].backend[0].mapping.a: expected a string, got number 1"]),
    Case("is-collection-string", config(endpoint("/a", backend(is_collection="true"))), [
        L + ":12:28: endpoints[0].backend[0].is_collection: expected a boolean, got string "
            "'true'"]),
    Case("concurrent-calls-negative", config(endpoint("/a", concurrent_calls=-1)), [
        P + ":6:27: endpoints[0].concurrent_calls: expected at least 1, got -1"]),
    Case("name-as-number", config(endpoint(), name=42), [
        L + ":3:11: name: expected a string, got number 42"]),
    Case("group-as-list", config(endpoint("/a", backend(group=["a"]))), [
        P + ":12:20: endpoints[0].backend[0].group: expected a string, got a list"]),
    # --- durations ---------------------------------------------------------------------------
    Case("duration-with-space", config(endpoint(), timeout="2 s"), [
        P + ":3:14: timeout: time: unknown unit \" s\" in duration \"2 s\" (expected a duration "
            "such as \"1m30s\", \"150ms\", \"2h\")"]),
    Case("duration-missing-unit", config(endpoint(), timeout="10"), [
        P + ":3:14: timeout: time: missing unit in duration \"10\" (expected a duration such "
            "as \"1m30s\", \"150ms\", \"2h\")"]),
    Case("duration-negative", config(endpoint(), cache_ttl="-1s"), [
        P + ":3:16: cache_ttl: a negative duration is not allowed: '-1s'"]),
    Case("duration-days", config(endpoint("/a", timeout="1d")), [
        P + ":6:18: endpoints[0].timeout: time: unknown unit \"d\" in duration \"1d\" "
            "(expected a duration such as \"1m30s\", \"150ms\", \"2h\")"]),
    Case("duration-boolean", config(endpoint(), timeout=True), [
        L + ":3:14: timeout: expected a duration string such as \"2s\", got boolean true"]),
    Case("unsupported-duration-bad", config(endpoint(), dialer_timeout="5 seconds"), [
        L + ":3:21: dialer_timeout: time: unknown unit \" seconds\" in duration \"5 seconds\" "
            "(expected a duration such as \"1m30s\", \"150ms\", \"2h\")",
        W + ":3:21: dialer_timeout: `dialer_timeout` is not supported by tidegate yet: it is "
            "ignored"]),
    Case("server-timeout-bad", config(endpoint(), read_timeout="5 seconds"), [
        P + ":3:19: read_timeout: time: unknown unit \" seconds\" in duration \"5 seconds\" "
            "(expected a duration such as \"1m30s\", \"150ms\", \"2h\")"]),
    Case("negative-integer-duration", config(endpoint(), timeout=-5), [
        P + ":3:14: timeout: a negative duration is not allowed: -5"]),
    Case("integer-duration-overflow", config(endpoint(), timeout=1 << 63), [
        P + ":3:14: timeout: duration 9223372036854775808 ns overflows Go's time.Duration "
            "(int64)"]),
    # --- routes and parameters ---------------------------------------------------------------
    Case("colliding-routes", config(endpoint("/a/{x}"), endpoint("/a/{y}")), [
        P + ":16:19: endpoints[1].endpoint: route GET /a/{y} collides with GET /a/{x} declared "
            "at endpoints[0]"]),
    Case("undefined-parameter", config(endpoint("/a/{id}", backend(url_pattern="/u/{user}"))), [
        P + ":11:26: endpoints[0].backend[0].url_pattern: undefined parameter {user} in "
            "url_pattern '/u/{user}'; the endpoint defines: {id}"]),
    Case("response-reference-not-sequential", config(endpoint(
        "/a", backend(), backend(url_pattern="/x/{resp0_id}"))), [
        P + ":17:26: endpoints[0].backend[1].url_pattern: undefined parameter {resp0_id} in "
            "url_pattern '/x/{resp0_id}' (response references need \"sequential\": true in "
            "extra_config.proxy); the endpoint defines: none"]),
    Case("endpoint-missing-path", config({"backend": [backend()]}), [
        P + ":4:5: endpoints[0].endpoint: missing: every endpoint needs an \"endpoint\" path "
            "such as \"/users/{id}\""]),
    Case("endpoint-without-backends", config({"endpoint": "/a", "backend": []}), [
        P + ":6:18: endpoints[0].backend: endpoint GET /a has no backends: declare at least "
            "one"]),
    # KrakenD runs it (lura's CleanPath makes it "/"); its schema requires it
    Case("backend-missing-url-pattern", config(endpoint("/a", {"host": ["http://b"]})), [
        L + ":7:9: endpoints[0].backend[0].url_pattern: missing required attribute "
            "`url_pattern`"]),
    Case("endpoint-without-slash", config(endpoint("users")), [
        P + ":5:19: endpoints[0].endpoint: endpoint 'users' must start with '/'"]),
    Case("wildcard-in-the-middle", config(endpoint("/a/*/b")), [
        P + ":5:19: endpoints[0].endpoint: a wildcard '*' is only allowed as the last "
            "segment: '/a/*/b'"]),
    Case("unknown-method", config(endpoint("/a", method="FETCH")), [
        P + ":6:17: endpoints[0].method: unknown HTTP method 'FETCH': expected one of CONNECT, "
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE",
        P + ":8:9: endpoints[0].backend[0].method: unknown HTTP method 'FETCH'"]),
    Case("version-missing", {"endpoints": [endpoint()]}, [
        P + ":1:1: version: missing: KrakenD v2 configurations need \"version\": 3"]),
    Case("version-2", config(endpoint(), version=2), [
        P + ":2:14: version: unsupported version number 2: expected 3"]),
    # --- encodings ---------------------------------------------------------------------------
    Case("backend-encoding-typo", config(endpoint("/a", backend(encoding="jsonn"))), [
        L + ":12:23: endpoints[0].backend[0].encoding: unknown value 'jsonn', did you mean "
            "`json`? (expected one of `fast-json`, `json`, `no-op`, `rss`, `safejson`, `string`, "
            "`xml`, `yaml`)"]),
    Case("output-encoding-unknown", config(endpoint("/a", output_encoding="html")), [
        P + ":6:26: endpoints[0].output_encoding: unknown output_encoding 'html': expected one "
            "of json, json-collection, negotiate, no-op, string, xml, yaml"]),
    Case("no-op-with-two-backends", config(endpoint("/a", backend(), backend(),
                                                      output_encoding="no-op")), [
        P + ":6:26: endpoints[0].output_encoding: no-op cannot be used with more than one "
            "backend on the same endpoint"]),
    # --- component configurations ------------------------------------------------------------
    Case("backend-http-details-number", _backend_extra({"backend/http": {
        "return_error_details": 1}}), [
        L + ":14:39: endpoints[0].backend[0].extra_config[\"backend/http\"]"
            ".return_error_details: expected a string, got number 1"]),
    Case("sequential-as-string", _endpoint_extra({"proxy": {"sequential": "yes"}}), [
        L + ":8:25: endpoints[0].extra_config.proxy.sequential: expected a boolean, got "
            "string 'yes'"]),
    # the core namespaces are parsed with the model: one error, at the key
    Case("static-strategy-unknown", _endpoint_extra({"proxy": {"static": {
        "strategy": "sometimes", "data": {}}}}), [
        P + ":9:25: endpoints[0].extra_config.proxy.static.strategy: unknown static strategy "
            "'sometimes': expected one of always, success, complete, errored, incomplete"]),
    Case("static-data-list", _endpoint_extra({"proxy": {"static": {
        "strategy": "always", "data": [1]}}}), [
        P + ":10:21: endpoints[0].extra_config.proxy.static.data: expected an object, got a "
            "list"]),
    Case("flatmap-unknown-operation", _backend_extra({"proxy": {"flatmap_filter": [
        {"type": "copy", "args": ["a", "b"]}]}}), [
        P + ":16:27: endpoints[0].backend[0].extra_config.proxy.flatmap_filter[0].type: "
            "unknown type 'copy' (use move, del or append)"]),
    Case("flatmap-args-string", _backend_extra({"proxy": {"flatmap_filter": [
        {"type": "del", "args": "a"}]}}), [
        P + ":17:27: endpoints[0].backend[0].extra_config.proxy.flatmap_filter[0].args: "
            "expected a list of non-empty dot paths, got string 'a'"]),
    Case("flatmap-move-one-arg", _backend_extra({"proxy": {"flatmap_filter": [
        {"type": "move", "args": ["a"]}]}}), [
        P + ":17:27: endpoints[0].backend[0].extra_config.proxy.flatmap_filter[0].args: "
            "move takes exactly 2 args (source, destination), got 1"]),
    Case("endpoint-flatmap-not-a-list", config(endpoint("/a", backend(), backend(),
                                                          extra_config={"proxy": {
                                                              "flatmap_filter": "del"}})), [
        P + ":8:29: endpoints[0].extra_config.proxy.flatmap_filter: expected a list of "
            "operations, got string 'del'"]),
    Case("propagated-params-not-strings", config(endpoint(
        "/a", backend(), backend(), extra_config={"proxy": {
            "sequential": True, "sequential_propagated_params": [1]}})), [
        P + ":10:13: endpoints[0].extra_config.proxy.sequential_propagated_params[0]: "
            "expected a string, got number 1"]),
    Case("endpoint-max-payload-negative", _endpoint_extra({"proxy": {"max_payload": -1}}), [
        P + ":8:26: endpoints[0].extra_config.proxy.max_payload: expected a non-negative "
            "integer (bytes), got number -1"]),
    Case("legacy-proxy-namespace-located", _endpoint_extra({
        "github.com/devopsfaith/krakend/proxy": {"static": {"strategy": "never"}}}), [
        L + ":7:49: endpoints[0].extra_config[\"github.com/devopsfaith/krakend/proxy\"]: "
            "`github.com/devopsfaith/krakend/proxy` is a KrakenD v1 namespace: use `proxy`",
        P + ":9:25: endpoints[0].extra_config[\"github.com/devopsfaith/krakend/proxy\"].static"
            ".strategy: unknown static strategy 'never': expected one of always, success, "
            "complete, errored, incomplete"]),
    # --- files and formats -------------------------------------------------------------------
    Case("file-missing", None, [
        "ERROR parsing the configuration file: {file}: cannot read the configuration: No such "
        "file or directory"]),
    Case("unknown-extension", "{}", [
        "ERROR parsing the configuration file: {file}: unsupported configuration format "
        "('.txt'): use one of .json, .yaml, .yml, .toml, .hcl, .properties, .props, .prop"],
        name="krakend.txt"),
    Case("not-utf8", b'{"version": 3, "name": "caf\xe9"}', [
        P + ":1:28: the file is not valid UTF-8 (byte 0xe9)"]),
    Case("json-trailing-comma", '{\n  "version": 3,\n  "endpoints": [],\n}\n', [
        P + ":4:1: invalid JSON: Expecting property name enclosed in double quotes, near `}`"]),
    Case("json-nan", '{"version": 3, "timeout": NaN}', [
        P + ":1:27: invalid JSON: NaN is not a JSON value, near `{\"version\": 3, \"timeout\": "
            "NaN}`"]),
    Case("json-top-level-array", "[]", [
        P + ":1:1: the top level of a configuration must be an object, not an array"]),
    Case("yaml-syntax", "version: 3\nendpoints:\n  - endpoint: /a\n   backend: []\n", [
        P + ":4:4: invalid YAML: did not find expected '-' indicator (while parsing a block "
            "collection), near `backend: []`"], name="krakend.yaml"),
    Case("toml-syntax", "version = 3\nname = \n", [
        P + ":2:8: invalid TOML: invalid value, near `name =`"], name="krakend.toml"),
    Case("hcl-syntax", "version = 3\nendpoints = [\n", [
        P + ":3:1: invalid HCL: unexpected end of file, expected a value"], name="krakend.hcl"),
    Case("yaml-type-error", "version: 3\nport: eighty\nendpoints: []\n", [
        P + ":2:7: port: expected an integer, got string 'eighty'"], name="krakend.yaml"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_reports_exact_message_and_place(case: Case, tmp_path: Path, capsys) -> None:
    path = tmp_path / case.name
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif isinstance(case.content, str):
        path.write_text(case.content)
    elif case.content is not None:
        path.write_text(json.dumps(case.content, indent=2))
    assert main(["check", "-lc", str(path)]) == case.code
    captured = capsys.readouterr()
    lines = captured.err.rstrip("\n").split("\n")
    expected = [line.replace("{file}", str(path)) for line in case.expected]
    assert len(lines) == len(expected), captured.err
    for got, want in zip(lines, expected, strict=True):
        if want.endswith("…"):
            assert got.startswith(want[:-1]), got
        else:
            assert got == want
    assert "Syntax OK!" not in captured.out


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_unreadable_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "krakend.json"
    path.write_text("{}")
    path.chmod(0)
    try:
        with open(path):
            pytest.skip("files are readable regardless of permissions here (root)")
    except PermissionError:
        pass
    assert main(["check", "-lc", str(path)]) == 1
    assert capsys.readouterr().err == (f"ERROR parsing the configuration file: {path}: cannot "
                                       "read the configuration: Permission denied\n")


def test_a_directory_is_not_a_configuration(tmp_path: Path, capsys) -> None:
    path = tmp_path / "conf.json"
    path.mkdir()
    assert main(["check", "-c", str(path)]) == 1
    assert capsys.readouterr().err == (f"ERROR parsing the configuration file: {path}: cannot "
                                       "read the configuration: Is a directory\n")


def test_environment_override_error(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(config(), indent=2))
    monkeypatch.setenv("KRAKEND_PORT", "eighty")
    assert main(["check", "-c", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"ERROR parsing the configuration file: {path}:1:1: port: environment variable "
        "KRAKEND_PORT: expected an integer, got 'eighty'\n")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in (
    "endpoint-key-typo", "colliding-routes", "json-trailing-comma", "backend-namespace-at-endpoint",
)], ids=lambda c: c.id)
def test_same_lines_from_a_real_process(case: Case, tmp_path: Path) -> None:
    path = tmp_path / case.name
    if isinstance(case.content, str):
        path.write_text(case.content)
    else:
        path.write_text(json.dumps(case.content, indent=2))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-l", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.rstrip("\n").split("\n")
    expected = [line.replace("{file}", str(path)) for line in case.expected]
    for got, want in zip(lines, expected, strict=True):
        assert got.startswith(want[:-1]) if want.endswith("…") else got == want
    assert proc.stdout == ""
