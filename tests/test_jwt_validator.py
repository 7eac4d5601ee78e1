"""auth/validator end to end: a real gateway, a real key server, keys and tokens made here.

Every attack is refused with KrakenD's answer (401, empty body, no Content-Type, no X-Krakend
headers) and its reason is in the DEBUG log; roles and scopes give 403; what passes reaches
the backend with the propagated claims.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import OctKey, RSAKey

from tests.jwt_support import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    b64,
    claims,
    forge_hmac,
    jwks_server,
    rsa_key,
    sign,
    sign_raw,
    unsigned,
)
from tests.support import backend, free_port, gateway, request, write_config


def validator(jwks_port: int, **extra: Any) -> dict[str, Any]:
    return {"alg": "RS256", "jwk_url": f"http://127.0.0.1:{jwks_port}/jwks",
            "disable_jwk_security": True, "issuer": ISSUER, "audience": [AUDIENCE], **extra}


def endpoint(path: str, bport: int, section: dict[str, Any], url: str = "/echo",
             **extra: Any) -> dict[str, Any]:
    return {"endpoint": path, "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                           "url_pattern": url}],
            "extra_config": {"auth/validator": section}, **extra}


def config(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "endpoints": list(endpoints)}


def get(port: int, path: str, token: str | None = None, **headers: str
        ) -> tuple[int, dict[str, str], bytes]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return request(port, "GET", path, headers=headers)


def assert_refused(answer: tuple[int, dict[str, str], bytes], status: int = 401) -> None:
    code, headers, body = answer
    assert (code, body) == (status, b"")
    assert "content-type" not in headers
    assert not any(h.startswith("x-krakend") for h in headers)


@pytest.fixture(scope="module")
def keys() -> tuple[RSAKey, RSAKey]:
    return rsa_key("k1"), rsa_key("other")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, keys: tuple[RSAKey, RSAKey]
          ) -> Iterator[tuple[Any, int]]:
    key, _ = keys
    tiny, short = OctKey.import_key(b"x" * 14, {"kid": "tiny"}), OctKey.import_key(
        b"y" * 20, {"kid": "short"})
    hs_keys = [{"kty": "oct", "kid": "empty", "k": ""}, tiny.as_dict(), short.as_dict()]
    server = JwksServer([key.as_dict(private=False)])
    hs_server = JwksServer(hs_keys)
    tmp = tmp_path_factory.mktemp("jwt")
    with backend() as bport, jwks_server(server) as jport, jwks_server(hs_server) as hport:
        conf = tmp / "krakend.json"
        write_config(conf, config(
            endpoint("/open", bport, validator(jport)),
            endpoint("/roles", bport, validator(jport, roles=["admin", "ops"])),
            endpoint("/nested", bport, validator(jport, roles_key="realm.roles",
                                                 roles_key_is_nested=True, roles=["admin"])),
            endpoint("/scopes-all", bport, validator(jport, scopes_key="scope",
                                                     scopes_matcher="all",
                                                     scopes=["read", "write"])),
            endpoint("/claims/{id}", bport, validator(
                jport, propagate_claims=[["sub", "x-user"], ["realm.tier", "x-tier"],
                                         ["groups", "x-groups"]]),
                url="/echo/{id}/{JWT.sub}", input_headers=["X-User", "X-Tier", "X-Groups"]),
            endpoint("/cookie", bport, validator(jport, cookie_key="session")),
            endpoint("/header", bport, validator(jport, auth_header_name="x-api-token")),
            endpoint("/hmac", bport, {"alg": "HS256", "disable_jwk_security": True,
                                      "jwk_url": f"http://127.0.0.1:{hport}/jwks"}),
        ))
        port = free_port()
        with gateway(str(conf), port, env={"TIDEGATE_LOG_LEVEL": "DEBUG"}) as gw:
            yield gw, port


def test_a_valid_token_passes_and_no_token_is_refused(setup: Any, keys: Any) -> None:
    gw, port = setup
    key, _ = keys
    status, _, body = get(port, "/open", sign(key, claims()))
    assert status == 200 and json.loads(body)["path"] == "/echo"
    assert_refused(get(port, "/open"))
    assert_refused(get(port, "/open", "a.bad.token"))
    gw.wait_for("no token (neither the authorization header nor the access_token cookie)")


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("alg none", lambda k, o: unsigned(claims()), "algorithm 'none' is not the configured"),
    ("alg none, empty kid", lambda k, o: unsigned(claims(), kid=""), "algorithm 'none'"),
    # Key confusion: HMAC keyed with the RSA public key, in the forms libraries have accepted.
    ("HS256 with the public PEM", lambda k, o: forge_hmac(
        k.as_pem(private=False), claims()), "algorithm 'HS256' is not the configured 'RS256'"),
    ("HS256 with the modulus", lambda k, o: forge_hmac(
        k.as_dict(private=False)["n"].encode(), claims()), "algorithm 'HS256'"),
    ("signed by another key", lambda k, o: sign(o, claims(), kid="k1"), "bad signature"),
    ("payload tampered", lambda k, o: _tamper(sign(k, claims()), claims(sub="root")),
     "bad signature"),
    ("unknown kid", lambda k, o: sign(o, claims()), "no key 'other'"),
    ("expired", lambda k, o: sign(k, claims(exp=int(time.time()) - 5)), "token is expired"),
    ("not valid yet", lambda k, o: sign(k, claims(nbf=int(time.time()) + 60)),
     "token not valid yet"),
    ("issued in the future", lambda k, o: sign(k, claims(iat=int(time.time()) + 60)),
     "issued in the future"),
    ("wrong audience", lambda k, o: sign(k, claims(aud="https://elsewhere")),
     "does not include 'https://api.test'"),
    ("no audience", lambda k, o: sign(k, claims(aud=None)), "does not include"),
    ("wrong issuer", lambda k, o: sign(k, claims(iss="https://evil")),
     "issuer 'https://evil' is not"),
    ("exp as a string", lambda k, o: sign(k, claims(exp="9999999999")), "'exp' is not a number"),
    ("standard base64 alphabet", lambda k, o: _std_alphabet(sign(k, claims())),
     "the signature is not base64url"),
    ("crit header", lambda k, o: sign_raw(k, {"alg": "RS256", "kid": "k1", "crit": ["exp"],
                                               "exp": 1}, claims()),
     "unsupported critical header"),
])
def test_attacks_are_refused(setup: Any, keys: Any, name: str, make: Any, reason: str) -> None:
    gw, port = setup
    assert_refused(get(port, "/open", make(*keys)))
    gw.wait_for(reason)


def _std_alphabet(token: str) -> str:
    """A character of the standard alphabet in the signature: Go's RawURLEncoding refuses it,
    Python's urlsafe decoder would take it."""
    head, body, sig = token.split(".")
    return f"{head}.{body}.{sig[:10]}+{sig[11:]}"


def _tamper(token: str, payload: dict[str, Any]) -> str:
    head, _, sig = token.split(".")
    return f"{head}.{b64(json.dumps(payload).encode())}.{sig}"


def test_whitespace_inside_the_token_is_ignored_as_go_jose_does(setup: Any, keys: Any) -> None:
    _, port = setup
    key, _ = keys
    token = sign(key, claims())
    assert get(port, "/open", token[:20] + "\t" + token[20:])[0] == 200


def test_leeway_is_one_second(setup: Any, keys: Any) -> None:
    _, port = setup
    key, _ = keys
    # KrakenD's minimum leeway: a token that expired a moment ago still passes.
    assert get(port, "/open", sign(key, claims(exp=int(time.time()))))[0] == 200


@pytest.mark.parametrize(("kid", "reason"), [
    ("empty", "no key 'empty'"),  # an empty secret never enters the key index
    ("tiny", "the HMAC secret has 14 bytes, HS256 needs at least 32"),
    ("short", "the HMAC secret has 20 bytes, HS256 needs at least 32"),
])
def test_weak_hmac_keys_are_never_used(setup: Any, kid: str, reason: str) -> None:
    gw, port = setup
    secret = {"empty": b"", "tiny": b"x" * 14, "short": b"y" * 20}[kid]
    assert_refused(get(port, "/hmac", forge_hmac(secret, claims(), kid=kid)))
    gw.wait_for(reason)


def test_roles_and_scopes_give_403(setup: Any, keys: Any) -> None:
    gw, port = setup
    key, _ = keys
    assert get(port, "/roles", sign(key, claims(roles=["user", "ops"])))[0] == 200
    assert get(port, "/roles", sign(key, claims(roles="user admin")))[0] == 200
    assert_refused(get(port, "/roles", sign(key, claims(roles=["user"]))), 403)
    gw.wait_for("none of the roles ['admin', 'ops'] in claim 'roles'")
    assert_refused(get(port, "/roles", sign(key, claims())), 403)
    assert get(port, "/nested", sign(key, claims(realm={"roles": ["admin"]})))[0] == 200
    assert_refused(get(port, "/nested", sign(key, claims(roles=["admin"]))), 403)
    assert get(port, "/scopes-all", sign(key, claims(scope="read write x")))[0] == 200
    assert_refused(get(port, "/scopes-all", sign(key, claims(scope=["read"]))), 403)
    gw.wait_for("scopes (all of ['read', 'write']) not in claim 'scope'")
    # A bad token on a roles endpoint is 401, not 403: authentication comes first.
    assert_refused(get(port, "/roles", sign(key, claims(exp=1))), 401)


def test_claims_reach_the_backend(setup: Any, keys: Any) -> None:
    _, port = setup
    key, _ = keys
    token = sign(key, claims(sub="alice", realm={"tier": 3}, groups=["a", "b"]))
    status, _, body = get(port, "/claims/7", token, **{"X-User": "mallory"})
    assert status == 200
    echoed = json.loads(body)
    assert echoed["path"] == "/echo/7/alice"
    assert echoed["headers"]["X-User"] == "alice"  # replaced, not added
    assert echoed["headers"]["X-Tier"] == "3"
    assert echoed["headers"]["X-Groups"] == "a,b"
    assert "Authorization" not in echoed["headers"]


def test_token_from_the_cookie(setup: Any, keys: Any) -> None:
    _, port = setup
    key, _ = keys
    token = sign(key, claims())
    assert get(port, "/cookie", Cookie=f"a=1; session={token}")[0] == 200
    assert_refused(get(port, "/cookie", Cookie=f"access_token={token}"))
    # A token in the header is the one used (a bad one is not rescued by the cookie).
    assert_refused(get(port, "/cookie", "x.y.z", Cookie=f"session={token}"))


def test_token_from_another_header(setup: Any, keys: Any) -> None:
    _, port = setup
    key, _ = keys
    token = sign(key, claims())
    assert get(port, "/header", **{"X-Api-Token": token})[0] == 200
    assert get(port, "/header", **{"X-Api-Token": f"bearer {token}"})[0] == 200
    assert_refused(get(port, "/header", token))  # Authorization is not read any more


def test_key_rotation_is_followed_without_a_download_per_request(tmp_path: Path) -> None:
    old, new = rsa_key("2024"), rsa_key("2025")
    server = JwksServer([old.as_dict(private=False)])
    with backend() as bport, jwks_server(server) as jport:
        conf = tmp_path / "krakend.json"
        write_config(conf, config(endpoint("/a", bport, validator(jport)),
                                  endpoint("/b", bport, validator(jport))))
        port = free_port()
        with gateway(str(conf), port):
            for path in ("/a", "/b") * 10:
                assert get(port, path, sign(old, claims()))[0] == 200
            assert server.fetches == 1  # one set for both endpoints
            server.keys = [old.as_dict(private=False), new.as_dict(private=False)]
            for path in ("/a", "/b") * 10:
                assert get(port, path, sign(new, claims()))[0] == 200
                assert get(port, path, sign(old, claims()))[0] == 200
            assert server.fetches == 2  # the new kid: one download, no restart
            for i in range(10):  # unknown kids: at most one more download (cooldown)
                assert_refused(get(port, "/a", sign(new, claims(), kid=f"random{i}")))
            assert server.fetches <= 3


def test_the_key_set_survives_a_reload(tmp_path: Path) -> None:
    key = rsa_key("k1")
    server = JwksServer([key.as_dict(private=False)])
    with backend() as bport, jwks_server(server) as jport:
        conf = tmp_path / "krakend.json"
        protected = endpoint("/a", bport, validator(jport))
        write_config(conf, config(protected))
        port = free_port()
        with gateway(str(conf), port, "--watch") as gw:
            assert get(port, "/a", sign(key, claims()))[0] == 200
            assert server.fetches == 1
            write_config(conf, config(protected, {"endpoint": "/new", "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/echo"}]}))
            gw.wait_for("generation 2 active")
            assert get(port, "/new")[0] == 200
            for _ in range(5):
                assert get(port, "/a", sign(key, claims()))[0] == 200
            assert server.fetches == 1
            # Changing what the set depends on (its cache policy) makes a fresh one.
            write_config(conf, config(endpoint("/a", bport, validator(jport, cache=True))))
            gw.wait_for("generation 3 active")
            assert get(port, "/a", sign(key, claims()))[0] == 200
            assert server.fetches == 2
