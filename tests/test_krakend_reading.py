"""Configurations KrakenD runs, read as KrakenD reads them (what a user sees: status, body,
timing, log lines, check's words).

KrakenD decodes lura's attributes weakly typed (koanf's mapstructure decoder with
WeaklyTypedInput), falls back on the JSON decoder for an encoding it has no decoder for
(DecoderRegister.Get), makes a missing url_pattern "/" (CleanPath), keeps hosts verbatim
under disable_host_sanitize, starts with a backend that has no host (its requests fail), and
overwrites a backend's own timeout with its endpoint's (initBackendDefaults).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import backend, free_port, gateway, health, request, write_config
from tidegate.checker import check_once
from tidegate.config.model import build_service
from tidegate.config.weak import WeakTypeError, parse_go_int, to_bool, to_int, to_str

pytestmark = pytest.mark.slow


def check(tmp_path: Path, data: dict[str, Any], *, lint: bool = False) -> tuple[int, str]:
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(data, indent=2))
    err = io.StringIO()
    code = check_once(str(path), lint=lint, out=io.StringIO(), err=err)
    return code, err.getvalue().replace(str(path), "krakend.json")


# --- mapstructure's weak conversions ----------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3), ("0x1F", 31), ("017", 15), ("0o17", 15), ("0b101", 5), ("1_000", 1000),
    ("-2", -2), ("+2", 2), ("", 0), (True, 1), (False, 0), (2.9, 2), (-2.9, -2), (7, 7),
])
def test_integers_convert_as_mapstructure_does(value: Any, expected: int) -> None:
    assert to_int(value) == expected


@pytest.mark.parametrize("value", ["two", " 2", "2 ", "08", "1e3", "2.5", [2], {"a": 1},
                                   "9223372036854775808"])
def test_what_mapstructure_refuses_as_an_integer(value: Any) -> None:
    with pytest.raises(WeakTypeError):
        to_int(value)


def test_booleans_and_strings_convert_as_mapstructure_does() -> None:
    assert [to_bool(v) for v in ("true", "T", "1", "", "false", "F", "0", 2, 0, 0.5)] == [
        True, True, True, False, False, False, False, True, False, True]
    with pytest.raises(WeakTypeError):
        to_bool("yes")
    assert [to_str(v) for v in (True, False, 42, 2.5, 1e20, 3.0)] == [
        "1", "0", "42", "2.5", "100000000000000000000", "3"]
    with pytest.raises(WeakTypeError):
        to_str(["a"])
    assert parse_go_int("-0x10") == -16


def test_weakly_typed_values_build_the_same_service() -> None:
    service = build_service({
        "version": "3", "port": "8080", "debug_endpoint": "true", "timeout": 3000000000,
        "host": "http://h:8081", "endpoints": {"endpoint": "/a", "concurrent_calls": True,
                                               "input_headers": "Authorization",
                                               "backend": {"url_pattern": "/x",
                                                           "is_collection": "1",
                                                           "mapping": {"a": 1}}}})
    ep = service.endpoints[0]
    assert (service.port, service.debug_endpoint, service.timeout, service.host) == (
        8080, True, 3.0, ("http://h:8081",))
    assert (ep.concurrent_calls, ep.input_headers) == (1, ("Authorization",))
    assert (ep.backend[0].is_collection, dict(ep.backend[0].mapping)) == (True, {"a": "1"})


def test_check_runs_weak_values_and_lint_flags_each(tmp_path: Path) -> None:
    data = {"version": "3", "port": "8080", "host": "http://h:8081", "endpoints": [
        {"endpoint": "/a", "concurrent_calls": "2", "backend": [
            {"url_pattern": "/x", "is_collection": "true"}]}]}
    assert check(tmp_path, data) == (0, "")
    code, err = check(tmp_path, data, lint=True)
    assert code == 1
    assert err.splitlines() == [
        "ERROR linting the configuration file: krakend.json:2:14: version: expected number 3, "
        "got string '3'",
        "ERROR linting the configuration file: krakend.json:3:11: port: expected an integer, "
        "got string '8080'",
        "ERROR linting the configuration file: krakend.json:4:11: host: expected a list, got "
        "string 'http://h:8081'",
        "ERROR linting the configuration file: krakend.json:8:27: endpoints[0].concurrent_calls: "
        "expected an integer, got string '2'",
        "ERROR linting the configuration file: krakend.json:12:28: "
        "endpoints[0].backend[0].is_collection: expected a boolean, got string 'true'",
    ]


def test_what_mapstructure_refuses_stays_an_error(tmp_path: Path) -> None:
    code, err = check(tmp_path, {"version": 3, "host": ["h"], "endpoints": [
        {"endpoint": "/a", "concurrent_calls": "two", "backend": [{"url_pattern": "/"}]}]})
    assert code == 1
    assert err == ("ERROR parsing the configuration file: krakend.json:9:27: "
                   "endpoints[0].concurrent_calls: expected an integer, got string 'two'\n")


def test_an_empty_host_is_reported_as_written(tmp_path: Path) -> None:
    code, err = check(tmp_path, {"version": 3, "endpoints": [
        {"endpoint": "/a", "backend": [{"url_pattern": "/", "host": [""]}]}]})
    assert code == 1
    assert err == ("ERROR parsing the configuration file: krakend.json:10:13: "
                   "endpoints[0].backend[0].host[0]: host '': invalid host (lura's host "
                   "sanitizer finds none in it)\n")


def test_lint_flags_what_krakends_schema_refuses_and_run_reads(tmp_path: Path) -> None:
    data = {"version": 3, "host": ["h"], "endpoints": [{"endpoint": "/a", "backend": [
        {"encoding": "form", "timeout": "1s"}]}]}
    assert check(tmp_path, data)[0] == 0
    code, err = check(tmp_path, data, lint=True)
    assert code == 1
    assert err.splitlines() == [
        "ERROR linting the configuration file: krakend.json:10:9: "
        "endpoints[0].backend[0].url_pattern: missing required attribute `url_pattern`",
        "ERROR linting the configuration file: krakend.json:11:23: "
        "endpoints[0].backend[0].encoding: unknown value 'form' (expected one of `fast-json`, "
        "`json`, `no-op`, `rss`, `safejson`, `string`, `xml`, `yaml`)",
        "ERROR linting the configuration file: krakend.json:12:22: "
        "endpoints[0].backend[0].timeout: `timeout` is ignored by KrakenD and tidegate (lura "
        "overwrites a backend's timeout with its endpoint's)",
    ]


# --- a gateway serving what KrakenD serves ------------------------------------------------------

def test_a_gateway_serves_these_configurations_as_krakend(tmp_path: Path) -> None:
    with backend() as bport:
        host = f"http://127.0.0.1:{bport}"
        config = {
            "version": "3", "host": host, "timeout": "3s",
            "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [
                # weakly typed: one string as the header list, "true" as a boolean
                {"endpoint": "/weak", "input_headers": "X-A", "concurrent_calls": "1",
                 "backend": {"url_pattern": "/weak", "is_collection": "false"}},
                # no decoder for these names: the JSON one
                {"endpoint": "/fast", "backend": [{"url_pattern": "/f", "encoding": "fast-json"}]},
                {"endpoint": "/form", "backend": [{"url_pattern": "/g", "encoding": "form"}]},
                # no url_pattern: "/"
                {"endpoint": "/root", "backend": [{"host": [host]}]},
                # kept verbatim: Go's client has no ws scheme
                {"endpoint": "/ws", "backend": [{"url_pattern": "/w", "host": ["ws://127.0.0.1:1"],
                                                 "disable_host_sanitize": True}]},
                # the backend's own timeout (1s) is ignored: the endpoint's 3s applies
                {"endpoint": "/slow", "backend": [{"url_pattern": "/slow/x?ms=1500",
                                                   "timeout": "1s"}]},
            ]}
        nohost = {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
                  "endpoints": [{"endpoint": "/nohost", "backend": [{"url_pattern": "/"}]}]}
        path = tmp_path / "krakend.json"
        write_config(path, config)
        port = free_port()
        with gateway(str(path), port) as gw:
            status, _, body = request(port, "GET", "/weak", headers={"X-A": "1", "X-B": "2"})
            assert status == 200
            seen = json.loads(body)["headers"]
            assert seen.get("X-A") == "1" and "X-B" not in seen
            for route, path_seen in (("/fast", "/f"), ("/form", "/g"), ("/root", "/")):
                status, _, body = request(port, "GET", route)
                assert status == 200, route
                assert json.loads(body)["path"] == path_seen
            status, _, body = request(port, "GET", "/ws")
            assert (status, body) == (
                500, b'Get "ws://127.0.0.1:1/w": unsupported protocol scheme "ws"')
            started = time.monotonic()
            status, _, _ = request(port, "GET", "/slow")
            assert status == 200 and time.monotonic() - started >= 1.4
            assert not any("ERROR" in line for line in gw.log)
        write_config(path, nohost)
        with gateway(str(path), port) as gw:
            assert any("endpoints[0].backend[0]: no host for this backend" in line
                       for line in gw.log)
            status, _, body = request(port, "GET", "/nohost")
            assert (status, body) == (500, b"no hosts available")


def test_the_opt_out_leaves_out_a_plugin_that_is_not_installed(tmp_path: Path) -> None:
    """KrakenD serves without a plugin it cannot load; tidegate refuses (fail closed) unless
    the operator opts out of the namespace by name, and then says so on every start."""
    with backend() as bport:
        config = {"version": 3, "host": [f"http://127.0.0.1:{bport}"],
                  "extra_config": {"plugin/http-server": {"name": ["not-installed-here"]}},
                  "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/a"}]}]}
        code, err = check(tmp_path, config)
        assert code == 1 and "plugin 'not-installed-here' is not installed" in err
        path = tmp_path / "krakend.json"
        port = free_port()
        with gateway(str(path), port, "--allow-unimplemented", "plugin/http-server") as gw:
            gw.wait_for("--allow-unimplemented plugin/http-server: serving WITHOUT")
            assert health(port)["allow_unimplemented"] == ["plugin/http-server"]
            assert request(port, "GET", "/a")[0] == 200


def test_fail_closed_sees_protections_in_weakly_typed_shapes(tmp_path: Path) -> None:
    """One endpoint object for the list, a list of objects for an extra_config: KrakenD reads
    them (so does tidegate), and the protection they ask for is refused as anywhere else."""
    code, err = check(tmp_path, {"version": 3, "host": ["h"], "endpoints": {
        "endpoint": "/a", "extra_config": [{"governance/quota": {}}],
        "backend": {"url_pattern": "/", "extra_config": [{"security/policies": {}}]}}})
    assert code == 1
    assert [line.split(": ", 3)[2] for line in err.splitlines()] == [
        'endpoints.extra_config[0]["governance/quota"]',
        'endpoints.backend.extra_config[0]["security/policies"]']
    assert all("requests would be served without it" in line for line in err.splitlines())
