"""validation/cel: requests and responses let through or aborted as KrakenD does, and
expressions KrakenD would drop or switch off refused at ``check`` with their location."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.jwt_support import AUDIENCE, ISSUER, claims, rsa_key, sign
from tests.support import ROOT, backend, free_port, gateway, health, request, write_config

ENDPOINT_CEL = [
    {"check_expr": "'yes' in req_headers['X-Token']"},                 # pre #0
    {"check_expr": "int(req_params.Id) % 2 == 0"},                     # pre #1
    {"check_expr": "resp_data.backend1.method == 'GET'"},              # post #0
    {"check_expr": "!('deny' in req_querystring) && req_method == 'GET'"},  # pre #2
]


def _config(bport: int) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [
                {"endpoint": "/items/{id}", "input_headers": ["X-Token"],
                 "input_query_strings": ["deny"],
                 "extra_config": {"validation/cel": ENDPOINT_CEL},
                 "backend": [
                     {"host": host, "url_pattern": "/one/{id}", "group": "backend1",
                      "extra_config": {"validation/cel": [
                          {"check_expr": "req_path.startsWith('/one/')"}]}},
                     {"host": host, "url_pattern": "/two/{id}", "group": "backend2",
                      "extra_config": {"validation/cel": [
                          {"check_expr": "int(req_params.Id) % 4 == 0"},
                          {"check_expr":
                           "resp_completed && resp_data.backend2.path == '/two/8'"}]}},
                 ]},
                {"endpoint": "/plain/{id}",
                 "backend": [{"host": host, "url_pattern": "/plain/{id}"}]},
            ]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with backend() as bport:
        path = tmp_path_factory.mktemp("cel") / "krakend.json"
        write_config(path, _config(bport))
        port = free_port()
        with gateway(str(path), port) as gw:
            yield port, gw


def _get(port: int, path: str, token: str | None = "yes") -> tuple[int, dict[str, str], bytes]:
    headers = {"X-Token": token} if token is not None else {}
    return request(port, "GET", path, headers=headers)


def test_all_evaluators_pass_and_every_backend_answers(served: Any) -> None:
    status, headers, body = _get(served[0], "/items/8")
    data = json.loads(body)
    assert status == 200 and headers["x-krakend-completed"] == "true"
    assert data["backend1"]["path"] == "/one/8" and data["backend2"]["path"] == "/two/8"


@pytest.mark.parametrize(("path", "token", "text"), [
    ("/items/8", None, b"request aborted by evaluator #0"),       # no such header: eval error
    ("/items/8", "no", b"request aborted by evaluator #0"),       # false
    ("/items/3", "yes", b"request aborted by evaluator #1"),      # numbered in the pre list
    ("/items/8?deny=1", "yes", b"request aborted by evaluator #2"),  # 4th entry, 3rd pre
])
def test_a_request_evaluator_that_says_no_is_a_500_with_its_number(
        served: Any, path: str, token: str | None, text: bytes) -> None:
    status, headers, body = _get(served[0], path, token)
    assert (status, body) == (500, text)
    assert headers["x-krakend-completed"] == "false"


def test_a_backend_evaluator_fails_only_its_backend(served: Any) -> None:
    """/items/6: the endpoint lets it through, backend2's pre check (6 % 4) does not."""
    status, headers, body = _get(served[0], "/items/6")
    data = json.loads(body)
    assert status == 200 and headers["x-krakend-completed"] == "false"
    assert list(data) == ["backend1"] and data["backend1"]["path"] == "/one/6"


def test_a_backend_response_evaluator_fails_its_backend_after_the_call(served: Any) -> None:
    """/items/4: backend2 is called (4 % 4 == 0) but its answer's path is not /two/8."""
    status, headers, body = _get(served[0], "/items/4")
    assert status == 200 and headers["x-krakend-completed"] == "false"
    assert list(json.loads(body)) == ["backend1"]


def test_an_unchecked_endpoint_is_untouched(served: Any) -> None:
    status, _, body = _get(served[0], "/plain/1", None)
    assert status == 200 and json.loads(body)["path"] == "/plain/1"


def _check(tmp_path: Path, cel: Any, *,
           backend_level: bool = False) -> subprocess.CompletedProcess[str]:
    config = _config(9)
    if backend_level:
        config["endpoints"][1]["backend"][0]["extra_config"] = {"validation/cel": cel}
    else:
        config["endpoints"][1]["extra_config"] = {"validation/cel": cel}
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(config, indent=2))
    return subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))


def test_the_configuration_checks(tmp_path: Path) -> None:
    proc = _check(tmp_path, [{"check_expr": "req_method == 'GET'"}])
    assert proc.returncode == 0, proc.stderr


def test_a_syntax_error_is_refused_with_its_location(tmp_path: Path) -> None:
    """KrakenD logs a warning and serves the endpoint with no CEL at all."""
    proc = _check(tmp_path, [{"check_expr": "req_method == 'GET'"},
                             {"check_expr": "req_method == "}])
    assert proc.returncode == 1
    assert (f'{tmp_path / "krakend.json"}:' in proc.stderr)
    assert ('endpoints[1].extra_config["validation/cel"][1].check_expr: CEL syntax error: '
            "<input>:1:12: Syntax error: unexpected end of expression") in proc.stderr


def test_a_type_error_is_refused_with_the_checker_message(tmp_path: Path) -> None:
    """KrakenD drops the expression silently (a debug line) and serves without it."""
    proc = _check(tmp_path, [{"check_expr": "resp_metadata_status == '200'"}],
                  backend_level=True)
    assert proc.returncode == 1
    assert ('endpoints[1].backend[0].extra_config["validation/cel"][0].check_expr: CEL type '
            "error: <input>:1:22: found no matching overload for '_==_' applied to "
            "'(int, string)'") in proc.stderr


@pytest.mark.parametrize(("expr", "text"), [
    ("req_params.Id + 1 > 2", "found no matching overload for '_+_' applied to '(string, int)'"),
    ("req_paht == '/'", "undeclared reference to 'req_paht'"),
    ("size(req_headers) + 1", "is of type int: only true lets a request through"),
    ("now != ''", "mentions none of req, resp or JWT"),
    ("JWT.sub == 'x'", "JWT expression in an endpoint without auth/validator is never evaluated"),
])
def test_expressions_krakend_would_never_apply_are_refused(tmp_path: Path, expr: str,
                                                           text: str) -> None:
    proc = _check(tmp_path, [{"check_expr": expr}])
    assert proc.returncode == 1 and text in proc.stderr, proc.stderr


def test_a_jwt_expression_in_a_backend_is_refused(tmp_path: Path) -> None:
    proc = _check(tmp_path, [{"check_expr": "JWT.sub == 'x'"}], backend_level=True)
    assert proc.returncode == 1
    assert ('endpoints[1].backend[0].extra_config["validation/cel"][0].check_expr: a JWT '
            "expression in a backend is never evaluated") in proc.stderr


@pytest.fixture(scope="module")
def jwt_served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """/me: auth/validator (RS256, local key set) and CEL on the claims and on the request."""
    key = rsa_key("k1")
    folder = tmp_path_factory.mktemp("celjwt")
    keys = folder / "jwk.json"
    keys.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    with backend() as bport:
        config = {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
                  "endpoints": [{
                      "endpoint": "/me", "input_query_strings": ["deny"], "backend": [
                          {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/me"}],
                      "extra_config": {
                          "auth/validator": {"alg": "RS256", "jwk_local_path": str(keys),
                                             "issuer": ISSUER, "audience": [AUDIENCE],
                                             "roles_key": "roles", "roles": ["a", "b"]},
                          "validation/cel": [
                              {"check_expr": "size(JWT.roles) > 1"},              # JWT #0
                              {"check_expr": "!('deny' in req_querystring)"},     # pre #0
                              {"check_expr": "JWT.sub.startsWith('user-')"},      # JWT #1
                          ]}}]}
        path = folder / "krakend.json"
        write_config(path, config)
        port = free_port()
        with gateway(str(path), port):
            yield port, key


@pytest.mark.parametrize(("roles", "sub", "status"), [
    (["a", "b"], "user-1", 200),
    (["a"], "user-1", 401),       # the validator accepts (role a), JWT #0 rejects
    (["a", "b"], "bot-1", 401),   # JWT #1 rejects
])
def test_jwt_expressions_see_the_verified_claims(jwt_served: Any, roles: list[str], sub: str,
                                                 status: int) -> None:
    port, key = jwt_served
    token = sign(key, claims(roles=roles, sub=sub))
    got, headers, body = request(port, "GET", "/me", headers={"Authorization": f"Bearer {token}"})
    assert got == status
    if status == 401:  # KrakenD's AbortWithStatus: no body, no Content-Type
        assert body == b"" and "content-type" not in headers
    else:
        assert json.loads(body)["path"] == "/me"


def test_request_expressions_are_numbered_apart_from_the_jwt_ones(jwt_served: Any) -> None:
    port, key = jwt_served
    token = sign(key, claims(roles=["a", "b"]))
    status, _, body = request(port, "GET", "/me?deny=1",
                              headers={"Authorization": f"Bearer {token}"})
    assert (status, body) == (500, b"request aborted by evaluator #0")


def test_watch_keeps_the_last_good_generation_on_a_bad_expression(tmp_path: Path) -> None:
    """A saved syntax or type error is refused like any config error: the endpoint keeps its
    checks (KrakenD would restart serving it with no CEL at all)."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, _config(bport))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:
            for generation, bad in enumerate(["req_method == ", "req_method == 1"], start=2):
                data = _config(bport)
                data["endpoints"][0]["extra_config"]["validation/cel"][1] = {"check_expr": bad}
                write_config(config, data)
                gw.wait_for("configuration rejected")
                error = health(port)["last_reload_error"]
                assert error["path"] == 'endpoints[0].extra_config["validation/cel"][1].check_expr'
                assert ("CEL syntax error" if generation == 2 else "CEL type error") \
                    in error["message"]
                assert health(port)["generation"]["id"] == 1
                status, _, body = _get(port, "/items/3")  # the old checks still apply
                assert (status, body) == (500, b"request aborted by evaluator #1")
