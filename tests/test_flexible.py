"""Flexible configuration (FC_*) served by `tidegate run`, and reloaded under `--watch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, backend, free_port, gateway, health, request
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
        with gateway(str(tmp_path / "krakend.tmpl"), port, "--watch", "-d", env=env) as gw:
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


# --- errors in the rendered text: where they are, and which template text wrote them ---------

# The error is on the 12th line of this template; six endpoints render it to 33 lines, where
# that line is the 30th.
TWELFTH_LINE = """{
  "version": 3,
  "name": "{{ .service.name }}",
  "endpoints": [
    {{- range $i, $p := .service.paths }}{{ if $i }},{{ end }}
    {
      "endpoint": "{{ $p }}",
      "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]
    }
    {{- end }}
  ],
  "timeout": %s,
  "port": 8080
}
"""
P = "ERROR parsing the configuration file: "


def check(config: Path, env: dict[str, str]) -> tuple[int, str]:
    """`tidegate check -c config` in a real process: (exit code, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **env})
    return proc.returncode, proc.stderr


def twelfth_line_tree(root: Path, timeout: str, service: dict[str, object]) -> dict[str, str]:
    (root / "settings").mkdir()
    (root / "settings" / "service.json").write_text(json.dumps(
        {"name": "n", "paths": [f"/p{i}" for i in range(6)], **service}))
    (root / "krakend.tmpl").write_text(TWELFTH_LINE % timeout)
    return {"FC_ENABLE": "1", "FC_SETTINGS": str(root / "settings")}


def test_a_syntax_error_names_its_template_line_and_its_rendered_line(tmp_path: Path) -> None:
    env = twelfth_line_tree(tmp_path, '"3s",', {})
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert code == 1
    assert err == (
        f"{P}{tmp_path}/krakend.tmpl:12:19: invalid JSON: Expecting property name enclosed in "
        'double quotes, near `"timeout": "3s",,` (line 30:19 of the rendered output)\n')


def test_a_value_error_names_fc_out_where_its_rendered_line_can_be_read(tmp_path: Path) -> None:
    env = twelfth_line_tree(tmp_path, "{{ marshal .service.timeout }}", {"timeout": "3 secs"})
    env["FC_OUT"] = str(tmp_path / "out.json")
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert code == 1
    assert err == (
        f'{P}{tmp_path}/krakend.tmpl:12:17: timeout: time: unknown unit " secs" in duration '
        '"3 secs" (expected a duration such as "1m30s", "150ms", "2h") (line 30:14 of the '
        f"rendered output, produced by {{{{marshal .service.timeout}}}}, written to "
        f"FC_OUT={tmp_path}/out.json)\n")
    # KrakenD writes FC_OUT before parsing it: the position can be opened there
    rendered = (tmp_path / "out.json").read_text().split("\n")
    assert len(rendered) == 33 and rendered[29][13:] == '"3 secs",'


def test_an_error_written_by_a_template_file_or_a_partial_is_traced_into_it(
        tmp_path: Path) -> None:
    env = tree(tmp_path, "http://127.0.0.1:9", ["/a"])
    del env["FC_OUT"]
    templates, partials = env["FC_TEMPLATES"], env["FC_PARTIALS"]
    (tmp_path / "templates" / "endpoint.tmpl").write_text(ENDPOINT.replace("}]}", "}]]}"))
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert (code, err) == (1, (
        f"{P}{templates}/endpoint.tmpl:2:37: invalid JSON: Expecting ',' delimiter, near "
        '`"url_pattern": "/u/a"}]]}` (line 7:26 of the rendered output)\n'))

    (tmp_path / "templates" / "endpoint.tmpl").write_text(ENDPOINT)
    (tmp_path / "partials" / "extra.json").write_text('{\n  "router": {"return_error_msg": tru}\n}')
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert (code, err) == (1, (
        f"{P}{partials}/extra.json:2:34: invalid JSON: Expecting value, near "
        '`"router": {"return_error_msg": tru}` (line 10:34 of the rendered output, included by '
        f'{{{{include "extra.json"}}}} at {tmp_path}/krakend.tmpl:8:22)\n'))


def test_a_settings_file_that_is_not_json_is_reported_at_its_line_and_column(
        tmp_path: Path) -> None:
    env = tree(tmp_path, "http://127.0.0.1:9", ["/a"])
    (tmp_path / "settings" / "service.json").write_text(
        '{\n  "name": "flexible",\n  "endpoints": [}\n}')
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert (code, err) == (1, (
        f"{P}{tmp_path}/settings/service.json:3:17: loading flexible-config settings: invalid "
        'JSON: Expecting value, near `"endpoints": [}`\n'))


def test_each_of_several_value_errors_is_traced_and_health_shows_the_first(
        tmp_path: Path) -> None:
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "s.json").write_text('{"t": "3x"}')
    (tmp_path / "k.tmpl").write_text(
        '{"version": 3,\n "timeout": "{{ .s.t }}",\n "endpoints": [{"endpoint": "/a", '
        '"timeout": "{{ .s.t }}",\n  "backend": [{"host": ["http://x"], "url_pattern": "/"}]}]}')
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "k.tmpl"),
                    {"FC_ENABLE": "1", "FC_SETTINGS": str(tmp_path / "settings")})
    bad = 'time: unknown unit "x" in duration "3x" (expected a duration such as "1m30s", ' \
          '"150ms", "2h")'
    assert str(info.value).split("\n") == [
        f'{tmp_path}/k.tmpl:2:13: timeout: {bad} (line 2:13 of the rendered output: '
        '`"timeout": "3x",`)',
        f'{tmp_path}/k.tmpl:3:46: endpoints[0].timeout: {bad} (line 3:46 of the rendered '
        'output: `"endpoints": [{"endpoint": "/a", "timeout": "3x",`)']
    shown = info.value.to_dict()  # what /__health shows as last_reload_error
    assert (shown["line"], shown["col"]) == (2, 13)
    assert shown["message"].endswith("(line 2:13 of the rendered output: `\"timeout\": \"3x\",`)")


def test_reload_errors_name_the_template_and_settings_positions(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    env = tree(tmp_path, "http://127.0.0.1:9", ["/a"])
    port = free_port()
    with gateway(str(tmp_path / "krakend.tmpl"), port, "--watch", "-d", env=env) as gw:
        endpoint = tmp_path / "templates" / "endpoint.tmpl"
        replace(endpoint, ENDPOINT.replace("}]}", "}]]}"))
        gw.wait_for(f"{endpoint}:2:37: invalid JSON: Expecting ',' delimiter")
        error = health(port)["last_reload_error"]
        assert (error["file"], error["line"], error["col"]) == (str(endpoint), 2, 37)
        assert error["message"].endswith(
            "(line 7:26 of the rendered output, written to "
            f"FC_OUT={tmp_path}/out/rendered.json)")

        # settings are read before anything is rendered: their error comes first
        settings = tmp_path / "settings" / "service.json"
        replace(settings, '{\n  "name": "flexible",\n  "endpoints": [}\n}')
        gw.wait_for(f"{settings}:3:17: loading flexible-config settings: invalid JSON")
        error = health(port)["last_reload_error"]
        assert (error["file"], error["line"], error["col"]) == (str(settings), 3, 17)
        assert health(port)["generation"]["id"] == 1


def replace(path: Path, text: str) -> None:
    """Write a file in one step, so the watcher never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_warnings_of_a_flexible_config_point_at_the_template_line(tmp_path: Path) -> None:
    env = twelfth_line_tree(tmp_path, '"3s", "timout": "1s"', {})
    code, err = check(tmp_path / "krakend.tmpl", env)
    assert code == 0
    assert err.startswith(f"WARNING: {tmp_path}/krakend.tmpl:12:30: timout: unknown attribute "
                          "`timout`, did you mean `timeout`?")
    assert err.endswith("(line 30:30 of the rendered output: "
                        '`"timeout": "3s", "timout": "1s",`)\n')
