"""What a client gets when backends misbehave, alone and inside a merge (lura's rules).

One backend failing: 500, ``X-Krakend-Completed: false``, no Cache-Control, and the error text
as body only with ``router.return_error_msg``. A merge with some failures: 200 with what
arrived, ``X-Krakend-Completed: false``, no Cache-Control. Every backend failed: 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_pipeline_support import (
    Answer,
    Gateway,
    ScriptedBackend,
    answer,
    backend_cfg,
    close_silently,
    endless_head,
    endpoint,
    garbage,
    hang,
    refused_url,
    reset_mid_body,
    run,
    service,
    switch_protocols,
)

GOOD = {"good": True, "n": 1}
HUGE = {"items": [{"id": i, "text": "x" * 90} for i in range(60_000)]}  # about 6.6 MB

ROUTES = {
    "/good": answer(200, GOOD),
    "/hang": hang,
    "/reset": reset_mid_body,
    "/garbage": garbage,
    "/silent": close_silently,
    "/invalid": answer(200, b"<html><body>oops</body></html>", "text/html"),
    "/truncated": answer(200, b'{"a": [1, 2', "application/json"),
    "/html-typed-json": answer(200, b'{"typed": "wrong"}', "text/html; charset=utf-8"),
    "/empty": answer(200, b"", "application/json"),
    "/huge": answer(200, HUGE),
    "/array": answer(200, [1, 2, 3]),
    "/null": answer(200, b"null"),
    "/deep": answer(200, b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "/no-content": answer(204, b"", ""),
    "/switch": switch_protocols,
    "/endless-head": endless_head,
}

# name → (path or None for a refused connection, error text the client sees)
FAILURES: dict[str, tuple[str | None, str]] = {
    "refused": (None, "connect: connection refused"),
    "reset": ("/reset", ""),
    "timeout": ("/hang", "context deadline exceeded"),
    "garbage": ("/garbage", "malformed HTTP response"),
    "closed": ("/silent", "/silent\": EOF"),
    "invalid-json": ("/invalid", "invalid character '<' looking for beginning of value"),
    "truncated-json": ("/truncated", "unexpected EOF"),
    "empty-body": ("/empty", "EOF"),
    "not-an-object": ("/array", "json: cannot unmarshal array into Go value of type"),
    "status-204": ("/no-content", "invalid status code 204 [GET /no-content]: http://"),
    "switching-protocols": ("/switch", "unexpected 101 Switching Protocols from the backend"),
    "endless-head": ("/endless-head", "net/http: server response headers exceeded 10485760 "
                                      "bytes; aborted"),
}


def _host(backend: ScriptedBackend, path: str | None) -> str:
    return refused_url() if path is None else backend.url


def _timeout(path: str | None) -> str:
    """300 ms, enough for every failure but the endless head: its 10 MiB must reach the
    size limit before the deadline does, also on a loaded machine."""
    return "10s" if path == "/endless-head" else "300ms"


def _config(backend: ScriptedBackend, path: str | None, return_error_msg: bool) -> dict[str, Any]:
    host = _host(backend, path)
    bad = backend_cfg(host, path or "/refused")
    timeout = _timeout(path)
    return service(
        endpoint("/single", bad, timeout=timeout),
        endpoint("/merge", backend_cfg(backend.url, "/good", group="ok"),
                 {**bad, "group": "bad"}, timeout=timeout),
        endpoint("/all-bad", bad, dict(bad), timeout=timeout),
        return_error_msg=return_error_msg)


async def _ask(path: str | None, return_error_msg: bool) -> tuple[Answer, Answer, Answer]:
    async with ScriptedBackend(ROUTES) as backend:
        gw = Gateway(_config(backend, path, return_error_msg))
        try:
            return (await gw.get("/single"), await gw.get("/merge"), await gw.get("/all-bad"))
        finally:
            await gw.close()


def _assert_failed(resp: Answer, text: str, with_msg: bool) -> None:
    assert resp.status == 500
    assert resp.headers["x-krakend-completed"] == "false"
    assert "cache-control" not in resp.headers
    if with_msg:
        assert text.lower() in resp.body.decode().lower()
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    else:
        assert resp.body == b""
        assert "content-type" not in resp.headers


@pytest.mark.parametrize("name", sorted(FAILURES))
@pytest.mark.parametrize("with_msg", [True, False], ids=["error-msg", "no-error-msg"])
def test_failure_single_merge_and_all(name: str, with_msg: bool) -> None:
    path, text = FAILURES[name]
    single, merged, all_bad = run(_ask(path, with_msg))
    _assert_failed(single, text, with_msg)
    # a merge with one failure is a partial 200: never cached, flagged incomplete
    assert merged.status == 200
    assert merged.json() == {"ok": GOOD}
    assert merged.headers["x-krakend-completed"] == "false"
    assert "cache-control" not in merged.headers
    _assert_failed(all_bad, text, with_msg)
    if with_msg and text:  # lura joins the errors of a merge with a newline
        assert all_bad.body.decode().lower().count(text.lower()) == 2
        assert b"\n" in all_bad.body


def test_status_error_names_lura_url_pattern() -> None:
    async def scenario() -> Answer:
        async with ScriptedBackend({}) as backend:
            gw = Gateway(service(endpoint("/u/{id}", backend_cfg(backend.url, "/users/{id}"))))
            try:
                return await gw.get("/u/7")
            finally:
                await gw.close()

    resp = run(scenario())
    assert resp.status == 500
    assert resp.body.decode().startswith("invalid status code 404 [GET /users/{{.Id}}]: http://")


def test_wrong_content_type_is_ignored_json_is_decoded() -> None:
    async def scenario() -> Answer:
        async with ScriptedBackend(ROUTES) as backend:
            gw = Gateway(service(endpoint("/x", backend_cfg(backend.url, "/html-typed-json"))))
            try:
                return await gw.get("/x")
            finally:
                await gw.close()

    resp = run(scenario())
    assert resp.status == 200
    assert resp.json() == {"typed": "wrong"}
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert resp.headers["x-krakend-completed"] == "true"
    assert resp.headers["cache-control"] == "public, max-age=60"


def test_huge_body_alone_and_in_a_merge() -> None:
    async def scenario() -> tuple[Answer, Answer]:
        async with ScriptedBackend(ROUTES) as backend:
            gw = Gateway(service(
                endpoint("/huge", backend_cfg(backend.url, "/huge"), timeout="10s"),
                endpoint("/merge", backend_cfg(backend.url, "/huge"),
                         backend_cfg(backend.url, "/good"), timeout="10s")))
            try:
                return await gw.get("/huge"), await gw.get("/merge")
            finally:
                await gw.close()

    single, merged = run(scenario())
    assert single.status == 200 and len(single.body) > 6_000_000
    assert single.json() == HUGE
    assert single.headers["x-krakend-completed"] == "true"
    assert merged.status == 200 and merged.json() == {**HUGE, **GOOD}
    assert merged.headers["x-krakend-completed"] == "true"
    assert merged.headers["cache-control"] == "public, max-age=60"


def test_null_body_is_an_empty_incomplete_answer() -> None:
    """lura: `null` decodes to a nil map: 200, rendered as null, flagged incomplete."""
    async def scenario() -> tuple[Answer, Answer]:
        async with ScriptedBackend(ROUTES) as backend:
            gw = Gateway(service(
                endpoint("/null", backend_cfg(backend.url, "/null")),
                endpoint("/merge", backend_cfg(backend.url, "/null"),
                         backend_cfg(backend.url, "/good"))))
            try:
                return await gw.get("/null"), await gw.get("/merge")
            finally:
                await gw.close()

    single, merged = run(scenario())
    assert single.status == 200 and single.headers["x-krakend-completed"] == "false"
    assert "cache-control" not in single.headers
    assert merged.status == 200 and merged.json() == GOOD
    assert merged.headers["x-krakend-completed"] == "false"


def test_too_deep_json_fails_the_backend_not_the_worker() -> None:
    async def scenario() -> tuple[Answer, Answer]:
        async with ScriptedBackend(ROUTES) as backend:
            gw = Gateway(service(
                endpoint("/deep", backend_cfg(backend.url, "/deep")),
                endpoint("/merge", backend_cfg(backend.url, "/deep"),
                         backend_cfg(backend.url, "/good"))))
            try:
                return await gw.get("/deep"), await gw.get("/merge")
            finally:
                await gw.close()

    single, merged = run(scenario())
    assert single.status in (200, 500)  # Go decodes 5000 levels; Python may not
    assert merged.status == 200 and merged.json()["good"] is True


def test_backend_keeps_working_after_failures_on_the_same_pool() -> None:
    """A reset or garbage connection is dropped; the next request uses a fresh one."""
    async def scenario() -> list[int]:
        async with ScriptedBackend(ROUTES) as backend:
            gw = Gateway(service(
                endpoint("/good", backend_cfg(backend.url, "/good")),
                endpoint("/reset", backend_cfg(backend.url, "/reset")),
                endpoint("/garbage", backend_cfg(backend.url, "/garbage"))))
            try:
                out = []
                for path in ("/good", "/reset", "/good", "/garbage", "/good", "/good"):
                    out.append((await gw.get(path)).status)
                return out
            finally:
                await gw.close()

    assert run(scenario()) == [200, 500, 200, 500, 200, 200]


def test_unsafe_params_never_reach_the_wire() -> None:
    """Go's url.Parse refuses control bytes (500); non-ASCII is escaped as EscapedPath does."""
    async def scenario() -> tuple[Answer, Answer, list[str]]:
        async with ScriptedBackend({"/u/caf%C3%A9": answer(200, GOOD)}) as backend:
            gw = Gateway(service(endpoint("/u/{id}", backend_cfg(backend.url, "/u/{id}"))))
            try:
                ok = await gw.get("/u/caf%C3%A9")
                bad = await gw.get("/u/x%0D%0AInjected:%20yes")
                return ok, bad, [s.target for s in backend.seen]
            finally:
                await gw.close()

    ok, bad, seen = run(scenario())
    assert ok.status == 200 and ok.json() == GOOD
    assert bad.status == 500
    assert "invalid control character in URL" in bad.body.decode()
    assert seen == ["/u/caf%C3%A9"]


def test_error_body_is_text_not_json() -> None:
    async def scenario() -> Answer:
        gw = Gateway(service(endpoint("/x", backend_cfg(refused_url(), "/"))))
        try:
            return await gw.get("/x")
        finally:
            await gw.close()

    resp = run(scenario())
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.body)
    assert resp.body.decode().startswith('Get "http://127.0.0.1:')


@pytest.mark.slow
def test_a_real_worker_survives_every_failure(tmp_path: Any) -> None:
    """The same failures through `tidegate run`: every answer is lura's, the worker lives."""
    import asyncio
    import threading

    from tests.support import free_port, gateway, request, write_config

    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        async with ScriptedBackend(ROUTES) as backend:
            state["url"], state["stop"] = backend.url, asyncio.Event()
            state["loop"] = asyncio.get_running_loop()
            ready.set()
            await state["stop"].wait()

    thread = threading.Thread(target=run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        paths = [p for p, _ in FAILURES.values() if p] + ["/huge", "/good"]
        cfg = tmp_path / "krakend.json"
        write_config(cfg, {"version": 3, **service(*(
            endpoint(p, backend_cfg(state["url"], p),
                     timeout="10s" if p in ("/huge", "/good") else _timeout(p))
            for p in paths))})
        port = free_port()
        with gateway(str(cfg), port):
            for _ in range(2):
                for p in paths:
                    status, headers, body = request(port, "GET", p)
                    assert headers["x-krakend-completed"] == (
                        "true" if p in ("/huge", "/good") else "false"), p
                    assert status == (200 if p in ("/huge", "/good") else 500), (p, body)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
