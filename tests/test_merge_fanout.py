"""A parallel merge starts the backends it can on pooled connections without a task each (the
requests written at once, the answers awaited together), the others in tasks: whichever way a
backend goes, the client gets the same answer, partial answers and timeouts included. Real
backends on 127.0.0.1, a real generation."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import time
from typing import Any

from tests.test_pipeline_support import (
    Gateway,
    ScriptedBackend,
    Seen,
    answer,
    backend_cfg,
    close_silently,
    endpoint,
    hang,
    run,
    service,
)

FAST = answer(200, {"f": 1})


async def answer_then_close(backend: ScriptedBackend, w: asyncio.StreamWriter,
                            seen: Seen) -> bool:
    """Answer with ``Connection: close`` and close: this backend never has a pooled
    connection, every merge opens a new one for it."""
    payload = b'{"c": 1}'
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    await w.drain()
    return False


async def gzipped(backend: ScriptedBackend, w: asyncio.StreamWriter, seen: Seen) -> bool:
    payload = gzip.compress(json.dumps({"z": 1}).encode())
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    await w.drain()
    return True


async def _ask(routes: dict[str, Any], config: Any, *targets: str
               ) -> list[tuple[float, Any]]:
    """(seconds taken, answer) of each target in turn."""
    async with ScriptedBackend(routes) as backend:
        gw = Gateway(config(backend.url))
        try:
            out = []
            for target in targets:
                started = time.monotonic()
                resp = await gw.get(target)
                out.append((time.monotonic() - started, resp))
            return out
        finally:
            await gw.close()


def test_a_merge_of_pooled_and_new_connections_answers_whole() -> None:
    """One backend is pooled after the first request (started without a task), the other
    closes every connection (a task opens a new one each time)."""
    answers = run(_ask(
        {"/fast": FAST, "/close": answer_then_close},
        lambda url: service(endpoint("/m", backend_cfg(url, "/fast"),
                                     backend_cfg(url, "/close"))),
        "/m", "/m", "/m"))
    for _, resp in answers:
        assert resp.status == 200 and resp.json() == {"f": 1, "c": 1}
        assert resp.headers["x-krakend-completed"] == "true"


def test_a_merge_timeout_gives_the_same_partial_answer_pooled_or_not() -> None:
    """The first /m has both backends on pooled connections (the warm-up left two idle), the
    second only the fast one (the hanging one's connection was closed at the deadline)."""
    answers = run(_ask(
        {"/fast": FAST, "/slow": hang},
        lambda url: service(
            endpoint("/warm", backend_cfg(url, "/fast"), backend_cfg(url, "/fast", group="g")),
            endpoint("/m", backend_cfg(url, "/fast"), backend_cfg(url, "/slow"),
                     timeout="400ms")),
        "/warm", "/m", "/m", "/warm"))
    (_, warm), *timed_out, (_, again) = answers
    assert warm.status == 200 and warm.json() == {"f": 1, "g": {"f": 1}}
    for elapsed, resp in timed_out:
        assert resp.status == 200 and resp.json() == {"f": 1}
        assert resp.headers["x-krakend-completed"] == "false"
        assert "cache-control" not in resp.headers
        assert 0.3 <= elapsed < 0.4, elapsed  # 85 % of the endpoint's timeout
    assert again.status == 200 and again.headers["x-krakend-completed"] == "true"


def test_all_backends_failing_on_pooled_connections_joins_their_errors() -> None:
    answers = run(_ask(
        {"/fast": FAST, "/bad": answer(500, b"no", "text/plain")},
        lambda url: service(
            endpoint("/warm", backend_cfg(url, "/fast"), backend_cfg(url, "/fast", group="g")),
            endpoint("/m", backend_cfg(url, "/bad"), backend_cfg(url, "/bad?x=1"))),
        "/warm", "/m", "/m"))
    for _, resp in answers[1:]:
        assert resp.status == 500
        assert resp.headers["x-krakend-completed"] == "false"
        lines = sorted(resp.body.decode().split("\n"))  # in arrival order: either
        assert [line.split(": http://127.0.0.1:")[0] for line in lines] == [
            "invalid status code 500 [GET /bad?x=1]", "invalid status code 500 [GET /bad]"]
        assert lines[0].endswith("/bad?x=1") and lines[1].endswith("/bad")


def test_a_pooled_connection_closed_unanswered_is_retried_once_on_a_new_one() -> None:
    """As Go's transport (and a task's `send`) does: the request went out on a pooled
    connection that closed before any byte of an answer; it is sent again on a fresh one."""

    async def scenario() -> tuple[Any, int]:
        async with ScriptedBackend({"/fast": FAST, "/silent": close_silently}) as backend:
            gw = Gateway(service(
                endpoint("/warm", backend_cfg(backend.url, "/fast"),
                         backend_cfg(backend.url, "/fast", group="g")),
                endpoint("/m", backend_cfg(backend.url, "/fast"),
                         backend_cfg(backend.url, "/silent"))))
            try:
                await gw.get("/warm")
                resp = await gw.get("/m")
                return resp, sum(1 for seen in backend.seen if seen.path == "/silent")
            finally:
                await gw.close()

    resp, tries = run(scenario())
    assert resp.status == 200 and resp.json() == {"f": 1}
    assert resp.headers["x-krakend-completed"] == "false"
    assert tries == 2


def test_pooled_exchanges_follow_redirects_and_undo_gzip() -> None:
    """What a started exchange must still await (a redirect, gzip) finishes in a task."""
    answers = run(_ask(
        {"/fast": FAST, "/moved": answer(302, b"", "", headers=(("Location", "/fast"),)),
         "/gz": gzipped, "/plain": answer(200, {"p": 1})},
        lambda url: service(
            endpoint("/warm", backend_cfg(url, "/fast"), backend_cfg(url, "/fast", group="g"),
                     backend_cfg(url, "/fast", group="h")),
            endpoint("/m", backend_cfg(url, "/moved", group="r"), backend_cfg(url, "/gz"),
                     backend_cfg(url, "/plain"))),
        "/warm", "/m", "/m"))
    for _, resp in answers[1:]:
        assert resp.status == 200
        assert resp.json() == {"r": {"f": 1}, "z": 1, "p": 1}
        assert resp.headers["x-krakend-completed"] == "true"


def test_a_merge_on_pooled_connections_leaves_no_garbage() -> None:
    """Answered or timed out, a merge's exchanges are freed as the request ends, without the
    cycle collector (its full collections stall a worker under load)."""

    async def scenario() -> list[int]:
        async with ScriptedBackend({"/fast": FAST, "/slow": hang}) as backend:
            gw = Gateway(service(
                endpoint("/m", backend_cfg(backend.url, "/fast"),
                         backend_cfg(backend.url, "/fast", group="g"),
                         backend_cfg(backend.url, "/fast", group="h")),
                endpoint("/t", backend_cfg(backend.url, "/fast"),
                         backend_cfg(backend.url, "/slow"), timeout="100ms")))
            try:
                for target in ("/m", "/m", "/t", "/m"):  # pools warm
                    await gw.get(target)
                found = []
                for target in ("/m", "/t"):
                    gc.collect()
                    gc.disable()
                    try:
                        resp = await gw.get(target)
                        assert resp.status == 200
                        del resp
                        found.append(gc.collect())
                    finally:
                        gc.enable()
                return found
            finally:
                await gw.close()

    assert run(scenario()) == [0, 0]
