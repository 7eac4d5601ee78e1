"""qos/ratelimit/router as a user sees it: 503/429, one limit per node, kept across reloads."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.carryover import assert_carry_over
from tests.support import Gateway, backend, free_port, gateway, request, write_config
from tidegate.components.ratelimit import NAMESPACE, parse
from tidegate.errors import ConfigValueError
from tidegate.state.leases import lease_size


def config(bport: int, limit: dict[str, Any] | None, *, port: int = 0,
           extra_endpoints: int = 0) -> dict[str, Any]:
    eps: list[dict[str, Any]] = [
        {"endpoint": f"/other{i}", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                                "url_pattern": "/o"}]}
        for i in range(extra_endpoints)]
    if limit is not None:
        eps.append({"endpoint": "/limited/{user}",
                    "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/l"}],
                    "extra_config": {NAMESPACE: limit}})
    out: dict[str, Any] = {"version": 3, "endpoints": eps}
    if port:
        out["port"] = port
    return out


def statuses(port: int, n: int, headers: dict[str, str] | None = None,
             path: str = "/limited/u1") -> list[int]:
    """`n` requests, each on its own connection, 8 at a time (both workers get some)."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: request(port, "GET", path, headers=headers)[0],
                             range(n)))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_endpoint_limit_is_per_node_whatever_the_worker_count(tmp_path: Path,
                                                              workers: int) -> None:
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, {"max_rate": 1, "every": "1h", "capacity": 12}))
        port = free_port()
        with gateway(str(path), port, workers=workers):
            got = statuses(port, 30)
            over = request(port, "GET", "/limited/u1")
    assert got.count(200) == 12 and got.count(503) == 18
    assert (over[0], over[2]) == (503, b"")


@pytest.mark.parametrize(("limit", "refused"), [
    ({"max_rate": 72_000, "every": "1h", "capacity": 160}, 503),
    ({"client_max_rate": 72_000, "every": "1h", "client_capacity": 160, "strategy": "ip"}, 429),
])
def test_leased_tokens_keep_the_limit_per_node(tmp_path: Path, limit: dict[str, Any],
                                               refused: int) -> None:
    """20 req/s with a burst of 160: large enough for workers to lease tokens in batches
    (`tidegate.state.LeasedBuckets`). With 2 workers the node still lets through at most the
    burst plus what refilled meanwhile, and at most a lease per worker fewer."""
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, limit))
        port = free_port()
        with gateway(str(path), port, workers=2):
            start = time.monotonic()
            got = statuses(port, 240)
            elapsed = time.monotonic() - start
    assert set(got) == {200, refused}
    assert 160 - 2 * lease_size(20, 160) <= got.count(200) <= 160 + 20 * elapsed, elapsed


def test_limits_answer_as_krakend(tmp_path: Path) -> None:
    """Client limit first (429, also without a key), then the endpoint's (503); empty bodies."""
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, {"max_rate": 1, "every": "1h", "capacity": 3,
                                          "client_max_rate": 1, "client_capacity": 2,
                                          "strategy": "header", "key": "X-User"}))
        port = free_port()
        with gateway(str(path), port):
            no_key = request(port, "GET", "/limited/u")
            alice = [request(port, "GET", "/limited/u", headers={"X-User": "alice"})
                     for _ in range(3)]
            bob = [request(port, "GET", "/limited/u", headers={"X-User": "bob"})[0]
                   for _ in range(2)]
    assert (no_key[0], no_key[2]) == (429, b"")
    assert [a[0] for a in alice] == [200, 200, 429] and alice[2][2] == b""
    assert bob == [200, 503]  # alice took 2 of the endpoint's 3


def test_param_strategy_keys_clients_by_route_parameter(tmp_path: Path) -> None:
    with backend() as bport:
        path = tmp_path / "krakend.json"
        write_config(path, config(bport, {"client_max_rate": 1, "every": "1h",
                                          "strategy": "param", "key": "user"}))
        port = free_port()
        with gateway(str(path), port):
            got = [request(port, "GET", f"/limited/{u}")[0] for u in ("a", "a", "b")]
    assert got == [200, 429, 200]


def test_buckets_survive_an_unrelated_reload_and_reset_on_a_change(tmp_path: Path) -> None:
    with backend() as bport:
        path = tmp_path / "krakend.json"
        port = free_port()
        limit = {"max_rate": 1, "every": "1h", "capacity": 2}
        write_config(path, config(bport, limit, port=port))
        gw = Gateway(["run", "--watch", "--workers", "2", "-c", str(path)])
        try:
            gw.wait_for("listening on")
            assert sorted(statuses(port, 3)) == [200, 200, 503]
            write_config(path, config(bport, limit, port=port, extra_endpoints=1))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/other0")[0] == 200
            assert request(port, "GET", "/limited/u1")[0] == 503  # the bucket was kept
            write_config(path, config(bport, {**limit, "capacity": 3}, port=port))
            gw.wait_for("generation 3 active")
            assert sorted(statuses(port, 4)) == [200, 200, 200, 503]  # a fresh bucket
        finally:
            assert gw.stop() == 0


def test_rate_limiter_passes_the_carry_over_contract() -> None:
    section = {"max_rate": 10, "client_max_rate": 1, "strategy": "ip"}
    assert_carry_over(NAMESPACE, config=lambda s: config(9, s), section=section,
                      changed={**section, "max_rate": 11})


@pytest.mark.parametrize(("section", "where", "text"), [
    ({"max_rate": "10"}, "max_rate", "expected a number"),
    ({"max_rate": 1, "every": "1 minute"}, "every", "unknown unit"),
    ({"client_max_rate": 1}, "client_max_rate", "needs a strategy"),
    ({"client_max_rate": 1, "strategy": "cookie"}, "strategy", "expected one of"),
    ({"client_max_rate": 1, "strategy": "header"}, "key", "needs a key"),
])
def test_bad_sections_are_located_at_the_key(section: dict[str, Any], where: str,
                                            text: str) -> None:
    with pytest.raises(ConfigValueError, match=text) as info:
        parse(section, ("endpoints", 0, "extra_config", NAMESPACE))
    assert info.value.path[-1] == where


def test_check_reports_the_location_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "krakend.json"
    write_config(path, config(9, {"client_max_rate": 5}))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"{path}:" in proc.stderr + proc.stdout
    assert "client_max_rate needs a strategy" in proc.stderr + proc.stdout


def test_defaults_are_krakends() -> None:
    """Rates per second by 1s/every; capacity = that rate, 1 when below 1."""
    cfg = parse({"max_rate": 5, "every": "1m"}, ())
    assert cfg.capacity == 1 and cfg.rate == pytest.approx(5 / 60)
    cfg = parse({"max_rate": 50, "client_max_rate": 7, "strategy": "IP"}, ())
    assert (cfg.capacity, cfg.client_capacity, cfg.strategy) == (50, 7, "ip")
    assert parse({"max_rate": 5, "every": "100ms"}, ()).rate == 5  # every is at least 1s


def test_ratelimit_headers_are_opt_in(tmp_path: Path) -> None:
    with backend() as bport:
        path = tmp_path / "krakend.json"
        limit = {"max_rate": 1, "every": "1h", "capacity": 2, "client_max_rate": 1,
                 "client_capacity": 1, "strategy": "header", "key": "X-User"}
        data = config(bport, {**limit, "headers": True})
        data["endpoints"].append({**data["endpoints"][0], "endpoint": "/plain/{user}",
                                  "extra_config": {NAMESPACE: limit}})
        write_config(path, data)
        port = free_port()
        with gateway(str(path), port):
            ok = request(port, "GET", "/limited/u", headers={"X-User": "a"})
            client_over = request(port, "GET", "/limited/u", headers={"X-User": "a"})
            other = request(port, "GET", "/limited/u", headers={"X-User": "b"})
            over = request(port, "GET", "/limited/u", headers={"X-User": "c"})
            plain = request(port, "GET", "/plain/u", headers={"X-User": "a"})
    assert ok[0] == 200 and (ok[1]["ratelimit-limit"], ok[1]["ratelimit-remaining"]) == ("1", "0")
    assert int(ok[1]["ratelimit-reset"]) > 3000  # 1 token per hour
    assert client_over[0] == 429 and int(client_over[1]["retry-after"]) > 3000
    assert other[0] == 200
    assert over[0] == 503 and (over[1]["ratelimit-limit"], over[1]["ratelimit-remaining"]) == (
        "2", "0") and "retry-after" in over[1]
    assert plain[0] == 200 and not any(h.startswith("ratelimit") for h in plain[1])
