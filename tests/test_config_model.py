"""Typed model: KrakenD's defaults, and every error class with its JSON path and message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tidegate.config.loader import apply_env_overrides, load_config
from tidegate.config.model import build_service
from tidegate.errors import ConfigError


def minimal(**root: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"version": 3, "endpoints": [
        {"endpoint": "/users/{id}", "backend": [
            {"host": ["localhost:9000/"], "url_pattern": "/u/{id}"}]}]}
    cfg.update(root)
    return cfg


def errors_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        build_service(data)
    return str(info.value)


def test_defaults_follow_krakend() -> None:
    svc = build_service(minimal())
    assert (svc.port, svc.timeout, svc.cache_ttl, svc.listen_ip) == (8080, 2.0, 0.0, "0.0.0.0")
    ep = svc.endpoints[0]
    assert (ep.method, ep.output_encoding, ep.concurrent_calls, ep.timeout) == (
        "GET", "", 1, 2.0)  # unset: chosen from the backends when the endpoint is compiled
    backend = ep.backend[0]
    assert backend.host == ("http://localhost:9000",)  # sanitized as KrakenD does
    assert (backend.method, backend.encoding, backend.timeout) == ("GET", "json", 2.0)


def test_root_values_are_inherited() -> None:
    data = minimal(timeout="1m30s", cache_ttl="300s", host=["http://api:1"],
                   output_encoding="negotiate")
    data["endpoints"][0]["backend"][0].pop("host")
    ep = build_service(data).endpoints[0]
    assert (ep.timeout, ep.cache_ttl, ep.output_encoding) == (90.0, 300.0, "negotiate")
    assert ep.backend[0].host == ("http://api:1",)


def test_version_must_be_3() -> None:
    assert errors_of(minimal(version=2)) == "version: unsupported version number 2: expected 3"


def test_malformed_duration_is_an_error_not_zero() -> None:
    data = minimal()
    data["endpoints"][0]["timeout"] = "10 seconds"
    assert errors_of(data) == (
        'endpoints[0].timeout: time: unknown unit " seconds" in duration "10 seconds" '
        '(expected a duration such as "1m30s", "150ms", "2h")')


def test_undefined_parameter_in_url_pattern() -> None:
    data = minimal()
    data["endpoints"][0]["backend"][0]["url_pattern"] = "/u/{user}"
    assert errors_of(data) == (
        "endpoints[0].backend[0].url_pattern: undefined parameter {user} in url_pattern "
        "'/u/{user}'; the endpoint defines: {id}")


def test_sequential_reference_needs_sequential_proxy() -> None:
    data = minimal()
    data["endpoints"][0]["backend"].append({"host": ["h"], "url_pattern": "/x/{resp0_id}"})
    assert "response references need \"sequential\": true" in errors_of(data)


def test_endpoint_without_backends() -> None:
    data = minimal()
    data["endpoints"][0]["backend"] = []
    assert errors_of(data) == ("endpoints[0].backend: endpoint GET /users/{id} has no backends: "
                               "declare at least one")


def test_unknown_encoding_lists_the_known_ones() -> None:
    data = minimal()
    data["endpoints"][0]["backend"][0]["encoding"] = "jsn"
    assert errors_of(data) == (
        "endpoints[0].backend[0].encoding: unknown encoding 'jsn': expected one of "
        "json, no-op, rss, safejson, string, xml")


def test_route_collision_names_both_endpoints() -> None:
    data = minimal()
    data["endpoints"].append({"endpoint": "/users/{other}", "backend": [
        {"host": ["h"], "url_pattern": "/"}]})
    assert errors_of(data) == ("endpoints[1].endpoint: route GET /users/{other} collides with "
                               "GET /users/{id} declared at endpoints[0]")


def test_wrong_type_says_what_was_expected() -> None:
    assert errors_of(minimal(port="80a")) == 'port: expected an integer, got string \'80a\''


def test_several_errors_are_reported_together() -> None:
    data = minimal(port=True)
    data["endpoints"][0]["method"] = "FETCH"
    text = errors_of(data)
    assert "port: expected an integer, got boolean true" in text
    assert "endpoints[0].method: unknown HTTP method 'FETCH'" in text


def test_env_overrides_root_scalars_with_types() -> None:
    out = apply_env_overrides(minimal(port=8080, name="a"), {
        "KRAKEND_PORT": "9000", "KRAKEND_NAME": "b", "KRAKEND_TIMEOUT": "5s",
        "KRAKEND_DEBUG_ENDPOINT": "true", "OTHER": "x"})
    assert (out["port"], out["name"], out["timeout"], out["debug_endpoint"]) == (
        9000, "b", "5s", True)


def test_env_override_with_bad_value_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        apply_env_overrides(minimal(), {"KRAKEND_PORT": "eighty"})
    assert str(info.value) == ("port: environment variable KRAKEND_PORT: expected an integer, "
                               "got 'eighty'")


def test_value_errors_carry_file_line_and_column(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    cfg.write_text('{\n  "version": 3,\n  "endpoints": [\n    {\n      "endpoint": "/a",\n'
                   '      "timeout": "3 s",\n      "backend": [{"host": ["h"], '
                   '"url_pattern": "/"}]\n    }\n  ]\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(cfg), {})
    assert str(info.value).startswith(f"{cfg}:6:18: endpoints[0].timeout: time: ")


def test_port_flag_wins_over_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    cfg.write_text('{"version": 3, "port": 1234, "endpoints": []}')
    assert load_config(str(cfg), {"KRAKEND_PORT": "4321"}).service.port == 4321
    assert load_config(str(cfg), {"KRAKEND_PORT": "4321"}, port=5555).service.port == 5555


def test_no_op_output_forces_no_op_backends_and_allows_only_one() -> None:
    data = minimal()
    data["endpoints"][0]["output_encoding"] = "no-op"
    assert build_service(data).endpoints[0].backend[0].encoding == "no-op"
    data["endpoints"][0]["backend"].append({"host": ["h"], "url_pattern": "/"})
    assert errors_of(data) == ("endpoints[0].output_encoding: no-op cannot be used with more "
                               "than one backend on the same endpoint")
