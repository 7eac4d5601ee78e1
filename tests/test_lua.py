"""modifier/lua-endpoint, lua-proxy, lua-backend: what clients and backends see, the sandbox,
the budget, and the configuration errors `check` reports."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, free_port, gateway, request, write_config

HELPERS = """
function add_marks(resp)
  local data = resp:data()
  data:set("from_lua", "yes")
  data:set("nested", {a = 1, b = {10, 20}, c = {}})
  local list = luaList.new()
  list:set(0, "zero")
  list:set(2, 2.5)
  data:set("list", list)
  data:set("null", luaNil.new())
  data:del("server")
  resp:headers("X-Lua-Post", "done")
end
"""


def _backend(bport: int, pattern: str = "/echo", **extra: Any) -> dict[str, Any]:
    return {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": pattern, **extra}


def _ep(path: str, bport: int, extra: dict[str, Any] | None = None,
        backend_extra: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    be = _backend(bport, extra_config=backend_extra) if backend_extra else _backend(bport)
    return {"endpoint": path, "input_headers": ["*"], "input_query_strings": ["*"],
            "backend": [be], **({"extra_config": extra} if extra else {}), **more}


def _config(bport: int, helpers: Path) -> dict[str, Any]:
    lua_ep = "modifier/lua-endpoint"
    return {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [
                _ep("/router", bport, {lua_ep: {"pre": (
                    "local r = ctx.load()\n"
                    "r:headers('X-From-Lua', r:method() .. ' ' .. r:url())\n"
                    "r:headers('X-Drop', nil)\n"
                    "r:query('added', 'q1')\n"
                    "r:headers('X-Param', r:params('id'))")}}),
                _ep("/router/{id}", bport, {lua_ep: {"pre": (
                    "local r = ctx.load()\n"
                    "r:headers('X-Param', r:params('id'))")}}),
                _ep("/teapot", bport, {lua_ep: {"pre": (
                    "custom_error('no coffee', 418, 'application/json')")}}),
                _ep("/router-fail", bport, {lua_ep: {"pre": "local x = nil\nx.y = 1"}}),
                _ep("/proxy", bport, {"modifier/lua-proxy": {
                    "sources": [str(helpers)], "post": "add_marks(response.load())",
                    "pre": "local r = request.load(); r:headers('X-Proxy-Pre', 'p')"}}),
                _ep("/backend", bport, backend_extra={"modifier/lua-backend": {
                    "pre": ("local r = request.load()\n"
                            "r:url(r:url() .. '/rewritten')\n"
                            "r:headers('X-Backend-Pre', r:headers('X-Client'))"),
                    "post": ("local resp = response.load()\n"
                             "resp:data():set('status_seen', resp:statusCode())")}}),
                _ep("/skip", bport, backend_extra={"modifier/lua-backend": {
                    "skip_next": True,
                    "post": "response.load():data():set('skipped', true)"}}),
                _ep("/numbers", bport, {"modifier/lua-proxy": {
                    "allow_open_libs": True,
                    "post": ("local d = response.load():data()\n"
                             "d:set('third', tostring(1/3))\n"
                             "d:set('big', tostring(1e15))\n"
                             "d:set('int', tostring(42))\n"
                             "d:set('sum', 0.1 + 0.2)")}}),
                _ep("/error-line", bport, {"modifier/lua-proxy": {
                    "sources": [str(helpers)], "pre": "\nadd_marks(nil)"}}),
                _ep("/custom-plain", bport, {"modifier/lua-proxy": {
                    "pre": "custom_error('plain failure')"}}),
                _ep("/custom-status", bport, backend_extra={"modifier/lua-backend": {
                    "pre": "custom_error('{\"why\":\"no\"}', 403, 'application/json')"}}),
                _ep("/keep", bport, {"modifier/lua-proxy": {
                    "allow_open_libs": True,
                    "pre": ("local r = request.load()\n"
                            "if stash ~= nil or string.stash ~= nil or ('').stash ~= nil then\n"
                            "  custom_error('leak: ' .. tostring(stash), 409)\n"
                            "end\n"
                            "stash = r:headers('X-Secret')\n"
                            "string.stash = stash\n"
                            "getmetatable('').__index.stash = stash")}}),
                _ep("/keep-bare", bport, {"modifier/lua-proxy": {
                    "pre": ("if stash ~= nil then custom_error('leak: ' .. stash, 409) end\n"
                            "stash = request.load():headers('X-Secret')")}}),
                _ep("/no-libs", bport, {"modifier/lua-proxy": {
                    "pre": "local f = io.open('/etc/passwd')"}}),
                _ep("/no-os", bport, {"modifier/lua-proxy": {
                    "pre": "os.execute('touch /tmp/x')"}}),
                _ep("/no-python", bport, {"modifier/lua-proxy": {
                    "pre": "local r = request.load(); local c = r.__class__"}}),
                _ep("/loop", bport, {"modifier/lua-proxy": {
                    "allow_open_libs": True, "max_instructions": 5_000_000,
                    "pre": "while true do pcall(function() while true do end end) end"}}),
                # the three call forms lupa accepts on its objects, and a helper's error in a
                # method located at the script's line
                _ep("/call-forms", bport, {lua_ep: {"pre": (
                    "local r = ctx.load()\n"
                    "r:headers('X-Forms', r.headers('X-Client') .. r.headers(r, 'X-Client')"
                    " .. r:headers('X-Client') .. ctx.load():method())")}}),
                _ep("/method-error", bport, {"modifier/lua-proxy": {
                    "pre": "local r = request.load()\n\nlocal x = r:headerList()"}}),
                _ep("/set-field", bport, {"modifier/lua-proxy": {
                    "pre": "local r = request.load()\nr.headers = nil"}}),
                # header writes kept in Lua: later reads, deletes and other methods see them
                _ep("/kept-writes", bport, {lua_ep: {"pre": (
                    "local r = ctx.load()\n"
                    "r:headers('X-A', 'one')\n"
                    "r.headers('x-a', r:headers('X-A') .. '+two')\n"
                    "r:headers('X-Gone', 'soon')\n"
                    "r:headers('X-GONE', nil)\n"
                    "r:headers('X-Count', #r:headerList('X-A'):get(0))")}}),
                _ep("/frozen", bport, {lua_ep: {"pre": "luaTable.stash = 1"}}),
                _ep("/frozen-rawset", bport, {"modifier/lua-proxy": {
                    "allow_open_libs": True,
                    "pre": "local r = request.load()\nrawset(r, 'stash', 1)"}}),
                _ep("/slow-loop", bport, {"modifier/lua-proxy": {
                    "max_time": "300ms",
                    "pre": "while true do end"}}),
            ]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("lua")
    helpers = tmp / "helpers.lua"
    helpers.write_text(HELPERS)
    with backend() as bport:
        path = tmp / "krakend.json"
        write_config(path, _config(bport, helpers))
        port = free_port()
        with gateway(str(path), port) as gw:
            yield port, gw


def _get(port: int, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    return request(port, "GET", path, headers=headers)


def test_router_script_changes_the_request_the_backend_receives(served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/router?x=1", {"X-Drop": "gone"})
    echo = json.loads(body)
    assert status == 200
    assert echo["headers"]["X-From-Lua"] == "GET /router?x=1"
    assert "X-Drop" not in echo["headers"]
    assert echo["query"] == "added=q1&x=1"
    status, _, body = _get(port, "/router/42")
    assert json.loads(body)["headers"]["X-Param"] == "42"


def test_router_custom_error_answers_its_status_and_content_type_without_body(
        served: Any) -> None:
    port, _ = served
    status, headers, body = _get(port, "/teapot")
    assert (status, headers.get("content-type"), body) == (418, "application/json", b"")


def test_router_runtime_error_is_500_and_logged(served: Any) -> None:
    port, gw = served
    status, _, body = _get(port, "/router-fail")
    assert (status, body) == (500, b"")
    gw.wait_for("[ENDPOINT: /router-fail][Lua] attempt to index local 'x' (a nil value) "
                "(pre-script:L2)")


def test_proxy_post_changes_data_and_headers_with_krakend_conversions(served: Any) -> None:
    port, _ = served
    status, headers, body = _get(port, "/proxy", {"X-Client": "c"})
    data = json.loads(body)
    assert status == 200
    assert data["from_lua"] == "yes"
    # a native table: an object with string keys; nested integer keys: an array; {}: null
    assert data["nested"] == {"a": 1, "b": [10, 20], "c": None}
    assert data["list"] == ["zero", None, 2.5] and data["null"] is None
    assert "server" not in data
    assert data["headers"]["X-Proxy-Pre"] == "p"
    assert headers["x-lua-post"] == "done"


def test_backend_script_rewrites_the_url_and_reads_the_status(served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/backend", {"X-Client": "c"})
    data = json.loads(body)
    assert status == 200
    assert data["path"] == "/echo/rewritten"
    assert data["headers"]["X-Backend-Pre"] == "c"
    assert data["status_seen"] == 200


def test_skip_next_never_calls_the_backend(served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/skip")
    assert status == 200 and json.loads(body) == {"skipped": True}


def test_numbers_print_as_gopher_lua_prints_them(served: Any) -> None:
    port, _ = served
    data = json.loads(_get(port, "/numbers")[2])
    assert data["third"] == "0.3333333333333333"  # C Lua would say 0.33333333333333
    assert data["big"] == "1000000000000000"       # C Lua would say 1e+15
    assert data["int"] == "42" and data["sum"] == pytest.approx(0.3)


def test_runtime_error_names_the_source_file_and_line(served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/error-line")
    assert status == 500
    assert body == b"attempt to index local 'resp' (a nil value) (helpers.lua:L3)"


def test_custom_error_without_status_is_a_plain_500(served: Any) -> None:
    port, _ = served
    assert _get(port, "/custom-plain")[::2] == (500, b"plain failure")


def test_custom_error_with_status_reaches_the_client(served: Any) -> None:
    port, _ = served
    status, headers, body = _get(port, "/custom-status")
    assert (status, body) == (403, b'{"why":"no"}')
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/keep", "/keep-bare"])
def test_a_script_cannot_read_another_requests_data(served: Any, path: str) -> None:
    port, _ = served
    for secret in ("first", "second", "third"):
        status, _, body = _get(port, path, {"X-Secret": secret})
        assert status == 200, body


@pytest.mark.parametrize(("path", "message"), [
    ("/no-libs", b"attempt to index global 'io' (a nil value) (pre-script:L1)"),
    ("/no-os", b"attempt to index global 'os' (a nil value) (pre-script:L1)"),
    ("/no-python", b"'__class__' is not accessible (pre-script:L1)"),
])
def test_without_open_libs_there_are_no_files_processes_or_python(
        served: Any, path: str, message: bytes) -> None:
    port, _ = served
    assert _get(port, path)[::2] == (500, message)


def test_methods_answer_in_every_call_form_and_errors_name_the_script_line(
        served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/call-forms", {"X-Client": "c"})
    assert status == 200
    assert json.loads(body)["headers"]["X-Forms"] == "cccGET"
    assert _get(port, "/method-error")[::2] == (500, b"need arguments (pre-script:L3)")
    assert _get(port, "/set-field")[::2] == (500, b"'headers' is not accessible (pre-script:L2)")


def test_header_writes_are_seen_by_later_reads_and_by_the_backend(served: Any) -> None:
    port, _ = served
    status, _, body = _get(port, "/kept-writes", {"X-Gone": "client"})
    assert status == 200, body
    seen = json.loads(body)["headers"]
    assert seen["X-A"] == "one+two"
    assert seen["X-Count"] == "7"
    assert "X-Gone" not in seen


def test_what_every_request_shares_refuses_writes(served: Any) -> None:
    """The helpers and the request objects are shared by every run of a state: a write into
    them is refused (and so cannot reach the next request)."""
    port, gw = served
    assert _get(port, "/frozen")[::2] == (500, b"")
    gw.wait_for("[ENDPOINT: /frozen][Lua] 'stash' is not accessible (pre-script:L1)")
    for _ in range(2):
        assert _get(port, "/frozen-rawset")[::2] == (
            500, b"'stash' is not accessible (pre-script:L2)")


@pytest.mark.parametrize("path", ["/loop", "/slow-loop"])
def test_an_endless_script_is_stopped_and_others_are_served(served: Any, path: str) -> None:
    port, gw = served
    results: dict[str, tuple[int, bytes]] = {}

    def loop() -> None:
        results["loop"] = _get(port, path)[::2]

    thread = threading.Thread(target=loop)
    thread.start()
    others = [_get(port, "/router/7")[0] for _ in range(3)]
    thread.join(30)
    assert results["loop"] == (500, b"lua: script stopped: budget exceeded")
    assert others == [200, 200, 200]
    gw.wait_for(f"[ENDPOINT: {path}][Lua] script stopped: it ran past its budget")
    # the states that stopped a script serve the next ones normally
    assert _get(port, "/numbers")[0] == 200
    assert _get(port, "/proxy")[0] == 200


# --- configuration errors ------------------------------------------------------------------

def _check(tmp_path: Path, lua: dict[str, Any], namespace: str = "modifier/lua-proxy"
           ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "krakend.json"
    config = {"version": 3, "endpoints": [{"endpoint": "/a", "extra_config": {namespace: lua},
                                           "backend": [_backend(9)]}]}
    path.write_text(json.dumps(config, indent=2))
    return subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))


def test_a_syntax_error_in_pre_is_a_located_check_error(tmp_path: Path) -> None:
    proc = _check(tmp_path, {"pre": "local x = = 1"})
    assert proc.returncode == 1
    assert ('endpoints[0].extra_config["modifier/lua-proxy"].pre: Lua syntax error: '
            "pre-script:1: unexpected symbol near '='") in proc.stderr


def test_a_syntax_error_in_a_source_names_the_file_and_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.lua"
    good.write_text("x = 1\ny = 2\n")
    bad = tmp_path / "bad.lua"
    bad.write_text("function f()\n  return 1\nend\nfunction g( x = 1 end\n")
    proc = _check(tmp_path, {"sources": [str(good), str(bad)]})
    assert proc.returncode == 1
    assert (f'endpoints[0].extra_config["modifier/lua-proxy"].sources[1]: Lua syntax error: '
            f"{bad}:4: ')' expected near '='") in proc.stderr


def test_a_missing_source_is_a_located_check_error(tmp_path: Path) -> None:
    proc = _check(tmp_path, {"sources": [str(tmp_path / "nope.lua")]})
    assert proc.returncode == 1
    assert 'endpoints[0].extra_config["modifier/lua-proxy"].sources[0]' in proc.stderr
    assert "No such file or directory" in proc.stderr


def test_an_md5_mismatch_is_a_located_check_error(tmp_path: Path) -> None:
    src = tmp_path / "a.lua"
    src.write_text("x = 1\n")
    digest = hashlib.md5(b"x = 1\n").hexdigest()
    assert _check(tmp_path, {"sources": [str(src)], "md5": {str(src): digest}}).returncode == 0
    proc = _check(tmp_path, {"sources": [str(src)], "md5": {str(src): "0" * 32}})
    assert proc.returncode == 1
    assert (f'endpoints[0].extra_config["modifier/lua-proxy"].md5["{src}"]: lua: wrong '
            f"cheksum for source {src}. have: {digest}, want: {'0' * 32}") in proc.stderr


def test_standard_library_without_allow_open_libs_is_a_check_warning(tmp_path: Path) -> None:
    proc = _check(tmp_path, {"pre": "-- string.len is fine here\nlocal n = string.find('a', 'a')"})
    assert proc.returncode == 0
    assert ('endpoints[0].extra_config["modifier/lua-proxy"].pre: the script uses Lua\'s '
            "standard library (`string.find`) but `allow_open_libs` is not true") in proc.stderr
    proc = _check(tmp_path, {"pre": "local n = string.find('a', 'a')", "allow_open_libs": True})
    assert "standard library" not in proc.stderr


# --- --watch follows the scripts -----------------------------------------------------------

def _save(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_watch_reloads_a_changed_script_and_keeps_serving_on_a_broken_one(
        tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"  # not beside the configuration: followed as a named file
    scripts.mkdir()
    script = scripts / "version.lua"
    _save(script, "function mark(r) r:data():set('version', 1) end\n")
    with backend() as bport:
        config = tmp_path / "conf" / "krakend.json"
        config.parent.mkdir()
        write_config(config, {"version": 3, "endpoints": [_ep("/v", bport, {
            "modifier/lua-proxy": {"sources": [str(script)], "post": "mark(response.load())"}})]})
        port = free_port()
        with gateway(str(config), port, "--watch") as gw:
            assert json.loads(_get(port, "/v")[2])["version"] == 1
            _save(script, "function mark(r) r:data():set('version', 2) end\n")
            gw.wait_for("generation 2 active")
            assert json.loads(_get(port, "/v")[2])["version"] == 2
            _save(script, "function mark(r) r:data():set('version', 3)\n")
            gw.wait_for(f"sources[0]: Lua syntax error: {script}:2: 'end' expected")
            assert json.loads(_get(port, "/v")[2])["version"] == 2
            _save(script, "function mark(r) r:data():set('version', 4) end\n")
            gw.wait_for("generation 3 active")
            assert json.loads(_get(port, "/v")[2])["version"] == 4


def test_service_level_script_runs_before_routing_and_fails_with_500(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, {"version": 3, "extra_config": {"modifier/lua-endpoint": {"pre": (
            "local r = ctx.load()\n"
            "if r:headers('X-Deny') ~= '' then custom_error('denied', 403) end\n"
            "r:headers('X-Service-Lua', r:url())")}},
            "endpoints": [_ep("/svc", bport)]})
        port = free_port()
        with gateway(str(config), port) as gw:
            status, _, body = _get(port, "/svc?a=b")
            assert status == 200
            assert json.loads(body)["headers"]["X-Service-Lua"] == "/svc?a=b"
            assert _get(port, "/svc", {"X-Deny": "1"})[::2] == (500, b"")
            gw.wait_for("[SERVICE: Gin][Lua] denied")
            assert _get(port, "/nowhere", {"X-Deny": "1"})[0] == 500  # before routing
            assert _get(port, "/nowhere")[0] == 404


def test_http_response_is_a_check_warning(tmp_path: Path) -> None:
    proc = _check(tmp_path, {"pre": "local r = http_response.new('http://127.0.0.1:9/')"})
    assert proc.returncode == 0
    assert ('endpoints[0].extra_config["modifier/lua-proxy"].pre: `http_response.new` is not '
            "supported by tidegate") in proc.stderr


def test_live_sources_are_read_on_every_request(tmp_path: Path) -> None:
    script = tmp_path / "live.lua"
    _save(script, "function mark(r) r:data():set('version', 1) end\n")
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, {"version": 3, "endpoints": [_ep("/live", bport, {
            "modifier/lua-proxy": {"sources": [str(script)], "live": True,
                                   "post": "mark(response.load())"}})]})
        port = free_port()
        with gateway(str(config), port):  # no --watch: the script itself is re-read
            assert json.loads(_get(port, "/live")[2])["version"] == 1
            _save(script, "function mark(r) r:data():set('version', 2) end\n")
            assert json.loads(_get(port, "/live")[2])["version"] == 2
            script.unlink()
            assert _get(port, "/live")[0] == 500


def test_overlapping_requests_keep_their_own_globals_between_pre_and_post(
        tmp_path: Path) -> None:
    """pre and post of one request run around an await: others run in between, in the same
    Lua state, and must not see or change this request's globals."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        ep = _ep("/overlap", bport, {"modifier/lua-proxy": {
            "pre": "mine = request.load():headers('X-Secret')",
            "post": "response.load():data():set('mine', mine)"}})
        ep["backend"][0]["url_pattern"] = "/slow/overlap"
        write_config(config, {"version": 3, "endpoints": [ep]})
        port = free_port()
        with gateway(str(config), port):
            results: dict[str, Any] = {}

            def call(secret: str) -> None:
                body = _get(port, "/overlap?ms=300", {"X-Secret": secret})[2]
                results[secret] = json.loads(body)["mine"]

            threads = [threading.Thread(target=call, args=(f"s{i}",)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert results == {f"s{i}": f"s{i}" for i in range(6)}
