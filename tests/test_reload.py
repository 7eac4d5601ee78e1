"""Hot reload as a user lives it: saves under `--watch`, SIGHUP, broken saves, in-flight requests.

Every wait is on an event: a supervisor log line or the generation id on `/__health`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SLOW_ARRIVED,
    backend,
    free_port,
    gateway,
    health,
    request,
    write_config,
)

pytestmark = pytest.mark.slow


def cfg(bport: int, *paths: str, cache_ttl: str = "0s", port: int | None = None
        ) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    data: dict[str, Any] = {"version": 3, "cache_ttl": cache_ttl, "timeout": "5s", "endpoints": [
        {"endpoint": p, "backend": [{"host": host, "url_pattern": f"/slow/x?ms={ms}"
                                     if (ms := _slow_ms(p)) else p}]}
        for p in paths]}
    if port is not None:
        data["port"] = port
    return data


def _slow_ms(path: str) -> int:
    return 2000 if path == "/slow" else 0


@pytest.fixture
def setup(tmp_path: Path):
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a", "/slow"))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:  # -d: reload error details
            yield gw, config, bport, port


def test_save_adds_a_route_without_restart(setup) -> None:
    gw, config, bport, port = setup
    assert request(port, "GET", "/b")[0] == 404
    write_config(config, cfg(bport, "/a", "/slow", "/b"))
    line = gw.wait_for("generation 2 active")
    assert "+1 endpoints, -0, ~0 changed" in line
    assert request(port, "GET", "/b")[0] == 200
    assert health(port)["generation"]["id"] == 2


def test_broken_save_keeps_serving_and_reports_where(setup) -> None:
    gw, config, bport, port = setup
    # A plain (non-atomic) write: the watcher may first see a half-written file, which is
    # one more rejected build; wait for the verdict on the complete one.
    config.write_text('{\n  "version": 3,\n  "endpoints": [\n    {"endpoint": "/a",}\n  ]\n}\n')
    gw.wait_for(f"{config}:4:23")
    assert request(port, "GET", "/a")[0] == 200
    error = health(port)["last_reload_error"]
    assert error["file"] == str(config) and (error["line"], error["col"]) == (4, 23)
    assert error["kind"] == "syntax"
    # A bad value (not syntax) is located by JSON path and line:col too.
    data = cfg(bport, "/a")
    data["endpoints"][0]["timeout"] = "soon"
    write_config(config, data)
    gw.wait_for("endpoints[0].timeout")
    assert health(port)["last_reload_error"]["path"] == "endpoints[0].timeout"
    # The next good save recovers, with no restart.
    write_config(config, cfg(bport, "/a", "/c"))
    gw.wait_for("generation 2 active")
    assert request(port, "GET", "/c")[0] == 200
    assert health(port)["last_reload_error"] is None


def test_in_flight_request_finishes_on_its_generation(setup) -> None:
    gw, config, bport, port = setup
    result: dict[str, Any] = {}
    SLOW_ARRIVED.clear()
    t = threading.Thread(target=lambda: result.update(r=request(port, "GET", "/slow")))
    t.start()
    assert SLOW_ARRIVED.wait(10)
    write_config(config, cfg(bport, "/a"))  # the slow route is removed while it runs
    gw.wait_for("generation 2 active")
    t.join(10)
    status, _, body = result["r"]
    assert status == 200 and json.loads(body)["path"] == "/slow/x"
    assert request(port, "GET", "/slow")[0] == 404


def test_keep_alive_connection_survives_and_sees_new_generation(setup) -> None:
    gw, config, bport, port = setup
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    assert request(port, "GET", "/a", conn=conn)[1].get("cache-control") is None
    write_config(config, cfg(bport, "/a", "/slow", cache_ttl="60s"))
    gw.wait_for("generation 2 active")
    status, headers, _ = request(port, "GET", "/a", conn=conn)
    assert status == 200 and headers["cache-control"] == "public, max-age=60"
    conn.close()


def test_unchanged_save_does_not_make_a_generation(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", env={"TIDEGATE_LOG_LEVEL": "DEBUG"}) as gw:
            write_config(config, cfg(bport, "/a"))
            line = gw.wait_for("configuration unchanged")
            assert "[DEBUG] supervisor: change in krakend.json" in line  # not news: DEBUG
            assert health(port)["generation"]["id"] == 1


def test_sighup_reloads_without_watch(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port) as gw:
            write_config(config, cfg(bport, "/a", "/b"))
            gw.proc.send_signal(signal.SIGHUP)
            gw.wait_for("SIGHUP: generation 2 active")
            assert request(port, "GET", "/b")[0] == 200


def test_every_worker_swaps_to_the_same_generation(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", workers=2) as gw:
            write_config(config, cfg(bport, "/a", "/b"))
            gw.wait_for("generation 2 active")
            # New connections land on either worker: all must serve generation 2.
            for _ in range(20):
                assert health(port)["generation"]["id"] == 2
                assert request(port, "GET", "/b")[0] == 200


def test_port_change_binds_new_socket_before_old_one_stops(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        port, new_port = free_port(), free_port()
        write_config(config, cfg(bport, "/a", port=port))
        gw_port_flagless = None
        from tests.support import Gateway

        gw = Gateway(["run", "--workers", "1", "--watch", "-d", "-c", str(config)])
        try:
            gw.wait_for("listening on")
            write_config(config, cfg(bport, "/a", port=new_port))
            gw.wait_for(f"now listening on 0.0.0.0:{new_port}")
            assert request(new_port, "GET", "/a")[0] == 200
            gw.wait_for("generation 2 active")
            with pytest.raises(OSError):
                request(port, "GET", "/a")
        finally:
            assert gw.stop() == 0
        assert gw_port_flagless is None


def test_check_watch_prints_a_fresh_verdict_on_every_save(tmp_path: Path) -> None:
    from tests.support import Gateway

    config = tmp_path / "krakend.json"
    write_config(config, cfg(1, "/a"))
    checker = Gateway(["check", "--watch", "-c", str(config)])
    try:
        checker.wait_for("Syntax OK!")
        config.write_text('{"version": 3, "endpoints": [}')
        checker.wait_for(f"ERROR parsing the configuration file: {config}:1:30")
        write_config(config, cfg(1, "/a", "/b"))
        checker.wait_for("Syntax OK!")
    finally:
        checker.stop(signal.SIGINT)


def test_upstream_pools_are_handed_over_across_generations() -> None:
    """Two generations sharing a backend address share its keep-alive pool (state store)."""
    from tidegate.config.model import build_service
    from tidegate.pipeline.generation import Generation, ServerStatus
    from tidegate.state import StateStore
    from tidegate.upstream.client import parse_target

    store = StateStore()
    status = ServerStatus()
    old = Generation(build_service(cfg(1, "/a")), 1, "h1", debug=False, status=status)
    new = Generation(build_service(cfg(1, "/a", "/b")), 2, "h2", debug=False, status=status)
    assert store.held() == []  # compiling leases nothing (the supervisor's trial build)

    async def scenario() -> None:
        await old.provision(store)
        pool = old.client._pool(parse_target("http://127.0.0.1:1"))
        await new.provision(store)
        assert new.client._pool(parse_target("http://127.0.0.1:1")) is pool
        await old.close()
        assert store.held() == [("upstream", "service", "http://127.0.0.1:1")]
        assert not pool.closed  # still used by generation 2
        await new.close()
        assert store.held() == [] and pool.closed

    asyncio.run(scenario())


def test_port_change_to_a_busy_port_keeps_serving(tmp_path: Path) -> None:
    import socket

    from tests.support import Gateway

    with backend() as bport, socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        config = tmp_path / "krakend.json"
        port = free_port()
        write_config(config, cfg(bport, "/a", port=port))
        gw = Gateway(["run", "--workers", "1", "--watch", "-d", "-c", str(config)])
        try:
            gw.wait_for("listening on")
            write_config(config, cfg(bport, "/a", port=busy.getsockname()[1]))
            gw.wait_for("cannot listen on 0.0.0.0:")
            assert request(port, "GET", "/a")[0] == 200
            assert "cannot listen" in health(port)["last_reload_error"]["message"]
            write_config(config, cfg(bport, "/a", "/b", port=port))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/b")[0] == 200
        finally:
            assert gw.stop() == 0


def test_health_shows_rejection_details_only_in_debug_mode(tmp_path: Path) -> None:
    """Anyone can read /__health: the path and the text of a rejected save (which quotes the
    configuration) stay in the log unless the gateway runs in debug mode."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch") as gw:
            data = cfg(bport, "/a")
            data["endpoints"][0]["timeout"] = "secret-value"
            write_config(config, data)
            gw.wait_for("configuration rejected")
            body = request(port, "GET", "/__health")[2].decode()
            assert str(tmp_path) not in body and "secret-value" not in body
            error = json.loads(body)["last_reload_error"]
            assert error == {"kind": "value", "details": "in the gateway's log (shown here in "
                                                         "debug mode: run -d or debug_endpoint)"}
            assert any("secret-value" in line for line in gw.log)  # the log has it all
