"""The JWK set cache against a real key server on 127.0.0.1: downloads are counted there."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.jwt_support import JwksServer, jwks_server, make_ca, rsa_key
from tidegate.components.jwt.cache import MIN_TTL, JwksCache, KeysUnavailable, Policy
from tidegate.components.jwt.fetch import TLSOptions


class Clock:
    """A clock the test moves (the cache's notion of time, not the test's waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def public(*kids: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    keys = [rsa_key(k) for k in kids]
    return [k.as_dict(private=False) for k in keys], {k.kid: k for k in keys}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_concurrent_misses_share_one_download() -> None:
    keys, _ = public("a")
    server = JwksServer(keys)
    server.hold = threading.Event()
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True), Policy())

        async def scenario() -> None:
            waiting = [asyncio.create_task(cache.key("kid", "a")) for _ in range(20)]
            await asyncio.to_thread(server.arrived.wait, 10)
            server.hold.set()
            found = await asyncio.gather(*waiting)
            assert all(k.kid == "a" for k in found)
            for _ in range(100):
                assert cache.cached("kid", "a") is not None
        run(scenario())
    assert server.fetches == 1


def test_rotation_is_followed_and_unknown_ids_are_rate_limited() -> None:
    keys, _ = public("old")
    server = JwksServer(keys)
    clock = Clock()
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True),
                          Policy(cooldown=5), clock=clock)

        async def scenario() -> None:
            assert (await cache.key("kid", "old")).kid == "old"
            new_keys, _ = public("new")
            server.keys = keys + new_keys
            # A token with the new id: one download, then the key is there.
            assert (await cache.key("kid", "new")).kid == "new"
            assert server.fetches == 2
            # Random ids: no download during the cooldown, whatever the id.
            for i in range(50):
                with pytest.raises(KeysUnavailable, match="no key"):
                    await cache.key("kid", f"random-{i}")
            assert server.fetches == 2
            clock.now += 5
            with pytest.raises(KeysUnavailable):
                await cache.key("kid", "still-unknown")
            assert server.fetches == 3
        run(scenario())


def test_cache_control_max_age_bounds_the_ttl() -> None:
    keys, _ = public("a")
    server = JwksServer(keys, cache_control="public, max-age=30")
    clock = Clock()
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True),
                          Policy(cache=True, cache_duration=900), clock=clock)

        async def scenario() -> None:
            await cache.key("kid", "a")
            clock.now += 29
            await cache.key("kid", "a")
            assert server.fetches == 1
            clock.now += 2
            await cache.key("kid", "a")
            assert server.fetches == 2
        run(scenario())


def test_no_store_still_never_downloads_per_request() -> None:
    assert Policy().ttl("no-store") == MIN_TTL
    assert Policy(cache=True, cache_duration=60).ttl(None) == 60
    assert Policy().ttl("max-age=3600") == 300  # without cache: the default bounds it too
    assert Policy(cache=True, cache_duration=7200).ttl("max-age=3600") == 3600


def test_a_failed_refresh_keeps_the_previous_keys() -> None:
    keys, _ = public("a")
    server = JwksServer(keys)
    clock = Clock()
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True),
                          Policy(), clock=clock)

        async def scenario() -> None:
            await cache.key("kid", "a")
            server.content_type = "text/html"
            clock.now += 400
            assert (await cache.key("kid", "a")).kid == "a"
            assert server.fetches == 2
            assert (await cache.key("kid", "a")).kid == "a"  # retry waits: no third download
            assert server.fetches == 2
        run(scenario())


def test_a_key_server_not_up_yet_is_retried_soon_then_less_often() -> None:
    keys, _ = public("a")
    server = JwksServer(keys, content_type="text/html")
    clock = Clock()
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True),
                          Policy(), clock=clock)

        async def scenario() -> None:
            for delay in (0.1, 0.2, 0.4):  # each failure doubles the wait
                with pytest.raises(KeysUnavailable, match="JSON content type"):
                    await cache.key("kid", "a")
                fetched = server.fetches
                clock.now += delay / 2
                with pytest.raises(KeysUnavailable):
                    await cache.key("kid", "a")
                assert server.fetches == fetched  # no download before the delay
                clock.now += delay * 0.6
            server.content_type = "application/jwk-set+json"
            assert (await cache.key("kid", "a")).kid == "a"
            assert server.fetches == 4
        run(scenario())


def test_wrong_content_type_or_empty_set_is_no_key() -> None:
    server = JwksServer([], content_type="application/json")
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True), Policy())
        with pytest.raises(KeysUnavailable, match="no Keys have been found"):
            run(cache.key("kid", "a"))


def test_https_with_local_ca_and_pinned_key(tmp_path: Path) -> None:
    ca_file, server_ctx, spki = make_ca(tmp_path)
    keys, _ = public("a")
    with jwks_server(JwksServer(keys), tls=server_ctx) as port:
        url = f"https://127.0.0.1:{port}/jwks"
        good = JwksCache(url, TLSOptions(local_ca=str(ca_file), fingerprints=(spki,)), Policy())
        assert run(good.key("kid", "a")).kid == "a"
        untrusted = JwksCache(url, TLSOptions(), Policy())
        with pytest.raises(KeysUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            run(untrusted.key("kid", "a"))
        wrong_pin = JwksCache(url, TLSOptions(local_ca=str(ca_file), fingerprints=(b"x" * 32,)),
                              Policy())
        with pytest.raises(KeysUnavailable, match="pinned key"):
            run(wrong_pin.key("kid", "a"))


def test_oversized_answer_is_refused() -> None:
    server = JwksServer([{"kty": "oct", "k": "A" * (2 << 20)}])
    with jwks_server(server) as port:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", TLSOptions(insecure=True), Policy())
        with pytest.raises(KeysUnavailable, match="larger than"):
            run(cache.key("kid", "a"))
