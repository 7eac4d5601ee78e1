"""auth/revoker: the rotating bloom filter shared by workers, its admin endpoint, its section."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port
from tidegate.components.revoker import parse_revoker
from tidegate.components.revoker.admin import AdminServer
from tidegate.components.revoker.bloom import BloomConfig, crc64_ecma, fnv1_64, fnv1_128, m_bits
from tidegate.components.revoker.shared import SharedFilter, filter_dir
from tidegate.errors import ConfigValueError

CFG = BloomConfig(n=1000, p=1e-6, hash_name="optimal", ttl=10)


@pytest.fixture(autouse=True)
def _no_filter_files_left() -> Iterator[None]:
    """Generations compiled in this process name their filter after its parent: remove them."""
    yield
    for path in filter_dir().glob(f"tidegate-revoker-{os.getppid()}-*"):
        path.unlink(missing_ok=True)


def test_hashes_and_sizing_are_the_go_packages() -> None:
    # Published check values: CRC-64/XZ (Go's ECMA table) and FNV-1 of "a".
    assert crc64_ecma(b"123456789").hex() == "995dc9bbdf1939fa"
    assert fnv1_64(b"a").hex() == "af63bd4c8601b7be"
    assert fnv1_128(b"a").hex() == "d228cb69101a8caf78912b704e4a141e"
    assert m_bits(10_000_000, 1e-7) == 335_477_044  # KrakenD's docs: ~40 MB per set


@pytest.mark.parametrize("hash_name", ["default", "optimal"])
def test_a_revoked_entry_is_seen_by_every_worker(tmp_path: Path, hash_name: str) -> None:
    """Two filters on one file stand for two worker processes of one gateway."""
    cfg = BloomConfig(1000, 1e-6, hash_name, 10)
    a, b = (SharedFilter(cfg, "tidegate-revoker-1-ab", tmp_path) for _ in range(2))
    a.add(b"jti-abc")
    assert b.check(b"jti-abc") and a.check(b"jti-abc")
    assert not b.check(b"jti-abd") and not b.check(b"sub-abc")


def test_entries_rotate_out_after_two_to_three_ttls(tmp_path: Path) -> None:
    now = [100.0]
    f = SharedFilter(CFG, "tidegate-revoker-1-cd", tmp_path, clock=lambda: now[0])
    f.open()  # periods count from here
    now[0] += 5  # half-way through the first period
    f.add(b"jti-x")
    for elapsed, present in ((10, True), (20, True), (25, True), (30, False)):
        now[0] = 100.0 + elapsed + 0.5
        assert f.check(b"jti-x") is present, elapsed
    f.add(b"jti-y")  # a later add clears the stale set it reuses
    assert f.check(b"jti-y") and not f.check(b"jti-x")


def admin_call(port: int, path: str, body: Any, method: str = "POST") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=json.dumps(body).encode())
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_admin_endpoint_adds_and_checks_over_127_0_0_1(tmp_path: Path) -> None:
    f = SharedFilter(CFG, "tidegate-revoker-1-ef", tmp_path)
    other_worker = SharedFilter(CFG, "tidegate-revoker-1-ef", tmp_path)
    port = free_port()

    async def scenario() -> list[tuple[int, Any]]:
        server = AdminServer(port, f.add, f.check)
        await server.start()
        try:
            calls = [("/add", {"elems": ["jti-abc", "sub-42"]}, "POST"),
                     ("/check", {"elems": ["jti-abc", "jti-zzz"]}, "POST"),
                     ("/add", {"elems": [1]}, "POST"),
                     ("/add", {"elems": []}, "GET"),
                     ("/other", {}, "POST")]
            return [await asyncio.to_thread(admin_call, port, *c) for c in calls]
        finally:
            await server.close()

    results = asyncio.run(scenario())
    assert results[0] == (200, {"count": 2})
    assert results[1] == (200, {"checks": [True, False]})
    assert results[2][0] == 400 and results[3][0] == 405 and results[4][0] == 404
    assert other_worker.check(b"sub-42")


def test_section_is_read_as_go_reads_it() -> None:
    cfg = parse_revoker({"N": 10_000_000, "P": 1e-7, "hash_name": "optimal", "TTL": 1500,
                         "port": 1234, "token_keys": ["jti"]}, ("extra_config", "auth/revoker"))
    assert (cfg.bloom, cfg.port, cfg.token_keys) == \
        (BloomConfig(10_000_000, 1e-7, "optimal", 1500), 1234, ("jti",))


@pytest.mark.parametrize(("change", "key", "message"), [
    ({"TTL": 0}, "TTL", "TTL must be at least 1"),
    ({"P": 1.5}, "P", "P must be between 0 and 1"),
    ({"N": 0}, "N", "N must be at least 1"),
    ({"hash_name": "md5"}, "hash_name", "hash_name must be one of default, optimal"),
    ({"port": 70000}, "port", "must be an integer from 0 to 65535"),
])
def test_values_krakend_panics_on_are_refused_at_their_key(change: dict[str, Any], key: str,
                                                           message: str) -> None:
    section = {"N": 100, "P": 0.01, "hash_name": "default", "TTL": 60, "port": 1234} | change
    with pytest.raises(ConfigValueError, match=message) as err:
        parse_revoker(section, ("extra_config", "auth/revoker"))
    assert err.value.path == ("extra_config", "auth/revoker", key)


def revoker_config(port: int) -> Any:
    def config(section: dict[str, Any] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"version": 3, "endpoints": [
            {"endpoint": "/a", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]}
        if section is not None:
            data["extra_config"] = {"auth/revoker": section | {"port": port}}
        return data
    return config


SECTION = {"N": 1000, "P": 0.0001, "hash_name": "optimal", "TTL": 60, "token_keys": ["jti"]}


def test_revoker_passes_the_carry_over_contract() -> None:
    from tests.carryover import assert_carry_over
    from tidegate.components.revoker import NAMESPACE

    assert_carry_over(NAMESPACE, config=revoker_config(free_port()), section=SECTION,
                      changed=SECTION | {"N": 2000})


def test_revoked_entries_survive_a_reload_and_reach_the_validator_check() -> None:
    """Two generations of one worker: an entry added through the admin endpoint of the first
    is rejected by `revocation_check` of the second (an unrelated change in between)."""
    from tidegate.components import DEFAULT_REGISTRY, Level
    from tidegate.components.revoker import revocation_check
    from tidegate.components.seam import Component
    from tidegate.config.model import build_service
    from tidegate.pipeline.generation import Generation, ServerStatus
    from tidegate.state import StateStore

    checks: list[Any] = []
    probe = Component("test/revocation-probe", frozenset({Level.ROUTER}),
                      build=lambda b, nxt: (checks.append(revocation_check(b)), nxt)[1],
                      service_wide=True)
    port = free_port()
    config = revoker_config(port)
    store, status = StateStore(), ServerStatus()

    async def scenario() -> None:
        first_data = config(SECTION)
        first_data["extra_config"]["test/revocation-probe"] = {}
        first = Generation(build_service(first_data), 1, "a", debug=False, status=status)
        await first.provision(store)
        assert await asyncio.to_thread(admin_call, port, "/add", {"elems": ["jti-abc"]}) == \
            (200, {"count": 1})
        second_data = config(SECTION)
        second_data["extra_config"]["test/revocation-probe"] = {}
        second_data["endpoints"].append({"endpoint": "/b", "backend": [
            {"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]})
        second = Generation(build_service(second_data), 2, "b", debug=False, status=status)
        await second.provision(store)
        await first.close()
        is_revoked = checks[-1]
        assert is_revoked({"jti": "abc", "sub": "x"})
        assert not is_revoked({"jti": "abd"}) and not is_revoked({"sub": "abc"})
        assert not is_revoked({"jti": 42})
        await second.close()
        await store.settle()

    with DEFAULT_REGISTRY.registered(probe):
        asyncio.run(scenario())
    assert len(checks) == 3  # one endpoint, then two


def test_a_taken_admin_port_fails_the_provision_with_its_address() -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        server = AdminServer(port, lambda e: None, lambda e: False)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            asyncio.run(server.start())
    finally:
        taken.close()


def test_a_token_revoked_through_the_admin_endpoint_is_refused_by_every_worker_and_reload(
        tmp_path: Path) -> None:
    """End to end: auth/validator + auth/revoker, two workers, a hot reload in between."""
    from tests.jwt_support import AUDIENCE, ISSUER, JwksServer, claims, jwks_server, rsa_key, sign
    from tests.support import Gateway, backend, request, write_config

    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    admin, port = free_port(), free_port()
    with jwks_server(server) as jwks_port, backend() as backend_port:
        def config(revoker: dict[str, Any], extra: bool = False) -> dict[str, Any]:
            validator = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{jwks_port}/jwks",
                         "disable_jwk_security": True, "issuer": ISSUER, "audience": [AUDIENCE]}
            endpoints = [{"endpoint": "/private", "backend": [
                {"host": [f"http://127.0.0.1:{backend_port}"], "url_pattern": "/p"}],
                "extra_config": {"auth/validator": validator}}]
            if extra:
                endpoints.append({"endpoint": "/other", "backend": [
                    {"host": [f"http://127.0.0.1:{backend_port}"], "url_pattern": "/o"}]})
            return {"version": 3, "port": port, "endpoints": endpoints,
                    "extra_config": {"auth/revoker": revoker | {"port": admin}}}

        path = tmp_path / "krakend.json"
        write_config(path, config(SECTION))
        revoked = sign(key, claims(jti="t-1"))
        other = sign(key, claims(jti="t-2"))

        def status(token: str) -> int:
            return request(port, "GET", "/private",
                           headers={"Authorization": f"Bearer {token}"})[0]

        gw = Gateway(["run", "--watch", "-c", str(path), "--workers", "2"])
        try:
            gw.wait_for("listening on")
            assert status(revoked) == 200
            assert admin_call(admin, "/add", {"elems": ["jti-t-1"]}) == (200, {"count": 1})
            # One connection each, answered by whichever worker accepts it.
            assert [status(revoked) for _ in range(8)] == [401] * 8
            assert status(other) == 200
            write_config(path, config(SECTION, extra=True))  # an unrelated change
            gw.wait_for("generation 2 active")
            assert [status(revoked) for _ in range(4)] == [401] * 4
            write_config(path, config(SECTION | {"N": 5000}, extra=True))  # a new filter
            gw.wait_for("generation 3 active")
            assert status(revoked) == 200
        finally:
            assert gw.stop() == 0, "".join(gw.log)
            for left in filter_dir().glob(f"tidegate-revoker-{gw.proc.pid}-*"):
                left.unlink()  # the next gateway would sweep it; this test tidies now
