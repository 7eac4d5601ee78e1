"""Python plugins under KrakenD's plugin namespaces, as a user wires them in a config."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.support import ROOT, backend, free_port, gateway, request, write_config

EXAMPLES = ROOT / "examples" / "plugins"


def _config(bport: int, folder: Path = EXAMPLES, **root_extra: Any) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "plugin": {"pattern": ".so", "folder": str(folder)},
            "extra_config": root_extra,
            "endpoints": [
                {"endpoint": "/items/{id}", "backend": [
                    {"host": host, "url_pattern": "/items/{id}",
                     "extra_config": {"plugin/http-client": {
                         "name": "stamp-client",
                         "stamp-client": {"header": "X-Gateway", "value": "tg"}}}}],
                 "extra_config": {"plugin/req-resp-modifier": {
                     "name": ["rename-fields"],
                     "rename-fields": {"rename": {"path": "backend_path"},
                                       "request_header": ["X-Modified", "yes"],
                                       "forbid_param": "Id"}}}}]}


GUARD = {"plugin/http-server": {"name": ["api-key-guard"],
                                "api-key-guard": {"keys": ["s3cret"]}}}


def test_the_three_kinds_of_plugin_serve_a_request(tmp_path: Path) -> None:
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, _config(bport, **GUARD))
        port = free_port()
        with gateway(str(path), port):
            refused = request(port, "GET", "/items/7")
            ok = request(port, "GET", "/items/7", headers={"X-Api-Key": "s3cret"})
            forbidden = request(port, "GET", "/items/0", headers={"X-Api-Key": "s3cret"})
            health = request(port, "GET", "/__health")
    assert (refused[0], refused[2]) == (401, b"missing or unknown API key")
    assert ok[0] == 200
    data = json.loads(ok[2])
    assert data["backend_path"] == "/items/7" and "path" not in data
    assert data["headers"]["X-Gateway"] == "tg" and data["headers"]["X-Modified"] == "yes"
    assert forbidden[0] == 403
    assert health[0] == 200  # skip_paths


def _check(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))


def test_a_plugin_that_is_not_installed_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    data = _config(9, **{"plugin/http-server": {"name": ["api-key-guard", "krakend-geoip"]}})
    data["extra_config"]["plugin/http-server"]["api-key-guard"] = {"keys": ["k"]}
    path.write_text(json.dumps(data, indent=2))
    proc = _check(path)
    assert proc.returncode == 1
    assert ('extra_config["plugin/http-server"].name[1]: plugin \'krakend-geoip\' is not '
            "installed: no entry point 'krakend-geoip' in group 'tidegate.plugins' and no "
            "krakend-geoip.py in the plugin folder") in proc.stderr
    assert f"{path}:" in proc.stderr


def test_a_plugin_of_the_wrong_kind_or_refusing_its_settings_is_a_located_error(
        tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    data = _config(9, **{"plugin/http-server": {"name": "stamp-client"}})
    path.write_text(json.dumps(data))
    proc = _check(path)
    assert proc.returncode == 1
    assert ("plugin 'stamp-client' is a HttpClientPlugin, not the HttpServerPlugin that "
            "plugin/http-server needs") in proc.stderr
    data = _config(9, **{"plugin/http-server": {"name": ["api-key-guard"]}})
    path.write_text(json.dumps(data))
    proc = _check(path)
    assert proc.returncode == 1
    assert ("name[0]: plugin 'api-key-guard': api-key-guard: `keys` must list at least one key"
            in proc.stderr)


def test_plugins_are_found_by_entry_point(tmp_path: Path) -> None:
    """An installed distribution's `tidegate.plugins` entry point (a dist-info on the path)."""
    site = tmp_path / "site"
    (site / "acme_plugins").mkdir(parents=True)
    (site / "acme_plugins" / "__init__.py").write_text(textwrap.dedent("""
        from tidegate.messages import Response
        from tidegate.plugins import HttpServerPlugin

        def build(config, nxt):
            async def teapot(req):
                if req.path == config["path"]:
                    return Response(418, [("Content-Type", "text/plain")], b"short and stout")
                return await nxt(req)
            return teapot

        plugin = HttpServerPlugin(build)
    """))
    dist = site / "acme_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tidegate.plugins]\nteapot = acme_plugins:plugin\n")
    with backend() as bport:
        path = tmp_path / "krakend.json"
        data = {"version": 3, "extra_config": {"plugin/http-server": {
            "name": ["teapot"], "teapot": {"path": "/brew"}}},
            "endpoints": [{"endpoint": "/x", "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/x"}]}]}
        write_config(path, data)
        port = free_port()
        with gateway(str(path), port, env={"PYTHONPATH": f"{ROOT}:{site}"}):
            brewed = request(port, "GET", "/brew")
            passed = request(port, "GET", "/x")
    assert (brewed[0], brewed[2]) == (418, b"short and stout") and passed[0] == 200
