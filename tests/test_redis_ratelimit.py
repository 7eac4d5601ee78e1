"""Rate limits shared through a real redis-server (KrakenD EE's names), as a user sees them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from tests.redis_support import RedisServer, redis_cluster, redis_server
from tests.support import Gateway, backend, free_port, gateway, health, request, write_config
from tidegate.cli import main
from tidegate.components.redis_ratelimit import ROUTER_NAMESPACE, SERVICE_NAMESPACE, parse
from tidegate.errors import ConfigValueError
from tidegate.state import AsyncBucketStore, Taken
from tidegate.state.redisbuckets import PoolSettings, RedisBuckets

POOL = "shared"


def config(bport: int, redis: str, limit: dict[str, Any] | None, *, port: int = 0,
           name: str = "", service_limit: dict[str, Any] | None = None,
           pool: dict[str, Any] | None = None) -> dict[str, Any]:
    """/limited/{user} with `limit` (pool `shared` unless the section names one), /free."""
    def ep(path: str, extra: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"endpoint": path, "backend": [
            {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/x"}]}
        if extra is not None:
            out["extra_config"] = {ROUTER_NAMESPACE: {"connection_pool": POOL, **extra}}
        return out

    extra: dict[str, Any] = {"redis": {"connection_pools": [
        {"name": POOL, "address": redis, **(pool or {})}]}}
    if service_limit is not None:
        extra[SERVICE_NAMESPACE] = {"connection_pool": POOL, **service_limit}
    out: dict[str, Any] = {"version": 3, "extra_config": extra,
                           "endpoints": [ep("/limited/{user}", limit), ep("/free", None)]}
    if port:
        out["port"] = port
    if name:
        out["name"] = name
    return out


def statuses(port: int, n: int, headers: dict[str, str] | None = None,
             path: str = "/limited/u1") -> list[int]:
    """`n` requests, each on its own connection, 8 at a time."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: request(port, "GET", path, headers=headers)[0],
                             range(n)))


def start_node(path: Path, port: int, *extra: str) -> Gateway:
    """A `tidegate run` whose Redis pool answered (its log says so)."""
    gw = Gateway(["run", "-p", str(port), "-c", str(path), *extra])
    gw.wait_for("listening on")
    assert pool_state(port) == "up"
    return gw


def pool_state(port: int) -> str:
    """The pool's state on the node's `/__health`."""
    return str(health(port)["redis"][POOL]["state"])


@pytest.mark.parametrize("workers", [1, 2])
def test_endpoint_limit_counts_exactly_in_redis(tmp_path: Path, workers: int) -> None:
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address,
                                  {"max_rate": 1, "every": "1h", "capacity": 12}))
        port = free_port()
        with gateway(str(path), port, workers=workers):
            assert pool_state(port) == "up"  # connected before it listens
            got = statuses(port, 30)
            over = request(port, "GET", "/limited/u1")
            free = request(port, "GET", "/free")[0]
            keys = redis.command("KEYS", "tidegate:*")
    assert got.count(200) == 12 and got.count(503) == 18
    assert (over[0], over[2], free) == (503, b"", 200)
    # The key names the endpoint and a fingerprint of the limits; it expires (an hour's
    # refill of 12 tokens at 1 per hour, plus a second).
    assert len(keys) == 1 and keys[0].startswith("tidegate:ratelimit:{GET /limited/{user}|")


def test_client_then_endpoint_limits_answer_as_krakend(tmp_path: Path) -> None:
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address, {
            "max_rate": 1, "every": "1h", "capacity": 3, "client_max_rate": 1,
            "client_capacity": 2, "strategy": "header", "key": "X-User"}))
        port = free_port()
        with gateway(str(path), port):
            assert pool_state(port) == "up"  # connected before it listens
            no_key = request(port, "GET", "/limited/u")
            alice = [request(port, "GET", "/limited/u", headers={"X-User": "alice"})[0]
                     for _ in range(3)]
            bob = [request(port, "GET", "/limited/u", headers={"X-User": "bob"})[0]
                   for _ in range(2)]
            ttl = [redis.command("PTTL", k) for k in redis.command("KEYS", "tidegate:*")]
    assert (no_key[0], no_key[2]) == (429, b"")
    assert alice == [200, 200, 429]
    assert bob == [200, 503]  # alice took 2 of the endpoint's 3
    assert len(ttl) == 3 and all(0 < t <= 3 * 3600 * 1000 + 1000 for t in ttl)


def test_ratelimit_headers_as_the_local_limiter(tmp_path: Path) -> None:
    """`headers: true`: RateLimit-* of the client's bucket, of the refusing one on a refusal."""
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address, {
            "max_rate": 1, "every": "1h", "capacity": 2, "client_max_rate": 1,
            "client_capacity": 1, "strategy": "header", "key": "X-User", "headers": True}))
        port = free_port()
        with gateway(str(path), port):
            ok = request(port, "GET", "/limited/u", headers={"X-User": "a"})
            client_over = request(port, "GET", "/limited/u", headers={"X-User": "a"})
            request(port, "GET", "/limited/u", headers={"X-User": "b"})
            over = request(port, "GET", "/limited/u", headers={"X-User": "c"})
            free = request(port, "GET", "/free")
    assert ok[0] == 200 and (ok[1]["ratelimit-limit"], ok[1]["ratelimit-remaining"]) == ("1", "0")
    assert int(ok[1]["ratelimit-reset"]) > 3000  # 1 token per hour
    assert client_over[0] == 429 and int(client_over[1]["retry-after"]) > 3000
    assert over[0] == 503 and (over[1]["ratelimit-limit"], over[1]["ratelimit-remaining"]) == (
        "2", "0") and "retry-after" in over[1]
    assert free[0] == 200 and not any(h.startswith("ratelimit") for h in free[1])


def test_redis_down_refuses_with_503_logs_once_and_limits_again_when_back(
        tmp_path: Path) -> None:
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address,
                                  {"max_rate": 1, "every": "1h", "capacity": 2}))
        port = free_port()
        with gateway(str(path), port) as gw:
            assert pool_state(port) == "up"  # connected before it listens
            before = [request(port, "GET", "/limited/u1")[0] for _ in range(3)]
            redis.stop()
            during = statuses(port, 20)
            free = [request(port, "GET", "/free")[0] for _ in range(3)]
            down = health(port)["redis"][POOL]
            redis.start()
            gw.wait_for("is up again")
            up = health(port)["redis"][POOL]
            after = [request(port, "GET", "/limited/u1")[0] for _ in range(3)]
            outage_lines = [ln for ln in gw.log if "is down" in ln]
    assert before == [200, 200, 503]
    assert during == [503] * 20 and free == [200] * 3
    assert down["state"] == "down" and "refused" in down["last_error"].lower()
    assert up["state"] == "up" and up["outages"] == 1
    assert len(outage_lines) == 1, outage_lines
    assert "redis pool 'shared' at 127.0.0.1:" in outage_lines[0]
    assert after == [200, 200, 503]  # limiting again, on the fresh server's buckets


def test_on_failure_allow_serves_while_redis_is_down(tmp_path: Path) -> None:
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address, {
            "max_rate": 1, "every": "1h", "capacity": 1, "on_failure_allow": True}))
        port = free_port()
        with gateway(str(path), port) as gw:
            assert pool_state(port) == "up"  # connected before it listens
            before = [request(port, "GET", "/limited/u1")[0] for _ in range(2)]
            redis.stop()
            during = statuses(port, 10)
            redis.start()
            gw.wait_for("is up again")
            after = [request(port, "GET", "/limited/u1")[0] for _ in range(2)]
    assert before == [200, 503]
    assert during == [200] * 10
    assert after == [200, 503]


def test_a_dead_address_never_hangs_requests(tmp_path: Path) -> None:
    """Nothing listens: the first request fails within the dial timeout, the rest at once."""
    dead = RedisServer()  # a free port nobody serves (never started)
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, dead.address, {"max_rate": 10},
                                  pool={"dial_timeout": "200ms", "max_retries": 0}))
        port = free_port()
        with gateway(str(path), port):
            assert pool_state(port) == "down"
            started = time.monotonic()
            got = statuses(port, 10)
            took = time.monotonic() - started
            assert health(port)["redis"][POOL]["state"] == "down"
    assert got == [503] * 10 and took < 5


def test_a_silent_redis_fails_requests_after_read_timeout(tmp_path: Path) -> None:
    """A server that accepts but never answers (SIGSTOP): the requests waiting on it get 503
    after read_timeout, the pool is down (one log line), and it recovers on SIGCONT."""
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address, {"max_rate": 100},
                                  pool={"read_timeout": "300ms", "dial_timeout": "300ms"}))
        port = free_port()
        with gateway(str(path), port) as gw:
            assert pool_state(port) == "up"
            assert redis.proc is not None
            redis.proc.proc.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                stalled = statuses(port, 4)
                took = time.monotonic() - started
                gw.wait_for("is down")
                assert pool_state(port) == "down"
            finally:
                redis.proc.proc.send_signal(signal.SIGCONT)
            gw.wait_for("is up again")
            after = request(port, "GET", "/limited/u1")[0]
            outage_lines = [ln for ln in gw.log if "is down" in ln]
    assert stalled == [503] * 4 and took < 5
    assert after == 200 and len(outage_lines) == 1


def test_nodes_with_different_configs_share_the_buckets(tmp_path: Path) -> None:
    """Two nodes, configurations differing in port and name (so in hash): one bucket."""
    with redis_server() as redis, backend() as bport:
        limit = {"max_rate": 1, "every": "1h", "capacity": 3}
        nodes, hashes = [], []
        try:
            for i in range(2):
                port = free_port()
                path = tmp_path / f"node{i}.json"
                write_config(path, config(bport, redis.address, limit, port=port,
                                          name=f"node {i}"))
                nodes.append((start_node(path, port), port))
                hashes.append(health(port)["generation"]["config_hash"])
            got = [request(port, "GET", "/limited/u1")[0] for _, port in nodes for _ in (0, 1)]
        finally:
            for gw, _ in nodes:
                gw.stop()
    assert hashes[0] != hashes[1]
    assert got == [200, 200, 200, 503]


def test_three_nodes_share_one_cluster_limit(tmp_path: Path) -> None:
    """Three `tidegate run` on one redis-server; 600 requests over 2 s spread across them
    against 100 req/s: about 200 pass (not 3 x 200). The bucket holds 10 tokens: the count
    is the rate over the 2 s plus that small burst (a bucket of 1 would drop the fractions
    of tokens that arrive between two requests, and count less than the rate)."""
    with redis_server() as redis, backend() as bport:
        nodes: list[tuple[Gateway, int]] = []
        try:
            for i in range(3):
                port = free_port()
                path = tmp_path / f"node{i}.json"
                write_config(path, config(bport, redis.address,
                                          {"max_rate": 100, "capacity": 10}, port=port,
                                          name=f"node {i}"))
                nodes.append((start_node(path, port), port))
            got, span = spread(600, 2.0, [port for _, port in nodes])
        finally:
            for gw, _ in nodes:
                gw.stop()
    ok = got.count(200)
    print(f"three nodes: {ok} of 600 passed over {span:.2f}s")
    assert got.count(200) + got.count(503) == 600, sorted(set(got))
    assert 190 <= ok <= 230, f"{ok} passed over {span:.2f}s"


def spread(total: int, seconds: float, ports: list[int],
           per_node: int = 4) -> tuple[list[int], float]:
    """`total` requests at a steady pace over `seconds`, round robin over `ports`, each
    node served by `per_node` keep-alive connections; (statuses, first-to-last span)."""
    results = [0] * total
    stamps = [0.0] * total
    start = time.monotonic() + 0.2
    lanes = [(n, k) for n in range(len(ports)) for k in range(per_node)]
    pause = threading.Event()  # never set: waits until each request's turn (pacing)

    def lane(node: int, k: int) -> None:
        conn = HTTPConnection("127.0.0.1", ports[node], timeout=10)
        try:
            for i in range(node + k * len(ports), total, len(ports) * per_node):
                pause.wait(max(0.0, start + i * seconds / total - time.monotonic()))
                stamps[i] = time.monotonic()
                conn.request("GET", "/limited/u1")
                resp = conn.getresponse()
                resp.read()
                results[i] = resp.status
        finally:
            conn.close()

    threads = [threading.Thread(target=lane, args=lk) for lk in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, max(stamps) - min(stamps)


def test_service_limit_covers_every_endpoint_but_health(tmp_path: Path) -> None:
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, redis.address, None, service_limit={
            "max_rate": 1, "every": "1h", "capacity": 3}))
        port = free_port()
        with gateway(str(path), port):
            assert pool_state(port) == "up"  # connected before it listens
            got = [request(port, "GET", p)[0] for p in ("/free", "/limited/a", "/nowhere",
                                                        "/free")]
            checks = [request(port, "GET", "/__health")[0] for _ in range(3)]
    assert got == [200, 200, 404, 503]
    assert checks == [200] * 3


def test_reload_keeps_the_client_and_a_removed_pool_is_closed(tmp_path: Path) -> None:
    """An unrelated change keeps the pool's connections; a config without Redis closes them
    once the old generation drained. `tidegate check` (and the supervisor's trial build)
    never connects."""
    with redis_server() as redis, backend() as bport:
        path = tmp_path / "krakend.json"
        port = free_port()
        pool = {"client_name": "tg-test"}
        limit = {"max_rate": 1, "every": "1h", "capacity": 2}
        write_config(path, config(bport, redis.address, limit, port=port, pool=pool))
        before_check = connections_received(redis)
        proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert connections_received(redis) == before_check + 1  # only our own look
        gw = Gateway(["run", "--watch", "-c", str(path)])
        try:
            gw.wait_for("listening on")
            assert pool_state(port) == "up"
            assert [request(port, "GET", "/limited/u")[0] for _ in range(2)] == [200, 200]
            ids = client_ids(redis)
            write_config(path, config(bport, redis.address, limit, port=port, pool=pool,
                                      name="renamed"))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/limited/u")[0] == 503  # same buckets
            assert client_ids(redis) == ids  # same connections: the client was carried over
            data = config(bport, redis.address, None, port=port)
            del data["extra_config"]
            write_config(path, data)
            gw.wait_for("generation 3 active")
            deadline = time.monotonic() + 10
            while client_ids(redis) and time.monotonic() < deadline:
                threading.Event().wait(0.05)
            assert client_ids(redis) == set()
        finally:
            assert gw.stop() == 0
    assert ids


def connections_received(redis: RedisServer) -> int:
    info = redis.command("INFO", "stats")
    return int(next(ln.split(":")[1] for ln in info.splitlines()
                    if ln.startswith("total_connections_received:")))


def client_ids(redis: RedisServer) -> set[str]:
    listing = redis.command("CLIENT", "LIST")
    return {part for ln in listing.splitlines() if "name=tg-test" in ln
            for part in ln.split() if part.startswith("id=")}


def test_take_async_is_a_token_bucket_on_the_servers_clock() -> None:
    """`AsyncBucketStore.take_async`: full at first, refused with the time to wait, and the
    key expires once the bucket would be full again. A flushed script cache is reloaded."""
    async def run(redis: RedisServer) -> list[Taken]:
        buckets = RedisBuckets(PoolSettings("t", "127.0.0.1", redis.port))
        store: AsyncBucketStore = buckets
        await buckets.open()
        try:
            got = [await store.take_async("tidegate:test:{a}", 1 / 60, 2)]
            assert redis.command("SCRIPT", "FLUSH") == "OK"
            return got + [await store.take_async("tidegate:test:{a}", 1 / 60, 2)
                          for _ in range(2)]
        finally:
            await buckets.close()

    with redis_server() as redis:
        got = asyncio.run(run(redis))
        ttl = redis.command("PTTL", "tidegate:test:{a}")
    assert [t.allowed for t in got] == [True, True, False]
    assert got[2].retry_after == pytest.approx(60, abs=1)
    assert 119_000 < ttl <= 121_000  # two tokens at one a minute, plus a second


@pytest.mark.parametrize(("section", "where", "text"), [
    ({"max_rate": 10}, "connection_pool", "required"),
    ({"connection_pool": "p"}, "max_rate", "needs at least one"),
    ({"connection_pool": "p", "max_rate": -1, "client_max_rate": "x"}, "client_max_rate",
     "expected a number"),
    ({"connection_pool": "p", "max_rate": 1, "on_failure_allow": "yes"}, "on_failure_allow",
     "expected true or false"),
    ({"connection_pool": "p", "connection_name": "q", "max_rate": 1}, "connection_name",
     "another pool"),
    ({"connection_pool": "p", "client_max_rate": 1, "strategy": "cookie"}, "strategy",
     "expected one of"),
])
def test_bad_sections_are_located_at_the_key(section: dict[str, Any], where: str,
                                            text: str) -> None:
    with pytest.raises(ConfigValueError, match=text) as info:
        parse(section, ("endpoints", 0, "extra_config", ROUTER_NAMESPACE))
    assert info.value.path[-1] == where


@pytest.mark.parametrize(("pool", "limit", "text"), [
    ({"address": "localhost"}, {}, "extra_config.redis.connection_pools[0].address: "
                                   "address: expected host:port"),
    ({"pool_size": 0}, {}, "connection_pools[0].pool_size: pool_size: expected an integer"),
    ({"dial_timeout": "5 s"}, {}, "connection_pools[0].dial_timeout"),
    ({}, {"connection_pool": "other"}, "no Redis pool named 'other' (declared: shared)"),
    ({"tls": {"allow_insecure_connections": True}}, {},
     "TLS to Redis is not supported by tidegate yet"),
])
def test_check_locates_bad_pools_and_pool_names(tmp_path: Path, pool: dict[str, Any],
                                                limit: dict[str, Any], text: str) -> None:
    path = tmp_path / "krakend.json"
    data = config(9, "127.0.0.1:6379", {"max_rate": 1, **limit})
    data["extra_config"]["redis"]["connection_pools"][0].update(pool)
    write_config(path, data)
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"{path}:" in out and text in out, out


def test_service_limit_refuses_the_param_strategy(tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    write_config(path, config(9, "127.0.0.1:6379", None, service_limit={
        "client_max_rate": 1, "strategy": "param", "key": "user"}))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "krakend.json:" in out and "strategy: 'param' names a route parameter" in out


def test_limits_in_a_redis_cluster_follow_the_slots(tmp_path: Path) -> None:
    """A three-master cluster, one seed in the config: six endpoints' buckets land on
    several masters (their slots), each counts exactly, and /__health lists every master.
    After the first master's slots moved to the second (keys included), the gateway follows
    the MOVED redirects: the buckets are still empty (503, not the 200 that
    on_failure_allow would give without Redis)."""
    with redis_cluster() as nodes, backend() as bport:
        data = config(bport, nodes[0].address, None)
        data["extra_config"]["redis"] = {"clusters": [
            {"name": POOL, "addresses": [nodes[0].address], "dial_timeout": "1s"}]}
        data["endpoints"] = [{
            "endpoint": f"/e{i}", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                               "url_pattern": "/x"}],
            "extra_config": {ROUTER_NAMESPACE: {"connection_name": POOL, "max_rate": 1,
                                                "every": "1h", "capacity": 2,
                                                "on_failure_allow": True}}}
            for i in range(6)]
        path = tmp_path / "krakend.json"
        write_config(path, data)
        port = free_port()
        with gateway(str(path), port):
            got = [[request(port, "GET", f"/e{i}")[0] for _ in range(3)] for i in range(6)]
            seen = health(port)["redis"][POOL]
            per_node = [len(n.command("KEYS", "tidegate:*")) for n in nodes]
            ids = [n.command("CLUSTER", "MYID") for n in nodes[:2]]
            subprocess.run(["redis-cli", "--cluster", "reshard", nodes[0].address,
                            "--cluster-from", ids[0], "--cluster-to", ids[1],
                            "--cluster-slots", "16384", "--cluster-yes"],
                           check=True, capture_output=True, timeout=120)
            moved = [request(port, "GET", f"/e{i}")[0] for i in range(6)]
            left = len(nodes[0].command("KEYS", "tidegate:*"))
    assert got == [[200, 200, 503]] * 6
    assert moved == [503] * 6 and left == 0
    assert sum(per_node) == 6 and sum(1 for k in per_node if k) >= 2, per_node
    assert seen["state"] == "up" and sorted(seen["nodes"]) == sorted(n.address for n in nodes)


def test_check_lint_validates_the_sections(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "krakend.json"
    data = config(9, "127.0.0.1:6379", {"max_rate": 1, "on_failure_alow": True})
    data["extra_config"]["redis"]["connection_pools"][0]["pool_sise"] = 3
    write_config(path, data)
    assert main(["check", "-l", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert "on_failure_alow" in err and "pool_sise" in err
    good = config(9, "127.0.0.1:6379", {"max_rate": 1, "on_failure_allow": True},
                  pool={"db": 2, "pool_size": 4, "dial_timeout": "1s", "max_retries": 1,
                        "conn_max_idle_time": "30m"})
    write_config(path, good)
    assert main(["check", "-l", "-c", str(path)]) == 0, capsys.readouterr().err
    assert json.loads(path.read_text()) == good
