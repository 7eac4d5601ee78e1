"""`security/cors` as a browser sees it through a real gateway: preflights answered before
routing (204, not 405), rs/cors's header rules, Vary, an endpoint's own section, check -l."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, exchange, free_port, gateway, write_config
from tests.support import header_values as values

pytestmark = pytest.mark.slow

CORS = {"allow_origins": ["http://app.test", "https://*.example.com"],
        "allow_methods": ["GET", "PUT"], "allow_headers": ["Authorization", "Content-Type"],
        "expose_headers": ["x-request-id", "Content-Length"], "max_age": "10m"}


def config(bport: int, root: dict[str, Any] | None, **endpoint_extra: Any) -> dict[str, Any]:
    def ep(path: str, method: str = "GET", extra: dict[str, Any] | None = None
           ) -> dict[str, Any]:
        return {"endpoint": path, "method": method, "extra_config": extra or {},
                "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/echo"}]}

    return {"version": 3, "extra_config": {"security/cors": root} if root is not None else {},
            "endpoints": [ep("/users"), ep("/users", "PUT"),
                          ep("/own", extra={"security/cors": endpoint_extra["own"]}
                             if "own" in endpoint_extra else None)]}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with backend() as bport:
        cfg = tmp_path_factory.mktemp("cors") / "krakend.json"
        write_config(cfg, config(bport, CORS, own={"allow_origins": ["http://own.test"]}))
        gport = free_port()
        with gateway(str(cfg), gport):
            yield gport


PREFLIGHT = {"Origin": "http://app.test", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.mark.parametrize("path", ["/own", "/nowhere/at/all"])
def test_preflight_is_answered_before_routing(port: int, path: str) -> None:
    """/own has only GET (OPTIONS would be 405) and /nowhere does not exist (404): rs/cors
    answers both in front of the router, as in KrakenD CE."""
    status, headers, body = exchange(port, "OPTIONS", path, PREFLIGHT)
    assert (status, body) == (204, b"")
    assert values(headers, "access-control-allow-origin") == ["http://app.test"]
    assert values(headers, "access-control-allow-methods") == ["GET"]
    assert values(headers, "access-control-allow-headers") == ["authorization,content-type"]
    assert values(headers, "access-control-max-age") == ["600"]
    assert values(headers, "vary") == [
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
    assert not values(headers, "x-krakend-completed") and not values(headers, "content-type")


@pytest.mark.parametrize("asked", [
    {"Access-Control-Request-Method": "DELETE"},                      # method not allowed
    {"Access-Control-Request-Headers": "x-pingother"},                # header not allowed
    {"Access-Control-Request-Headers": "content-type,authorization"},  # not sorted
    {"Access-Control-Request-Headers": "Authorization"},              # not lower-case
    {"Origin": "http://evil.test"},                                   # origin not allowed
    {"Origin": "https://example.com"},                                # wildcard needs a label
])
def test_a_refused_preflight_is_a_silent_204(port: int, asked: dict[str, str]) -> None:
    status, headers, body = exchange(port, "OPTIONS", "/users", {**PREFLIGHT, **asked})
    assert (status, body) == (204, b"")
    assert [k for k, _ in headers if k.startswith("access-control-")] == []
    assert values(headers, "vary") == [
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]


def test_actual_request_gets_origin_expose_headers_and_vary(port: int) -> None:
    status, headers, body = exchange(port, "GET", "/users", {"Origin": "https://a.example.com"})
    assert status == 200 and json.loads(body)["path"] == "/echo"
    assert values(headers, "vary") == ["Origin"]
    assert values(headers, "access-control-allow-origin") == ["https://a.example.com"]
    assert values(headers, "access-control-expose-headers") == ["X-Request-Id, Content-Length"]
    # the router's own answers pass through CORS too
    status, headers, _ = exchange(port, "GET", "/nowhere", {"Origin": "http://app.test"})
    assert status == 404 and values(headers, "access-control-allow-origin") == ["http://app.test"]
    # without Origin only Vary is added; an OPTIONS without the request method is routed
    status, headers, _ = exchange(port, "GET", "/users")
    assert values(headers, "vary") == ["Origin"] and not values(
        headers, "access-control-allow-origin")
    assert exchange(port, "OPTIONS", "/users", {"Origin": "http://app.test"})[0] == 405


def test_an_endpoint_section_replaces_the_root_one_on_its_answers(port: int) -> None:
    status, headers, _ = exchange(port, "GET", "/own", {"Origin": "http://own.test"})
    assert status == 200
    assert values(headers, "access-control-allow-origin") == ["http://own.test"]
    assert values(headers, "vary") == ["Origin"]
    status, headers, _ = exchange(port, "GET", "/own", {"Origin": "http://app.test"})
    assert not values(headers, "access-control-allow-origin")


def test_defaults_credentials_and_passthrough(tmp_path: Path) -> None:
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, {"allow_credentials": True, "options_passthrough": True,
                                         "options_success_status": 200}))
        gport = free_port()
        with gateway(str(cfg), gport):
            # passthrough: the router answers the preflight (405: /own is GET only), with
            # the CORS headers; default allow_headers is any, default origins any
            status, headers, _ = exchange(gport, "OPTIONS", "/own", {
                "Origin": "http://x.test", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-anything"})
            assert status == 405
            assert values(headers, "access-control-allow-origin") == ["*"]
            assert values(headers, "access-control-allow-credentials") == ["true"]
            assert values(headers, "access-control-allow-headers") == ["x-anything"]


def _check(tmp_path: Path, data: dict[str, Any], *flags: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "krakend.json"
    cfg.write_text(json.dumps(data, indent=2))
    return subprocess.run([sys.executable, "-m", "tidegate", "check", *flags, "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))


def test_check_refuses_values_krakend_would_drop(tmp_path: Path) -> None:
    proc = _check(tmp_path, config(9, {"allow_origins": "*"}))
    assert proc.returncode == 1
    assert ':5:24: extra_config["security/cors"].allow_origins: allow_origins must be a list ' \
        "of strings" in proc.stderr


def test_check_lint_validates_the_section_against_its_schema(tmp_path: Path) -> None:
    proc = _check(tmp_path, config(9, {"allow_origin": ["*"], "allow_methods": ["get"]}), "-l")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "allow_origin" in out and "allow_methods" in out


def test_a_reload_applies_the_new_section_to_the_next_preflight(tmp_path: Path) -> None:
    with backend() as bport:
        cfg = tmp_path / "krakend.json"
        write_config(cfg, config(bport, {"allow_origins": ["http://old.test"]}))
        gport = free_port()
        asked = {**PREFLIGHT, "Origin": "http://new.test"}
        with gateway(str(cfg), gport, "--watch") as gw:
            _, headers, _ = exchange(gport, "OPTIONS", "/users", asked)
            assert not values(headers, "access-control-allow-origin")
            write_config(cfg, config(bport, {"allow_origins": ["http://new.test"]}))
            gw.wait_for("generation 2 active")
            _, headers, _ = exchange(gport, "OPTIONS", "/users", asked)
            assert values(headers, "access-control-allow-origin") == ["http://new.test"]
