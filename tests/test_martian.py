"""modifier/martian: what the backend receives and what the client gets back."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, free_port, gateway, request, write_config


def _endpoint(bport: int, path: str, martian: dict[str, Any], *, encoding: str = "json",
              input_headers: list[str] | None = None) -> dict[str, Any]:
    return {"endpoint": path, "output_encoding": encoding,
            "input_headers": input_headers or ["X-Remove", "X-Tier", "X-Keep"],
            "input_query_strings": ["q"],
            "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": f"/be{path}",
                         "encoding": encoding,
                         "extra_config": {"modifier/martian": martian}}]}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GROUP = {"fifo.Group": {"scope": ["request", "response"], "aggregateErrors": True, "modifiers": [
    {"header.Modifier": {"scope": ["request"], "name": "X-Set", "value": "one"}},
    {"header.Append": {"scope": ["request"], "name": "X-Set", "value": "two"}},
    {"header.Blacklist": {"scope": ["request"], "names": ["X-Remove"]}},
    {"header.Copy": {"scope": ["request"], "from": "X-Keep", "to": "X-Copied"}},
    {"querystring.Modifier": {"scope": ["request"], "name": "added", "value": "1"}},
    {"body.Modifier": {"scope": ["request"], "contentType": "text/xml; charset=utf-8",
                       "@comment": "base64", "body": b64("<soap/>")}},
    {"header.Filter": {"scope": ["request"], "name": "X-Tier", "value": "gold",
                       "modifier": {"header.Modifier": {"scope": ["request"], "name": "X-Lane",
                                                        "value": "fast"}},
                       "else": {"header.Modifier": {"scope": ["request"], "name": "X-Lane",
                                                    "value": "slow"}}}},
    {"header.RegexFilter": {"scope": ["request"], "header": "X-Keep", "regex": "^k.*p$",
                            "modifier": {"cookie.Modifier": {"scope": ["request"],
                                                             "name": "seen", "value": "yes"}}}},
]}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with backend() as bport:
        path = tmp_path_factory.mktemp("martian") / "krakend.json"
        write_config(path, {"version": 3, "endpoints": [
            _endpoint(bport, "/group", GROUP),
            _endpoint(bport, "/url", {"url.Modifier": {"scope": ["request"],
                                                       "path": "/elsewhere", "query": "x=1"}}),
            _endpoint(bport, "/raw", {"fifo.Group": {"modifiers": [
                {"header.Modifier": {"scope": ["response"], "name": "X-From-Martian",
                                     "value": "yes"}},
                {"header.Blacklist": {"scope": ["response"], "names": ["Set-Cookie"]}}]}},
                encoding="no-op"),
            _endpoint(bport, "/status", {"status.Modifier": {"scope": ["response"],
                                                             "statusCode": 202}},
                      encoding="no-op"),
        ]})
        port = free_port()
        with gateway(str(path), port):
            yield port


def test_request_modifiers_shape_what_the_backend_receives(served: int) -> None:
    status, _, body = request(served, "GET", "/group?q=z", headers={
        "X-Remove": "secret", "X-Tier": "gold", "X-Keep": "keep"})
    assert status == 200
    seen = json.loads(body)
    headers = seen["headers"]
    assert headers["X-Set"] in ("one, two", "two")  # the echo keeps the last value
    assert "X-Remove" not in headers
    assert headers["X-Copied"] == "keep" and headers["X-Lane"] == "fast"
    assert headers["Cookie"] == "seen=yes"
    assert headers["Content-Type"] == "text/xml; charset=utf-8" and seen["body"] == "<soap/>"
    assert seen["query"] in ("q=z&added=1", "added=1&q=z")


def test_filters_take_their_else_branch(served: int) -> None:
    _, _, body = request(served, "GET", "/group", headers={"X-Tier": "silver",
                                                           "X-Keep": "nope"})
    headers = json.loads(body)["headers"]
    assert headers["X-Lane"] == "slow" and "Cookie" not in headers


def test_url_modifier_changes_path_and_query(served: int) -> None:
    _, _, body = request(served, "GET", "/url")
    seen = json.loads(body)
    assert (seen["path"], seen["query"]) == ("/elsewhere", "x=1")


def test_response_modifiers_change_the_raw_answer(served: int) -> None:
    status, headers, _ = request(served, "GET", "/raw")
    assert status == 200 and headers["x-from-martian"] == "yes" and "set-cookie" not in headers
    assert request(served, "GET", "/status")[0] == 202


@pytest.mark.parametrize(("martian", "where", "text"), [
    ({"header.Nope": {}}, '["modifier/martian"]["header.Nope"]', "unknown modifier: header.Nope"),
    ({"header.RegexFilter": {"header": "A", "regex": "(", "modifier": {}}},
     '["modifier/martian"]["header.RegexFilter"].regex', "regex: "),
    ({"body.Modifier": {"body": "not base64!"}}, '["modifier/martian"]["body.Modifier"].body',
     "expected base64"),
    ({"header.Modifier": {"scope": ["both"], "name": "a"}},
     '["modifier/martian"]["header.Modifier"].scope', "invalid scope"),
])
def test_bad_modifiers_are_located_check_errors(tmp_path: Path, martian: dict[str, Any],
                                               where: str, text: str) -> None:
    """KrakenD logs a martian section it cannot parse and serves without it."""
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps({"version": 3, "endpoints": [_endpoint(9, "/x", martian)]},
                               indent=2))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1, proc.stderr
    assert f"endpoints[0].backend[0].extra_config{where}" in proc.stderr, proc.stderr
    assert text in proc.stderr
