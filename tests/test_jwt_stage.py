"""The validator stage in-process, with the clocks moved by the test: a token whose signature
is remembered is still held to its dates, and to the key it was verified with."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.jwt_support import AUDIENCE, ISSUER, JwksServer, claims, jwks_server, rsa_key, sign
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
