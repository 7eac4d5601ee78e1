"""validation/json-schema: what a client sees for good and bad bodies, and bad schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, free_port, gateway, request, write_config

SCHEMA = {"type": "object", "required": ["name"], "additionalProperties": False,
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                         "tags": {"type": "array"}}}


def _config(bport: int, schema: Any = SCHEMA) -> dict[str, Any]:
    return {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [{"endpoint": "/people", "method": "POST",
                           "extra_config": {"validation/json-schema": schema},
                           "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                        "url_pattern": "/people"}]}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with backend() as bport:
        path = tmp_path_factory.mktemp("schema") / "krakend.json"
        write_config(path, _config(bport))
        port = free_port()
        with gateway(str(path), port):
            yield port


def _post(port: int, body: bytes) -> tuple[int, bytes]:
    status, _, data = request(port, "POST", "/people", body=body,
                              headers={"Content-Type": "application/json"})
    return status, data


def test_a_valid_body_reaches_the_backend_unchanged(served: int) -> None:
    body = b'{"name": "ada", "age": 36}'
    status, data = _post(served, body)
    assert status == 200 and json.loads(data)["body"] == body.decode()


def test_a_large_valid_body_is_validated_and_forwarded(served: int) -> None:
    body = json.dumps({"name": "big", "tags": ["x" * 100] * 20_000}).encode()  # ~2 MiB
    status, data = _post(served, body)
    assert status == 200 and len(json.loads(data)["body"]) == len(body)


@pytest.mark.parametrize(("body", "text"), [
    (b"", b"could not validate an empty body"),
    (b'{"name": ', b"unexpected end of JSON input"),
    (b'42', b"- (root): Invalid type. Expected: object, given: integer"),
    (b'{"age": 3}', b"- (root): name is required"),
    (b'{"name": "x", "age": -1}', b"- (root).age: -1 is less than the minimum of 0"),
])
def test_a_bad_body_is_answered_400_with_the_reasons(served: int, body: bytes,
                                                     text: bytes) -> None:
    status, data = _post(served, body)
    assert status == 400 and text in data, data


def test_an_invalid_schema_is_a_located_check_error(tmp_path: Path) -> None:
    """KrakenD logs it and serves without validation; tidegate refuses the configuration."""
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(_config(9, {"type": "object",
                                           "properties": {"age": {"type": 12}}}), indent=2))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1
    assert ('endpoints[0].extra_config["validation/json-schema"].properties.age.type: '
            "not a valid JSON Schema") in proc.stderr
    assert f"{path}:" in proc.stderr


@pytest.mark.parametrize(("body", "status", "text"), [
    # taken in one pass (msgspec types), or left to the usual way: the same answers
    (b'{"name":"ada","tags":[1,"x",{"k":null}],"age":0}', 200, b""),
    (b'{"name":"ad\xc3\xa9"}', 200, b""),                         # not ASCII: the usual way
    (b'{"name":"x","age":1e2}', 200, b""),                        # 100.0 is an integer
    (b'{"name":"x","age":9007199254740993}', 200, b""),           # beyond 2**53
    (b'{"name":"x","tags":["\xff"]}', 200, b""),                  # Go's decoder takes it
    (b'{"name":"x","tags":[1e400]}', 400,
     b"json: cannot unmarshal number 1e400 into Go value of type float64"),
    (b'{"name":"x","tags":[' + b"9" * 400 + b"]}", 400, b"json: cannot unmarshal number"),
    (b'{"name":"x","age":1.5}', 400, b"- (root).age: Invalid type. Expected: integer"),
    (b'{"name":"x","name":1}', 400, b"- (root).name: Invalid type. Expected: string"),
    (b'{"name":"x","other":1}', 400, b"Additional properties are not allowed"),
])
def test_bodies_either_way_are_answered_as_before(served: int, body: bytes, status: int,
                                                  text: bytes) -> None:
    got, data = _post(served, body)
    assert got == status and text in data, data
    if status == 200:
        assert json.loads(data)["body"].encode("utf-8", "surrogateescape") == body \
            or json.loads(data)["body"] == body.decode("utf-8", "replace")


def _paths_config(bport: int, dead: int) -> dict[str, Any]:
    def endpoint(path: str, port: int, schema: bool = True, **extra: Any) -> dict[str, Any]:
        return {"endpoint": path, "method": "POST",
                "extra_config": {"validation/json-schema": SCHEMA} if schema else {},
                "backend": [{"host": [f"http://127.0.0.1:{port}"], "url_pattern": "/people",
                             **extra}]}
    return {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [endpoint("/direct", bport),  # the endpoint awaits its backend
                          endpoint("/through", bport, concurrent_calls=2),  # the proxy does
                          endpoint("/down", dead), endpoint("/down-plain", dead, schema=False)]}


def test_the_check_then_the_backend_answers_as_the_proxy_does(tmp_path: Path) -> None:
    """A lone backend after the schema's check is awaited by the endpoint itself: the same
    answers as through the stage (concurrent calls), and a failing backend answers as it does
    for an endpoint without the check."""
    dead = free_port()
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, _paths_config(bport, dead))
        port = free_port()
        with gateway(str(path), port):
            for where in ("/direct", "/through"):
                status, _, data = request(port, "POST", where, body=b'{"name":"ada"}')
                assert status == 200 and json.loads(data)["body"] == '{"name":"ada"}'
                status, _, data = request(port, "POST", where, body=b'{"age":1}')
                assert (status, data) == (400, b"- (root): name is required")
            plain = request(port, "POST", "/down-plain", body=b'{"name":"ada"}')
            checked = request(port, "POST", "/down", body=b'{"name":"ada"}')
            assert plain[0] >= 500 and (checked[0], checked[2]) == (plain[0], plain[2])
            status, _, data = request(port, "POST", "/down", body=b"[")
            assert (status, data) == (400, b"unexpected end of JSON input")
