"""Typed model: KrakenD's defaults, and every error class with its JSON path and message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tidegate.config.loader import apply_env_overrides, load_config
from tidegate.config.model import build_service
from tidegate.config.sections import STATIC_STRATEGIES, RouterOptions
from tidegate.errors import ConfigError
from tidegate.pipeline.static import STRATEGIES


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


@pytest.mark.parametrize("name", ["jsn", "fast-json", "yaml", "form", "no_op"])
def test_unknown_encoding_decodes_as_json(name: str) -> None:
    """lura's DecoderRegister.Get falls back on the JSON decoder (lint still flags it)."""
    data = minimal()
    data["endpoints"][0]["backend"][0]["encoding"] = name
    assert build_service(data).endpoints[0].backend[0].encoding == "json"


def test_route_collision_names_both_endpoints() -> None:
    data = minimal()
    data["endpoints"].append({"endpoint": "/users/{other}", "backend": [
        {"host": ["h"], "url_pattern": "/"}]})
    assert errors_of(data) == ("endpoints[1].endpoint: route GET /users/{other} collides with "
                               "GET /users/{id} declared at endpoints[0]")


def test_wrong_type_says_what_was_expected() -> None:
    assert errors_of(minimal(port="80a")) == 'port: expected an integer, got string \'80a\''


def test_several_errors_are_reported_together() -> None:
    data = minimal(port="eighty")  # mapstructure converts true, not this
    data["endpoints"][0]["method"] = "FETCH"
    text = errors_of(data)
    assert "port: expected an integer, got string 'eighty'" in text
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


def test_env_overrides_take_their_kind_from_the_field_table() -> None:
    out = apply_env_overrides(minimal(), {"KRAKEND_USE_H2C": "true", "KRAKEND_HOST": "h"})
    assert (out["use_h2c"], out["host"]) == (True, ["h"])
    with pytest.raises(ConfigError) as info:
        apply_env_overrides(minimal(), {"KRAKEND_DIALER_KEEP_ALIVE": "5 seconds"})
    assert str(info.value).startswith("dialer_keep_alive: environment variable "
                                      "KRAKEND_DIALER_KEEP_ALIVE: time: unknown unit")
    with pytest.raises(ConfigError) as info:
        apply_env_overrides(minimal(), {"KRAKEND_CLIENT_TLS": "x"})
    assert str(info.value) == ("client_tls: environment variable KRAKEND_CLIENT_TLS: "
                               "'client_tls' is an object and cannot be set from a string")


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


# --- the core namespaces (router, proxy, backend/http), parsed once ---------------------------


def _two_backends(proxy: dict[str, Any], pattern: str = "/b") -> dict[str, Any]:
    return minimal(endpoints=[{"endpoint": "/a", "extra_config": {"proxy": proxy}, "backend": [
        {"host": ["h"], "url_pattern": "/a"}, {"host": ["h"], "url_pattern": pattern}]}])


def test_core_namespaces_are_typed_in_the_model() -> None:
    svc = build_service(minimal(
        extra_config={"router": {"return_error_msg": True, "max_payload": 10,
                                 "hide_version_header": True}},
        endpoints=[{"endpoint": "/a", "extra_config": {"proxy": {
            "strategy": "sequential", "sequential_propagated_params": ["resp0_x"],
            "static": {"strategy": "errored", "data": {"s": 1}}, "max_payload": 5,
            "flatmap_filter": [{"type": "move", "args": ["a.b", "c"]}]}},
            "backend": [{"host": ["h"], "url_pattern": "/a", "extra_config": {
                "backend/http": {"return_error_details": "a", "return_error_code": True}}},
                {"host": ["h"], "url_pattern": "/b", "extra_config": {
                    "github.com/devopsfaith/krakend/http": {"return_error_code": True}}}]}]))
    assert svc.router == RouterOptions(return_error_msg=True, hide_version_header=True,
                                       max_payload=10)
    proxy = svc.endpoints[0].proxy
    assert (proxy.sequential, proxy.propagated_params, proxy.max_payload) == (
        True, ("resp0_x",), 5)
    assert (proxy.static.strategy, dict(proxy.static.data)) == ("errored", {"s": 1})
    assert proxy.flatmap == (("move", (("a", "b"), ("c",))),)
    first, second = svc.endpoints[0].backend
    # lura: return_error_details wins whenever the key is there; legacy names apply
    assert (first.http.error_details, first.http.error_code) == ("a", False)
    assert (second.http.error_details, second.http.error_code) == (None, True)


def test_v1_attribute_names_are_ignored_as_krakend_2_does() -> None:
    svc = build_service(minimal(endpoints=[{"endpoint": "/a", "backend": [
        {"host": ["h"], "url_pattern": "/a", "whitelist": ["a"], "blacklist": ["b"]}]}]))
    backend = svc.endpoints[0].backend[0]
    assert (backend.allow, backend.deny) == ((), ())


def test_one_rule_decides_sequential_for_the_model_and_the_merge() -> None:
    # lura's getMergerFactory: `strategy` when it names a merger, else `sequential: true`
    assert build_service(_two_backends(
        {"strategy": "sequential"}, "/b/{resp0_id}")).endpoints[0].proxy.sequential
    assert not build_service(_two_backends(
        {"strategy": "parallel", "sequential": True})).endpoints[0].proxy.sequential
    assert "response references need \"sequential\": true" in errors_of(
        _two_backends({"sequential": "yes"}, "/b/{resp0_id}"))


def test_what_krakend_reads_as_unset_stays_unset() -> None:
    svc = build_service(minimal(extra_config={"router": {"return_error_msg": 1}},
                                endpoints=[{"endpoint": "/a", "backend": [{
                                    "host": ["h"], "url_pattern": "/a", "extra_config": {
                                        "backend/http": {"return_error_details": 3,
                                                         "return_error_code": "yes"}}}]}]))
    assert svc.router.return_error_msg  # truthy, as the run time always read it
    http = svc.endpoints[0].backend[0].http
    assert (http.error_details, http.error_code) == (None, False)


@pytest.mark.parametrize(("data", "message"), [
    (minimal(extra_config={"router": {"max_payload": -1}}),
     "extra_config.router.max_payload: expected a non-negative integer (bytes), got number -1"),
    (minimal(extra_config={"router": {"max_payload": True}}),
     "extra_config.router.max_payload: expected a non-negative integer (bytes), got boolean "
     "true"),
    (_two_backends({"static": ["always"]}),
     'endpoints[0].extra_config.proxy.static: expected an object with "strategy" and "data", '
     "got a list"),
    (_two_backends({"static": {"strategy": None}}),
     "endpoints[0].extra_config.proxy.static.strategy: unknown static strategy None: expected "
     "one of always, success, complete, errored, incomplete"),
    (_two_backends({"sequential": True, "sequential_propagated_params": "resp0_x"}),
     'endpoints[0].extra_config.proxy.sequential_propagated_params: expected a list of '
     "strings such as \"resp0_user.id\", got string 'resp0_x'"),
    (_two_backends({"flatmap_filter": [{"type": "append", "args": ["a", ""]}]}),
     "endpoints[0].extra_config.proxy.flatmap_filter[0].args: expected a list of non-empty "
     "dot paths, got a list"),
])
def test_core_namespace_errors_are_located_at_the_key(data: dict[str, Any],
                                                      message: str) -> None:
    assert errors_of(data) == message


def test_what_lura_does_not_read_is_not_refused() -> None:
    # one backend: no merge, so neither the endpoint's flatmap nor the propagated params
    svc = build_service(minimal(endpoints=[{"endpoint": "/a", "extra_config": {"proxy": {
        "sequential": True, "sequential_propagated_params": 7, "flatmap_filter": "x"}},
        "backend": [{"host": ["h"], "url_pattern": "/a"}]}]))
    assert svc.endpoints[0].proxy.flatmap is None


def test_the_static_middleware_knows_every_strategy_the_model_accepts() -> None:
    assert tuple(STRATEGIES) == STATIC_STRATEGIES
