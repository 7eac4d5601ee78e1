"""qos/http-cache as users see it: fewer backend calls, RFC freshness, bounded, kept on reload."""

from __future__ import annotations

import json
import threading
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.carryover import assert_carry_over
from tests.support import Gateway, backend, free_port, gateway, request, write_config
from tidegate.components.httpcache import NAMESPACE, CacheConfig, Entry, HttpCache, parse
from tidegate.errors import ConfigValueError

HITS: Counter[str] = Counter()
CONDITIONAL: list[str] = []
LOCK = threading.Lock()

# path → extra response headers
POLICIES = {
    "/fresh": [("Cache-Control", "max-age=60")],
    "/nostore": [("Cache-Control", "no-store, max-age=60")],
    "/etag": [("Cache-Control", "max-age=0"), ("ETag", '"v1"')],
    "/vary": [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
    "/none": [],
}


class CachingBackend(BaseHTTPRequestHandler):
    """Answers each path with its caching policy; counts hits; 304 on a matching ETag."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        with LOCK:
            HITS[path] += 1
            n = HITS[path]
            if self.headers.get("If-None-Match"):
                CONDITIONAL.append(self.headers["If-None-Match"])
        if path == "/etag" and self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (f'{{"n":{n},"lang":"{self.headers.get("Accept-Language", "")}"}}').encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in POLICIES.get(path, []):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset() -> None:
    HITS.clear()
    CONDITIONAL.clear()


def _endpoint(bport: int, path: str, section: dict[str, Any], *, name: str = "",
              encoding: str = "json") -> dict[str, Any]:
    return {"endpoint": name or path, "output_encoding": encoding,
            "input_headers": ["Accept-Language"],
            "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": path,
                         "encoding": encoding, "extra_config": {NAMESPACE: section}}]}


def _serve(tmp_path: Path, bport: int, *endpoints: dict[str, Any]) -> tuple[Path, int]:
    path = tmp_path / "krakend.json"
    write_config(path, {"version": 3, "endpoints": list(endpoints)})
    return path, free_port()


def test_a_fresh_answer_is_served_from_the_cache(tmp_path: Path) -> None:
    with backend(CachingBackend) as bport:
        config, port = _serve(tmp_path, bport, _endpoint(bport, "/fresh", {}),
                              _endpoint(bport, "/none", {}),
                              _endpoint(bport, "/nostore", {}),
                              _endpoint(bport, "/fresh", {}, name="/raw", encoding="no-op"))
        with gateway(str(config), port):
            bodies = [request(port, "GET", "/fresh")[2] for _ in range(3)]
            for _ in range(2):
                request(port, "GET", "/none")
                request(port, "GET", "/nostore")
            raw = [request(port, "GET", "/raw") for _ in range(2)]
    assert bodies == [b'{"lang":"","n":1}'] * 3
    assert HITS["/fresh"] == 2  # one per backend definition: /fresh and /raw caches
    assert HITS["/none"] == 2 and HITS["/nostore"] == 2
    assert "x-from-cache" not in raw[0][1] and raw[1][1]["x-from-cache"] == "1"


def test_a_stale_answer_is_revalidated_with_its_etag(tmp_path: Path) -> None:
    with backend(CachingBackend) as bport:
        config, port = _serve(tmp_path, bport, _endpoint(bport, "/etag", {}))
        with gateway(str(config), port):
            answers = [request(port, "GET", "/etag") for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert all(a[2] == b'{"lang":"","n":1}' for a in answers)
    assert CONDITIONAL == ['"v1"', '"v1"'] and HITS["/etag"] == 3


def test_vary_keeps_answers_apart(tmp_path: Path) -> None:
    with backend(CachingBackend) as bport:
        config, port = _serve(tmp_path, bport, _endpoint(bport, "/vary", {}))
        with gateway(str(config), port):
            fr = [request(port, "GET", "/vary", headers={"Accept-Language": "fr"})[2]
                  for _ in range(2)]
            de = request(port, "GET", "/vary", headers={"Accept-Language": "de"})[2]
    assert fr == [b'{"lang":"fr","n":1}'] * 2 and de == b'{"lang":"de","n":2}'


def test_shared_cache_serves_every_backend_that_declares_it(tmp_path: Path) -> None:
    with backend(CachingBackend) as bport:
        config, port = _serve(tmp_path, bport,
                              _endpoint(bport, "/fresh", {"shared": True}, name="/a"),
                              _endpoint(bport, "/fresh", {"shared": True}, name="/b"))
        with gateway(str(config), port):
            assert request(port, "GET", "/a")[2] == request(port, "GET", "/b")[2]
    assert HITS["/fresh"] == 1


def test_endpoints_sharing_an_answer_render_it_each_their_own_way(tmp_path: Path) -> None:
    """A hit's rendering is remembered per endpoint: one that filters and groups the shared
    answer and one that passes it whole each keep answering as configured, hit after hit."""
    with backend(CachingBackend) as bport:
        shaped = _endpoint(bport, "/fresh", {"shared": True}, name="/shaped")
        shaped["backend"][0].update({"allow": ["n"], "group": "g"})
        config, port = _serve(tmp_path, bport, shaped,
                              _endpoint(bport, "/fresh", {"shared": True}, name="/whole"))
        with gateway(str(config), port):
            answers = [request(port, "GET", p)[2] for p in ("/shaped", "/whole") * 3]
    assert answers == [b'{"g":{"n":1}}', b'{"lang":"","n":1}'] * 3
    assert HITS["/fresh"] == 1


def test_a_negotiated_output_follows_each_requests_accept_on_a_hit(tmp_path: Path) -> None:
    """With output_encoding negotiate the client's Accept picks the format, so hits are
    rendered per request, never from a remembered rendering."""
    with backend(CachingBackend) as bport:
        ep = _endpoint(bport, "/fresh", {})
        ep["output_encoding"] = "negotiate"
        config, port = _serve(tmp_path, bport, ep)
        with gateway(str(config), port):
            got = [request(port, "GET", "/fresh", headers={"Accept": a})
                   for a in ("application/json", "application/xml", "application/json")]
    assert [g[1]["content-type"].split(";")[0] for g in got] == [
        "application/json", "application/xml", "application/json"]
    assert got[0][2] == got[2][2] == b'{"lang":"","n":1}' and got[1][2].startswith(b"<")
    assert HITS["/fresh"] == 1


def test_a_warm_cache_survives_an_unrelated_reload(tmp_path: Path) -> None:
    with backend(CachingBackend) as bport:
        port = free_port()
        path = tmp_path / "krakend.json"
        data = {"version": 3, "port": port, "endpoints": [_endpoint(bport, "/fresh", {})]}
        write_config(path, data)
        gw = Gateway(["run", "--watch", "--workers", "1", "-c", str(path)])
        try:
            gw.wait_for("listening on")
            request(port, "GET", "/fresh")
            data["endpoints"].append(_endpoint(bport, "/none", {}, name="/other"))
            write_config(path, data)
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/fresh")[2] == b'{"lang":"","n":1}'
            data["endpoints"][0] = _endpoint(bport, "/fresh", {"max_items": 5})
            write_config(path, data)
            gw.wait_for("generation 3 active")
            assert request(port, "GET", "/fresh")[2] == b'{"lang":"","n":2}'  # fresh cache
        finally:
            assert gw.stop() == 0
    assert HITS["/fresh"] == 2


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _entry(body: bytes, date: float, *headers: tuple[str, str]) -> Entry:
    hdrs = [("Date", formatdate(date, usegmt=True)), *headers]
    return HttpCache(parse({}, ())).stamp(Entry(200, hdrs, body, "http://b/x", (),
                                                len(body) + 40))


def test_freshness_follows_max_age_and_expires() -> None:
    clock = Clock()
    cache = HttpCache(parse({}, ()), clock)
    by_age = _entry(b"x", clock.now, ("Cache-Control", "max-age=10"))
    by_expires = _entry(b"x", clock.now, ("Expires", formatdate(clock.now + 5, usegmt=True)))
    no_cache = _entry(b"x", clock.now, ("Cache-Control", "no-cache, max-age=10"))
    assert cache.fresh(by_age, {}) and cache.fresh(by_expires, {})
    assert not cache.fresh(no_cache, {})
    assert not cache.fresh(by_age, {"no-cache": ""})
    clock.now += 6
    assert cache.fresh(by_age, {}) and not cache.fresh(by_expires, {})
    assert not cache.fresh(by_age, {"max-age": "5"})
    clock.now += 5
    assert not cache.fresh(by_age, {}) and cache.fresh(by_age, {"max-stale": ""})


def test_the_cache_is_bounded_by_items_and_bytes() -> None:
    cache = HttpCache(CacheConfig(False, 2, 1 << 20))
    for key in "abc":
        cache.put(key, _entry(b"x", 0))
    assert len(cache) == 2 and cache.get("a") is None  # least recently used went first
    sized = HttpCache(CacheConfig(False, 100, 2048))
    sized.put("big", _entry(b"x" * 5000, 0, ))
    assert len(sized) == 0  # larger than the whole cache: not stored
    for key in "abcd":
        sized.put(key, _entry(b"x" * 700, 0))
    assert sized.size <= 2048 and len(sized) == 2


def test_remembered_renderings_count_in_the_bound() -> None:
    """What endpoints remember of a hit is counted in max_size: it evicts the least recently
    used answers, and nothing is kept for an answer no longer stored."""
    cache = HttpCache(CacheConfig(False, 100, 4096))
    for key in "abc":
        cache.put(key, _entry(b"x" * 700, 0))
    kept = cache.get("c")
    assert kept is not None and len(cache) == 3
    kept.remember("slot", (200, (("Content-Type", "application/json"),), b"y" * 2000))
    assert kept.recall("slot") is not None
    assert cache.size <= 4096 and cache.get("a") is None and cache.get("c") is kept
    cache.drop("c")
    size = cache.size
    kept.remember("other", (200, (), b"z" * 100))
    assert kept.recall("other") is None and cache.size == size
    fresh = _entry(b"x", 0)
    cache.put("d", fresh)
    fresh.remember("slot", (200, (), b"r"))
    cache.stamp(fresh)  # a 304 refreshed it: its headers may have changed
    assert fresh.recall("slot") is None and cache.size == sum(
        e.size for e in (cache.get(k) for k in "bd") if e is not None)


@pytest.mark.parametrize(("section", "key"), [
    ({"shared": "yes"}, "shared"), ({"max_size": 10}, "max_size"), ({"max_items": 0}, "max_items")])
def test_bad_cache_sections_are_located(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        parse(section, ("b",))
    assert info.value.path == ("b", key)


def test_http_cache_passes_the_carry_over_contract() -> None:
    def config(section: dict[str, Any] | None) -> dict[str, Any]:
        eps = [] if section is None else [_endpoint(9, "/fresh", section)]
        return {"version": 3, "endpoints": eps or [_endpoint(9, "/x", {"max_items": 1})
                                                   | {"backend": [{"host": ["http://h:1"],
                                                                   "url_pattern": "/x"}]}]}
    assert_carry_over(NAMESPACE, config=config, section={"max_items": 10},
                      changed={"max_items": 11})


def test_nodes_share_answers_through_redis(tmp_path: Path) -> None:
    """Two nodes with the cache on one Redis pool: the backend is called once, not per node;
    with Redis gone, each node still caches locally and requests keep being served."""
    from tests.redis_support import redis_server

    with redis_server() as redis, backend(CachingBackend) as bport:
        data = {"version": 3, "extra_config": {"redis": {"connection_pools": [
            {"name": "cache", "address": redis.address}]}},
            "endpoints": [_endpoint(bport, "/fresh", {"connection_pool": "cache"}),
                          _endpoint(bport, "/etag", {"connection_pool": "cache"})]}
        path = tmp_path / "krakend.json"
        write_config(path, data)
        one, two = free_port(), free_port()
        with gateway(str(path), one), gateway(str(path), two):
            first = request(one, "GET", "/fresh")[2]
            deadline = 200
            while not redis.command("KEYS", "tidegate:cache:*") and deadline:
                deadline -= 1  # the write is not awaited by the request: poll, bounded
                request(one, "GET", "/fresh")
            assert request(two, "GET", "/fresh")[2] == first
            assert HITS["/fresh"] == 1
            ttl = redis.command("PTTL", redis.command("KEYS", "tidegate:cache:*")[0])
            assert 0 < ttl <= 60_000  # kept while fresh (max-age=60)
            redis.stop()
            assert request(two, "GET", "/etag")[0] == 200  # Redis down: served, not cached
    assert HITS["/fresh"] == 1


def test_a_redis_pool_that_does_not_exist_is_a_located_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import ROOT

    path = tmp_path / "krakend.json"
    path.write_text(json.dumps({"version": 3, "endpoints": [
        _endpoint(9, "/fresh", {"connection_pool": "nope"})]}, indent=2))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1
    assert 'extra_config["qos/http-cache"].connection_pool: connection_pool: no Redis pool ' \
        "named 'nope'" in proc.stderr
