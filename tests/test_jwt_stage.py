"""The validator stage in-process, with the clocks moved by the test: a token whose signature
is remembered is still held to its dates, its rules and the key set it was verified with; the
memory of verified tokens stays bounded whatever clients send."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.jwt_support import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    b64,
    claims,
    jwks_server,
    rsa_key,
    sign,
)
from tidegate.components import Build, Level, Resources
from tidegate.components.jwt import cache as cache_module
from tidegate.components.jwt import component
from tidegate.components.jwt.config import parse
from tidegate.messages import EndpointHandler, Request, Response
from tidegate.state import StateStore


class Clocks:
    def __init__(self) -> None:
        self.wall = 2_000_000_000.0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clocks]:
    c = Clocks()
    monkeypatch.setattr(component, "_wall", lambda: c.wall)
    monkeypatch.setattr(cache_module, "_monotonic", lambda: c.mono)
    yield c


async def _ok(req: Request, params: dict[str, str]) -> Response:
    return Response(200, body=repr(req.jwt_claims).encode())


async def stage(section: dict[str, Any], store: StateStore) -> tuple[EndpointHandler, Resources]:
    resources = Resources()
    b = Build("auth/validator", parse(section, ()), Level.ROUTER, "GET /a", (), None,  # type: ignore[arg-type]
              None, None, resources)
    handler = component.build(b, _ok)
    await resources.provision(store)
    return handler, resources


def call(handler: EndpointHandler, token: str) -> int:
    async def go() -> int:
        req = Request("GET", "/a", "/a", "", [("authorization", f"Bearer {token}")], b"",
                      "127.0.0.1", "1.1")
        return (await handler(req, {})).status
    return asyncio.run(go())


def test_a_remembered_token_still_expires(clocks: Clocks) -> None:
    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "issuer": ISSUER, "audience": [AUDIENCE],
                   "cache": True}
        handler, resources = asyncio.run(stage(section, StateStore()))
        token = sign(key, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 10))
        assert [call(handler, token) for _ in range(3)] == [200, 200, 200]
        clocks.advance(12)  # past exp + leeway
        assert call(handler, token) == 401
        asyncio.run(resources.close())
    assert server.fetches == 1


def test_a_remembered_token_dies_with_its_key(clocks: Clocks) -> None:
    old, new = rsa_key("k1"), rsa_key("k2")
    server = JwksServer([old.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True, "cache_duration": 60}
        handler, resources = asyncio.run(stage(section, StateStore()))
        token = sign(old, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 3600))
        assert call(handler, token) == 200
        server.keys = [new.as_dict(private=False)]  # the old key is withdrawn
        assert call(handler, token) == 200  # still trusted: the set is fresh for 60 s
        clocks.advance(61)
        assert call(handler, token) == 401  # the set was downloaded again, without k1
        assert server.fetches == 3  # expired set, then one more look for the unknown k1
        assert call(handler, token) == 401
        assert server.fetches == 3  # and no more during the cooldown
        asyncio.run(resources.close())


def test_endpoints_share_one_download_and_their_own_rules(clocks: Clocks) -> None:
    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        base = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                "disable_jwk_security": True}
        store = StateStore()
        open_handler, r1 = asyncio.run(stage(base, store))
        roles_handler, r2 = asyncio.run(stage({**base, "roles": ["admin"]}, store))
        token = sign(key, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 3600,
                                 roles=["user"]))
        assert call(open_handler, token) == 200
        assert call(roles_handler, token) == 403  # remembered signature, its own roles rule
        assert call(roles_handler, token) == 403
        assert server.fetches == 1
        asyncio.run(r1.close())
        asyncio.run(r2.close())


def test_a_remembered_token_dies_with_a_new_set_even_under_the_same_kid(clocks: Clocks) -> None:
    """A rotation that reuses the key id (new key material, same ``kid``): once the set is
    downloaded again, tokens of the old key are refused, new ones pass."""
    old, new = rsa_key("k1"), rsa_key("k1")
    server = JwksServer([old.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True, "cache_duration": 60}
        handler, resources = asyncio.run(stage(section, StateStore()))
        before = sign(old, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 3600))
        assert [call(handler, before) for _ in range(2)] == [200, 200]
        server.keys = [new.as_dict(private=False)]
        clocks.advance(61)
        after = sign(new, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 3600))
        assert [call(handler, before) for _ in range(2)] == [401, 401]
        assert [call(handler, after) for _ in range(2)] == [200, 200]
        assert server.fetches == 2
        asyncio.run(resources.close())


class Memory:
    """The validator's memory of verified tokens (one per key set) and its verifications."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int, max_bytes: int) -> None:
        self.sets: list[cache_module.VerifiedTokens] = []
        self.verifications = 0
        memory = self

        class Recorded(cache_module.VerifiedTokens):
            def __init__(self, *_: Any) -> None:
                super().__init__(limit, max_bytes)
                memory.sets.append(self)

        real = component.check_signature

        def counted(*args: Any) -> None:
            memory.verifications += 1
            real(*args)

        monkeypatch.setattr(cache_module, "VerifiedTokens", Recorded)
        monkeypatch.setattr(component, "check_signature", counted)

    @property
    def entries(self) -> int:
        return sum(len(s) for s in self.sets)


def test_a_flood_of_bad_or_expired_tokens_neither_fills_the_memory_nor_evicts(
        clocks: Clocks, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random signatures, tokens signed by the right key but expired or refused by the
    roles: all refused, none remembered; the client's own token stays remembered."""
    memory = Memory(monkeypatch, limit=4, max_bytes=1 << 20)
    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True, "roles": ["user"]}
        handler, resources = asyncio.run(stage(section, StateStore()))
        now = int(clocks.wall)
        hot = sign(key, claims(iat=now, exp=now + 3600, roles=["user"]))
        assert call(handler, hot) == 200
        assert (memory.entries, memory.verifications) == (1, 1)
        head, body, _ = hot.split(".")
        forged = [f"{head}.{body}.{b64(os.urandom(256))}" for _ in range(50)]
        expired = [sign(key, claims(iat=now - 100, exp=now - 50 - i, roles=["user"]))
                   for i in range(6)]
        refused = [sign(key, claims(iat=now, exp=now + 3600, roles=["guest"], jti=str(i)))
                   for i in range(6)]
        for bad in forged + expired + refused:
            assert call(handler, bad) in (401, 403)
            assert call(handler, hot) == 200
        assert [call(handler, t) for t in refused] == [403] * 6
        assert memory.entries == 1  # only the client's token
        assert memory.verifications == 1 + 50 + 6 + 2 * 6  # the hot token once
        asyncio.run(resources.close())


def test_the_memory_keeps_the_tokens_in_use_within_its_bounds(
        clocks: Clocks, monkeypatch: pytest.MonkeyPatch) -> None:
    """More accepted tokens than the memory holds: the least recently used go, a token used
    all along stays; a token whose exp passed is refused and forgotten."""
    memory = Memory(monkeypatch, limit=4, max_bytes=1 << 20)
    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True}
        handler, resources = asyncio.run(stage(section, StateStore()))
        now = int(clocks.wall)
        hot = sign(key, claims(iat=now, exp=now + 3600))
        short = sign(key, claims(iat=now, exp=now + 5, jti="short"))
        others = [sign(key, claims(iat=now, exp=now + 3600, jti=str(i))) for i in range(20)]
        assert call(handler, hot) == 200
        for token in others:
            assert call(handler, token) == 200
            assert call(handler, hot) == 200
            assert memory.entries <= 4
        assert memory.verifications == 21
        assert call(handler, short) == 200
        clocks.advance(7)
        assert call(handler, short) == 401
        assert memory.entries == 3  # the expired one is forgotten
        assert call(handler, hot) == 200
        assert memory.verifications == 22
        asyncio.run(resources.close())


def test_the_memory_is_bounded_in_bytes(clocks: Clocks, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large tokens are remembered only as far as the byte budget allows (here three)."""
    key = rsa_key("k1")
    now = int(clocks.wall)
    big = [sign(key, claims(iat=now, exp=now + 3600, pad="x" * 2000, jti=str(i)))
           for i in range(10)]
    budget = 3 * (2 * len(big[0]) + cache_module.ENTRY_OVERHEAD)
    memory = Memory(monkeypatch, limit=1000, max_bytes=budget)
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True}
        handler, resources = asyncio.run(stage(section, StateStore()))
        assert [call(handler, t) for t in big] == [200] * 10
        assert memory.entries == 3
        assert sum(s.bytes for s in memory.sets) <= budget
        assert [call(handler, t) for t in big[-3:]] == [200] * 3
        assert memory.verifications == 10  # the three kept are not verified again
        asyncio.run(resources.close())


def test_a_token_verified_while_the_key_server_is_down_is_not_trusted_once_it_is_back(
        clocks: Clocks) -> None:
    """The set is stale and its download fails: the previous keys stay in use, but what they
    verify is not remembered, so the next download (here without the key) decides."""
    key, other = rsa_key("k1"), rsa_key("k2")
    server = JwksServer([key.as_dict(private=False)])
    with jwks_server(server) as port:
        section = {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{port}/jwks",
                   "disable_jwk_security": True, "cache": True, "cache_duration": 60}
        handler, resources = asyncio.run(stage(section, StateStore()))
        token = sign(key, claims(iat=int(clocks.wall), exp=int(clocks.wall) + 3600))
        assert call(handler, token) == 200
        server.content_type = "text/html"  # the key server answers, but not a key set
        clocks.advance(61)
        assert [call(handler, token) for _ in range(2)] == [200, 200]  # previous keys
        assert server.fetches == 2
        server.content_type = "application/json"
        server.keys = [other.as_dict(private=False)]  # back, and k1 withdrawn
        clocks.advance(1)  # past the retry delay
        assert call(handler, token) == 401
        asyncio.run(resources.close())
