"""Flexible configuration (FC_*) served by `tidegate run`, and reloaded under `--watch`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import backend, free_port, gateway, health, request
from tidegate.config.loader import load_config
from tidegate.errors import ConfigError

pytestmark = pytest.mark.slow

TEMPLATE = """{
  "version": 3,
  "name": "{{ .service.name }}",
  "endpoints": [
    {{ range $i, $e := .service.endpoints }}{{ if $i }},{{ end }}
    {{ template "endpoint.tmpl" $e }}{{ end }}
  ],
  "extra_config": {{ include "extra.json" }}
}
"""
ENDPOINT = """{"endpoint": "{{ .path }}", "backend": [{"host": ["{{ .host }}"],
  "url_pattern": "{{ .upstream }}"}]}"""


def tree(root: Path, host: str, paths: list[str]) -> dict[str, str]:
    for d in ("settings", "partials", "templates"):
        (root / d).mkdir(exist_ok=True)
    (root / "krakend.tmpl").write_text(TEMPLATE)
    (root / "templates" / "endpoint.tmpl").write_text(ENDPOINT)
    (root / "partials" / "extra.json").write_text('{"router": {"return_error_msg": true}}')
    write_settings(root, host, paths)
    return {"FC_ENABLE": "1", "FC_SETTINGS": str(root / "settings"),
            "FC_PARTIALS": str(root / "partials"), "FC_TEMPLATES": str(root / "templates"),
            "FC_OUT": str(root / "out" / "rendered.json")}


def write_settings(root: Path, host: str, paths: list[str]) -> None:
    data = {"name": "flexible", "endpoints": [
        {"path": p, "host": host, "upstream": f"/u{p}"} for p in paths]}
    tmp = root / "settings" / ".service.json.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, root / "settings" / "service.json")


def test_rendered_config_is_loaded_and_written_to_fc_out(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    env = tree(tmp_path, "http://127.0.0.1:9", ["/a", "/b"])
    loaded = load_config(str(tmp_path / "krakend.tmpl"), env)
    assert [e.endpoint for e in loaded.service.endpoints] == ["/a", "/b"]
    assert loaded.service.extra_config == {"router": {"return_error_msg": True}}
    assert json.loads((tmp_path / "out" / "rendered.json").read_text())["name"] == "flexible"


def test_template_error_is_reported_like_go_never_the_raw_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    env = tree(tmp_path, "http://127.0.0.1:9", ["/a"])
    (tmp_path / "krakend.tmpl").write_text(
        '{"version": 3, "name": "{{ template "missing.tmpl" . }}"}')
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "krakend.tmpl"), env)
    assert str(info.value).endswith(
        'template: krakend.tmpl:1:36: executing "krakend.tmpl" at '
        '<{{template "missing.tmpl" .}}>: template "missing.tmpl" not defined')


def test_settings_change_reloads_the_gateway(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with backend() as bport:
        host = f"http://127.0.0.1:{bport}"
        env = tree(tmp_path, host, ["/a"])
        port = free_port()
        with gateway(str(tmp_path / "krakend.tmpl"), port, "--watch", env=env) as gw:
            status, _, body = request(port, "GET", "/a")
            assert status == 200 and json.loads(body)["path"] == "/u/a"
            write_settings(tmp_path, host, ["/a", "/b"])
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/b")[0] == 200
            # A broken template keeps serving generation 2 and says where it broke.
            (tmp_path / "templates" / "endpoint.tmpl").write_text('{"endpoint": "{{ .path "')
            gw.wait_for("endpoint.tmpl:1")  # a half-written file may be rejected first
            assert request(port, "GET", "/b")[0] == 200
            error = health(port)["last_reload_error"]
            assert error["kind"] == "template" and "endpoint.tmpl:1" in error["message"]
            assert health(port)["generation"]["id"] == 2
