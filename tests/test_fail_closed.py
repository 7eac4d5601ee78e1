"""Fail closed, as a user meets it: a protection the config asks for and tidegate does not
implement stops `run` (and every reload) with a located error, unless opted out by name, loudly.

Also KrakenD's legacy namespace names (applied under their current name) and v1 attribute names
(ignored, as KrakenD 2 ignores them).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, free_port, gateway, health, request, write_config

pytestmark = pytest.mark.slow

# Namespaces tidegate does not implement yet (security/policies and API keys are KrakenD EE's,
# client credentials have no component yet), as examples.
POLICIES = {"req": {"policies": ["true"]}}
API_KEYS = {"roles": ["admin"]}
CREDENTIALS = {"client_id": "id", "client_secret": "secret",
               "token_url": "http://127.0.0.1:9/token"}


def _config(bport: int, **endpoint_extra: Any) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "timeout": "3s", "endpoints": [
        {"endpoint": "/open", "backend": [{"host": host, "url_pattern": "/open"}]},
        {"endpoint": "/private", "extra_config": endpoint_extra,
         "backend": [{"host": host, "url_pattern": "/private"}]},
    ]}


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_run_refuses_a_protection_it_does_not_implement(tmp_path: Path) -> None:
    with backend() as bport:
        data = _config(bport, **{"security/policies": POLICIES})
        config = tmp_path / "krakend.json"
        config.write_text(json.dumps(data, indent=2))
        port = free_port()
        proc = subprocess.run([sys.executable, "-m", "tidegate", "run", "-c", str(config),
                               "-p", str(port), "--workers", "1"],
                              capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1
    log = proc.stdout + proc.stderr
    assert (f"{config}:19:30: endpoints[1].extra_config[\"security/policies\"]: component "
            "`security/policies` is not implemented: requests would be served without it") in log
    assert "listening on" not in log
    assert _refused(port)


def test_the_opt_out_is_loud_in_the_log_and_on_health(tmp_path: Path) -> None:
    with backend() as bport:
        data = _config(bport, **{"security/policies": POLICIES,
                                 "auth/api-keys": API_KEYS})
        config = tmp_path / "krakend.json"
        write_config(config, data)
        port = free_port()
        env = {"TIDEGATE_ALLOW_UNIMPLEMENTED": "auth/api-keys"}
        with gateway(str(config), port, "--allow-unimplemented", "security/policies",
                     env=env) as gw:
            gw.wait_for("--allow-unimplemented security/policies: serving WITHOUT")
            warned = [line for line in gw.log if "serving WITHOUT the protection" in line]
            assert len(warned) == 2 and all("[WARNING]" in line for line in warned)
            assert "--allow-unimplemented auth/api-keys" in warned[0]
            assert health(port)["allow_unimplemented"] == ["auth/api-keys", "security/policies"]
            # What was opted out is indeed not applied (that is what the warning says).
            assert request(port, "GET", "/private")[0] == 200


def test_health_has_no_opt_out_key_when_nothing_is_opted_out(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, _config(bport))
        port = free_port()
        with gateway(str(config), port, "--allow-unimplemented", "security/policies"):
            assert "allow_unimplemented" not in health(port)


def test_a_save_that_adds_an_unimplemented_protection_is_rejected(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, _config(bport))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:  # -d: error details
            assert request(port, "GET", "/private")[0] == 200
            data = _config(bport)
            data["endpoints"][1]["backend"][0]["extra_config"] = {
                "github.com/devopsfaith/krakend-oauth2-clientcredentials": CREDENTIALS}
            data["endpoints"].append({"endpoint": "/new", "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/new"}]})
            write_config(config, data)
            gw.wait_for("configuration rejected")
            error = health(port)["last_reload_error"]
            assert error["path"] == ('endpoints[1].backend[0].extra_config'
                                     '["github.com/devopsfaith/krakend-oauth2-clientcredentials"]')
            assert "(`auth/client-credentials`) is not implemented" in error["message"]
            assert (error["file"], error["line"]) == (str(config), 26)
            assert request(port, "GET", "/new")[0] == 404  # still the last good config
            assert health(port)["generation"]["id"] == 1


def test_legacy_namespace_names_are_applied(tmp_path: Path) -> None:
    """`github_com/luraproject/lura/router/gin` is `router` in KrakenD CE 2: applied."""
    with backend() as bport:
        host = [f"http://127.0.0.1:{bport}"]
        data = {"version": 3, "extra_config": {
                    "github_com/luraproject/lura/router/gin": {"return_error_msg": True}},
                "endpoints": [{"endpoint": "/teapot", "backend": [
                    {"host": host, "url_pattern": "/status/418", "extra_config": {
                        "github.com/devopsfaith/krakend/http": {"return_error_code": True}}}]}]}
        config = tmp_path / "krakend.json"
        write_config(config, data)
        port = free_port()
        with gateway(str(config), port) as gw:
            status, _, body = request(port, "GET", "/teapot")
            assert (status, body) == (418, b"status page")
            assert not any("did you mean" in line for line in gw.log)
        proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(config)],
                              capture_output=True, text=True, timeout=60, cwd=str(ROOT))
        assert proc.returncode == 0
        assert ("`github_com/luraproject/lura/router/gin` is a KrakenD v1 namespace: "
                "use `router`") in proc.stderr


def test_v1_attribute_names_are_ignored_as_krakend_2_does(tmp_path: Path) -> None:
    with backend() as bport:
        host = [f"http://127.0.0.1:{bport}"]
        data = {"version": 3, "endpoints": [
            {"endpoint": "/v1", "headers_to_pass": ["Authorization"],
             "querystring_params": ["q"],
             "backend": [{"host": host, "url_pattern": "/echo", "whitelist": ["path"]}]},
            {"endpoint": "/v3", "input_headers": ["Authorization"], "input_query_strings": ["q"],
             "backend": [{"host": host, "url_pattern": "/echo", "allow": ["path", "query",
                                                                          "headers"]}]}]}
        config = tmp_path / "krakend.json"
        write_config(config, data)
        port = free_port()
        with gateway(str(config), port) as gw:
            auth = {"Authorization": "Bearer secret"}
            _, _, body = request(port, "GET", "/v1?q=1", headers=auth)
            v1 = json.loads(body)
            assert v1["query"] == "" and "Authorization" not in v1["headers"]
            assert "method" in v1  # whitelist ignored: every field is there
            _, _, body = request(port, "GET", "/v3?q=1", headers=auth)
            v3 = json.loads(body)
            assert v3["query"] == "q=1" and v3["headers"]["Authorization"] == "Bearer secret"
            assert any("`headers_to_pass` is a KrakenD v1 name, ignored by KrakenD 2 and "
                       "tidegate: use `input_headers`" in line for line in gw.log)
        proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-lc", str(config)],
                              capture_output=True, text=True, timeout=60, cwd=str(ROOT))
        assert proc.returncode == 1
        assert (f"ERROR linting the configuration file: {config}:9:29: "
                "endpoints[0].querystring_params: `querystring_params` is a KrakenD v1 name, "
                "ignored by KrakenD 2 and tidegate: use `input_query_strings`") in proc.stderr
