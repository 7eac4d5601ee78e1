"""auth/signer: tokens byte for byte as KrakenD's, the key source, and the section's checks."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from tidegate.components.jose_sign import JoseSigner, SigningKeyError, select_key
from tidegate.components.jwk_source import JWKFetchError, JWKSource
from tidegate.components.jwt_signer import parse_signer
from tidegate.errors import ConfigValueError

# The conformance fixture's key `sim2` and the claims of its /token endpoint (spec jwt_4).
SIM2 = {"kty": "oct", "kid": "sim2", "alg": "HS256",
        "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9"
             "CAow"}
CLAIMS = {"aud": "http://api.example.com", "iss": "https://krakend.io",
          "sub": "1234567890qwertyuio", "jti": "mnb23vcsrt756yuiomnbvcx98ertyuiop",
          "roles": ["role_y"], "exp": 1735689600}
JWT_4 = ("eyJhbGciOiJIUzI1NiIsImtpZCI6InNpbTIiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwOi8vYXBpLmV4YW1w"
         "bGUuY29tIiwiZXhwIjoxNzM1Njg5NjAwLCJpc3MiOiJodHRwczovL2tyYWtlbmQuaW8iLCJqdGkiOiJtbmIyM3Zj"
         "c3J0NzU2eXVpb21uYnZjeDk4ZXJ0eXVpb3AiLCJyb2xlcyI6WyJyb2xlX3kiXSwic3ViIjoiMTIzNDU2Nzg5MHF3"
         "ZXJ0eXVpbyJ9.zkfOW6Fsd0DzhYTXjc_SA3oOv2mG76JZTAvRaVibPNA")


def signer_for(jwk: dict[str, Any], alg: str, full: bool = False, typ: str = "JWT"
               ) -> JoseSigner:
    return JoseSigner(alg, jwk["kid"], typ, select_key({"keys": [jwk]}, jwk["kid"], alg), full)


def test_hs256_token_is_byte_identical_to_krakends() -> None:
    assert signer_for(SIM2, "HS256").sign(CLAIMS) == JWT_4


def test_header_and_payload_are_go_json() -> None:
    """Sorted keys, `<>&` escaped, floats as Go prints them, a custom typ."""
    token = signer_for(SIM2, "HS256", typ="at+jwt").sign(
        {"z": 1.0, "a": "<b>&", "big": 1e21, "n": None})
    header, payload, _ = token.split(".")
    pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    assert pad(header) == b'{"alg":"HS256","kid":"sim2","typ":"at+jwt"}'
    assert pad(payload) == b'{"a":"\\u003cb\\u003e\\u0026","big":1e+21,"n":null,"z":1}'


def test_full_serialization_is_go_joses_json_form() -> None:
    token = json.loads(signer_for(SIM2, "HS256", full=True).sign(CLAIMS))
    assert list(token) == ["payload", "protected", "signature"]
    assert ".".join([token["protected"], token["payload"], token["signature"]]) == JWT_4


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256"])
def test_asymmetric_tokens_verify_with_the_public_key(alg: str) -> None:
    key: Any = ECKey.generate_key("P-256") if alg == "ES256" else RSAKey.generate_key(2048)
    jwk = key.as_dict(private=True, kid="k1")
    token = signer_for(jwk, alg).sign(CLAIMS)
    public = type(key).import_key(key.as_dict(private=False))
    obj = jws.deserialize_compact(token, public, algorithms=[alg])
    assert json.loads(obj.payload) == CLAIMS


@pytest.mark.parametrize(("jwk", "alg", "reason"), [
    (RSAKey.generate_key(2048).as_dict(private=False, kid="k"), "RS256", "public key"),
    (SIM2 | {"kid": "k"}, "RS256", "is for HS256"),
    ({"kty": "oct", "kid": "k", "k": "c2hvcnQ"}, "HS256", "needs at least 32"),
    (OctKey.generate_key(512).as_dict(kid="k"), "ES256", "cannot sign ES256"),
])
def test_keys_that_should_not_sign_are_refused(jwk: dict[str, Any], alg: str,
                                               reason: str) -> None:
    with pytest.raises(SigningKeyError, match=reason):
        select_key({"keys": [jwk]}, "k", alg)


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(SigningKeyError, match="no key with kid 'nope'"):
        select_key({"keys": [SIM2]}, "nope", "HS256")


SECTION = {"alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"],
           "jwk_url": "https://idp.example/jwk"}


def test_section_is_read_as_go_reads_it() -> None:
    cfg = parse_signer({"ALG": "HS256", "Kid": "sim2", "jwk_url": "http://x/jwk",
                        "disable_jwk_security": True, "full": True}, ("e",))
    assert (cfg.alg, cfg.kid, cfg.typ, cfg.full, cfg.keys_to_sign) == \
        ("HS256", "sim2", "JWT", True, ())
    assert cfg.source.url == "http://x/jwk" and cfg.source.insecure


@pytest.mark.parametrize(("change", "where", "message"), [
    ({"alg": "none"}, "alg", "cannot sign"),
    ({"jwk_url": "http://idp/jwk"}, "jwk_url", "must be an https:// URL"),
    ({"jwk_url": None, "jwk_local_path": "k.json"}, None, "disable_jwk_security"),
    ({"jwk_url": None}, None, "set jwk_url or jwk_local_path"),
    ({"secret_url": "awskms://x"}, "secret_url", "not supported"),
    ({"full": "yes"}, "full", "must be true or false"),
    ({"jwk_fingerprints": ["!!"]}, "jwk_fingerprints", "fingerprint #0"),
    ({"cipher_suites": [5]}, "cipher_suites", "unknown or insecure cipher suite 5"),
])
def test_sections_krakend_would_disable_are_refused_at_their_key(
        change: dict[str, Any], where: str | None, message: str) -> None:
    section = {k: v for k, v in (SECTION | change).items() if v is not None}
    with pytest.raises(ConfigValueError, match=message) as err:
        parse_signer(section, ("endpoints", 0, "extra_config", "auth/signer"))
    expected: tuple[str | int, ...] = ("endpoints", 0, "extra_config", "auth/signer")
    if where is not None:
        expected += (where, 0) if where == "cipher_suites" else (where,)
    assert err.value.path == expected


# --- the key source over 127.0.0.1 -----------------------------------------------------------

class JWKHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""
    agents: list[str] = []

    def do_GET(self) -> None:
        JWKHandler.agents.append(self.headers.get("User-Agent", ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(self.body) // 2
        for part in (self.body[:half], self.body[half:], b""):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def jwk_server(tls: ssl.SSLContext | None = None) -> Iterator[int]:
    JWKHandler.body = json.dumps({"keys": [SIM2]}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), JWKHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def make_cert(tmp: Path) -> tuple[ssl.SSLContext, Path, bytes]:
    """A self-signed certificate for 127.0.0.1: (server context, its PEM, SPKI sha256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = tmp / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile = tmp / "key.pem"
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem, keyfile)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return ctx, pem, hashlib.sha256(spki).digest()


def test_key_set_is_fetched_over_http_with_krakends_user_agent() -> None:
    with jwk_server() as port:
        keys = asyncio.run(JWKSource(url=f"http://127.0.0.1:{port}/jwk", insecure=True).load())
    assert keys["keys"][0]["kid"] == "sim2"
    assert JWKHandler.agents[-1] == "KrakenD Version 2.13.8"


def test_https_needs_a_trusted_certificate_and_honours_the_pin(tmp_path: Path) -> None:
    ctx, pem, pin = make_cert(tmp_path)
    with jwk_server(ctx) as port:
        url = f"https://127.0.0.1:{port}/jwk"
        with pytest.raises(JWKFetchError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(JWKSource(url=url).load())
        assert asyncio.run(JWKSource(url=url, local_ca=str(pem)).load())["keys"]
        assert asyncio.run(JWKSource(url=url, local_ca=str(pem), fingerprints=(pin,)).load())
        with pytest.raises(JWKFetchError, match="did not find a pinned key"):
            asyncio.run(JWKSource(url=url, local_ca=str(pem), fingerprints=(b"x" * 32,)).load())
        # disable_jwk_security: an unknown certificate is accepted (as Go's InsecureSkipVerify)
        assert asyncio.run(JWKSource(url=url, insecure=True).load())["keys"]


def test_local_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [SIM2]}))
    assert asyncio.run(JWKSource(local_path=str(path)).load())["keys"][0]["kid"] == "sim2"
    with pytest.raises(JWKFetchError, match="reading"):
        asyncio.run(JWKSource(local_path=str(tmp_path / "missing.json")).load())


# --- the component in a running gateway --------------------------------------------------------

def signer_config(jwk_port: int, backend_port: int) -> dict[str, Any]:
    section = {"alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"],
               "jwk_url": f"http://127.0.0.1:{jwk_port}/jwk", "disable_jwk_security": True}
    return {"version": 3, "endpoints": [
        {"endpoint": "/token", "backend": [{"host": [f"http://127.0.0.1:{backend_port}"],
                                            "url_pattern": "/echo"}],
         "extra_config": {"auth/signer": section, "proxy": {"static": {
             "strategy": "always", "data": {"access_token": CLAIMS, "keep": "me"}}}}},
        {"endpoint": "/broken", "backend": [{"host": [f"http://127.0.0.1:{backend_port}"],
                                             "url_pattern": "/status/500"}],
         "extra_config": {"auth/signer": section}},
    ]}


def test_gateway_signs_and_a_proxy_error_is_400(tmp_path: Path) -> None:
    from tests.support import backend, free_port, gateway, request, write_config

    with jwk_server() as jwk_port, backend() as backend_port:
        config = tmp_path / "krakend.json"
        write_config(config, signer_config(jwk_port, backend_port))
        port = free_port()
        with gateway(str(config), port) as gw:
            status, headers, body = request(port, "GET", "/token")
            assert status == 200, gw.log
            data = json.loads(body)
            assert data["access_token"] == JWT_4 and data["keep"] == "me"
            assert headers["content-type"] == "application/json; charset=utf-8"
            assert "x-krakend-completed" not in headers and "cache-control" not in headers
            status, headers, body = request(port, "GET", "/broken")
            assert (status, body) == (400, b"")
            gw.wait_for("[ENDPOINT: /broken][JWTSigner] Proxy response:")


def test_a_rate_limit_on_a_signer_endpoint_still_applies(tmp_path: Path) -> None:
    """KrakenD's signer skips its endpoint's rate limit; tidegate keeps it (login guessing)."""
    from tests.support import backend, free_port, gateway, request, write_config

    with jwk_server() as jwk_port, backend() as backend_port:
        data = signer_config(jwk_port, backend_port)
        data["endpoints"][0]["extra_config"]["qos/ratelimit/router"] = {
            "max_rate": 1, "every": "1h", "capacity": 2}
        config = tmp_path / "krakend.json"
        write_config(config, data)
        port = free_port()
        with gateway(str(config), port):
            assert [request(port, "GET", "/token")[0] for _ in range(3)] == [200, 200, 503]


def test_unreachable_key_answers_401_until_the_key_can_be_read(tmp_path: Path) -> None:
    """KrakenD answers 401 until restarted; tidegate retries (at most once a second)."""
    from tests.support import backend, free_port, gateway, request, write_config

    jwk_port = free_port()
    with backend() as backend_port:
        config = tmp_path / "krakend.json"
        write_config(config, signer_config(jwk_port, backend_port))
        port = free_port()
        with gateway(str(config), port) as gw:
            assert "[ENDPOINT: /token][JWTSigner] Unable to create the signer" in "".join(gw.log)
            assert request(port, "GET", "/token")[0] == 401
            server = ThreadingHTTPServer(("127.0.0.1", jwk_port), JWKHandler)
            JWKHandler.body = json.dumps({"keys": [SIM2]}).encode()
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                deadline = time.monotonic() + 10
                while (status := request(port, "GET", "/token")[0]) == 401 \
                        and time.monotonic() < deadline:
                    threading.Event().wait(0.2)  # polling the gateway, bounded
                assert status == 200
            finally:
                server.shutdown()
                server.server_close()


def test_signer_key_box_passes_the_carry_over_contract() -> None:
    from tests.carryover import assert_carry_over
    from tests.support import free_port

    def config(section: dict[str, Any] | None) -> dict[str, Any]:
        endpoints: list[dict[str, Any]] = []
        if section is not None:
            endpoints.append({"endpoint": "/token", "backend": [
                {"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
                "extra_config": {"auth/signer": section}})
        return {"version": 3, "endpoints": endpoints}

    section = {"alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"],
               "jwk_url": f"http://127.0.0.1:{free_port()}/jwk", "disable_jwk_security": True}
    assert_carry_over("auth/signer", config=config, section=section,
                      changed=section | {"kid": "other"})


def test_a_failed_key_read_on_reload_keeps_the_key_read_before(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tidegate.components.jwt_signer import KeyBox

    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [SIM2]}))
    cfg = parse_signer({"alg": "HS256", "kid": "sim2", "jwk_local_path": str(path),
                        "disable_jwk_security": True}, ())
    box = KeyBox()
    asyncio.run(box.load(cfg, "/token"))
    assert box.signer is not None and box.signer.sign(CLAIMS) == JWT_4
    path.unlink()
    asyncio.run(box.load(cfg, "/token"))  # the next generation's provision
    assert box.signer is not None and box.signer.sign(CLAIMS) == JWT_4
    assert "signing with the one read before" in caplog.text


def test_check_l_names_a_misspelled_signer_attribute() -> None:
    from tidegate.lint.linter import lint

    data = {"version": 3, "endpoints": [{"endpoint": "/token", "backend": [
        {"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
        "extra_config": {"auth/signer": SECTION | {"jwk_lcal_path": "k.json"}}}]}
    issues = [str(i) for i in lint(data)]
    assert any("jwk_lcal_path" in i and "jwk_local_path" in i for i in issues), issues
