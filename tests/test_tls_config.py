"""The root `tls` and `client_tls` sections as `check` and every build read them: KrakenD's
names and defaults, and a located error for what KrakenD would silently default or skip."""

from __future__ import annotations

import io
import json
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.tls_support import Authority
from tidegate.checker import check_once
from tidegate.config.tls import FILES_KEY, attach_files, client_tls, server_tls
from tidegate.config.tls_context import client_context, server_contexts
from tidegate.reload.builder import build_candidate


@pytest.fixture()
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


def _check(tmp_path: Path, root: dict[str, Any], *flags: str) -> tuple[int, list[str]]:
    config = tmp_path / "krakend.json"
    config.write_text(json.dumps({"version": 3, **root, "endpoints": [
        {"endpoint": "/a", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]},
        indent=2))
    out, err = io.StringIO(), io.StringIO()
    code = check_once(str(config), out=out, err=err, lint="-l" in flags, env={})
    return code, [line.replace(f"{config}:", "") for line in err.getvalue().splitlines()]


def test_unreadable_mismatched_and_unknown_values_are_located(tmp_path: Path,
                                                               ca: Authority) -> None:
    a, b = ca.issue("a"), ca.issue("b")
    code, lines = _check(tmp_path, {"tls": {"keys": [
        {"public_key": str(a.cert), "private_key": str(b.key)},
        {"public_key": str(tmp_path / "missing.crt"), "private_key": str(a.key)}]}})
    assert code == 1
    assert lines == [f"ERROR parsing the configuration file: 10:23: tls.keys[1].public_key: "
                     f"cannot read '{tmp_path / 'missing.crt'}': No such file or directory"]
    code, lines = _check(tmp_path, {"tls": {
        "keys": [{"public_key": str(a.cert), "private_key": str(b.key)}],
        "min_version": "TLS1.2", "max_version": "TLS12", "cipher_suites": [49199, 7],
        "curve_preferences": [23, 30]}})
    assert code == 1
    assert [line.split(": ", 3)[2:] for line in lines] == [
        ["tls.keys[0].private_key", f"'{b.key}' is not the private key of '{a.cert}' "
                                     "(tls: private key does not match public key)"],
        ["tls.min_version", "unknown TLS version 'TLS1.2': expected one of SSL3.0, TLS10, "
                            "TLS11, TLS12, TLS13 (KrakenD would silently use TLS13)"],
        ["tls.cipher_suites[1]", lines[2].split(": ", 3)[3]],
        ["tls.curve_preferences[1]", "unknown curve 30: expected 23 (P-256), 24 (P-384), "
                                     "25 (P-521) or 29 (X25519)"],
    ]
    assert "unknown cipher suite 7 (0x0007)" in lines[2]
    code, lines = _check(tmp_path, {"tls": {"keys": [{"public_key": str(a.cert),
                                                      "private_key": str(a.key)}],
                                            "max_version": "TLS12"}})
    assert lines == ["ERROR parsing the configuration file: 10:20: tls.max_version: "
                     "max_version TLS12 is below min_version TLS13 (both default to TLS13): "
                     "no TLS version is left"]
    code, lines = _check(tmp_path, {"tls": {"min_version": "TLS13"}})
    assert lines == ["ERROR parsing the configuration file: 3:10: tls: no certificate: set "
                     "`keys` (a list of {public_key, private_key}) or `public_key` and "
                     "`private_key`"]


def test_a_valid_section_passes_check_and_lint_knows_its_fields(tmp_path: Path,
                                                                ca: Authority) -> None:
    a = ca.issue("a")
    tls = {"keys": [{"public_key": str(a.cert), "private_key": str(a.key)}],
           "enable_mtls": True, "ca_certs": [str(ca.path)], "curve_preferences": [23, 24, 25],
           "min_version": "TLS12", "cipher_suites": [49195, 49199, 4865]}
    assert _check(tmp_path, {"tls": tls}, "-l") == (0, [])
    code, lines = _check(tmp_path, {"tls": {**tls, "min_verison": "TLS12"}}, "-l")
    assert code == 1
    assert any("tls.min_verison" in line and line.startswith("ERROR linting") for line in lines)
    # A disabled section names no file that must exist: plain HTTP, as KrakenD.
    assert _check(tmp_path, {"tls": {"disabled": True, "public_key": "nope.pem"}}) == (0, [])


def test_the_config_hash_follows_the_certificate_content(tmp_path: Path, ca: Authority) -> None:
    a = ca.issue("a")
    config = tmp_path / "krakend.json"
    config.write_text(json.dumps({"version": 3, "tls": {"public_key": str(a.cert),
                                                        "private_key": str(a.key)}}))
    first = build_candidate(str(config), {}, port=None, debug=False)
    assert build_candidate(str(config), {}, port=None, debug=False).config_hash == \
        first.config_hash
    ca.issue("a")  # renewed in place: same paths, new content
    assert build_candidate(str(config), {}, port=None, debug=False).config_hash != \
        first.config_hash


def test_krakend_defaults_and_go_numbers(ca: Authority) -> None:
    a = ca.issue("a", ("a.test",))
    data = attach_files({"tls": {"public_key": str(a.cert), "private_key": str(a.key)},
                         "client_tls": {"ca_certs": [str(ca.path)]}})
    assert set(data[FILES_KEY]) == {str(a.cert), str(a.key), str(ca.path)}
    server = server_tls(data)
    assert server is not None
    options = server.options
    assert (options.min_version, options.max_version) == (0x0304, 0x0304)  # TLS13 only
    assert options.curves == ("P-521", "P-384", "P-256")  # lura's defaultCurves
    assert options.ciphers[0] == "ECDHE-RSA-AES128-GCM-SHA256"  # lura's defaults
    assert server.keys[0].names == ("a.test",)
    ctx = server_contexts(server)
    assert ctx.minimum_version.name == "TLSv1_3"
    client = client_tls(data)
    assert client is not None and client.options is not None and not client.insecure
    assert client_context(client).maximum_version.name == "TLSv1_3"
    # The legacy root flag, as KrakenD's ServiceConfig.AllowInsecureConnections.
    legacy = client_tls({"allow_insecure_connections": True})
    assert legacy is not None and legacy.insecure
    assert client_context(legacy).verify_mode.name == "CERT_NONE"
    with pytest.raises(Exception, match="reserved by tidegate"):
        attach_files({FILES_KEY: {}})


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """An in-memory handshake; the negotiated version, or the error's reason."""
    c2s, s2c = ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(c2s, s2c, server_side=True)
    cli = client.wrap_bio(s2c, c2s, server_side=False, server_hostname="a.test")
    done = {"c": False, "s": False}
    try:
        for _ in range(10):
            for side, obj in (("c", cli), ("s", srv)):
                if not done[side]:
                    try:
                        obj.do_handshake()
                        done[side] = True
                    except ssl.SSLWantReadError:
                        pass
            if all(done.values()):
                return cli.version() or ""
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    return "stuck"


def _client(ca: Authority, **settings: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, value in settings.items():
            if name == "curve":
                ctx.set_ecdh_curve(value)
            elif name == "ciphers":
                ctx.set_ciphers(value)
            else:
                setattr(ctx, name, value)
    return ctx


def test_curves_suites_and_versions_are_what_the_handshake_offers(ca: Authority) -> None:
    a = ca.issue("a", ("a.test",))

    def server(**tls: Any) -> ssl.SSLContext:
        settings = server_tls(attach_files({"tls": {"public_key": str(a.cert),
                                                    "private_key": str(a.key), **tls}}))
        assert settings is not None
        return server_contexts(settings)

    # KrakenD's default curves are P-521, P-384, P-256: a client offering only X25519 fails.
    assert _handshake(server(), _client(ca)) == "TLSv1.3"
    assert _handshake(server(), _client(ca, curve="X25519")) == "NO_SUITABLE_KEY_SHARE"
    assert _handshake(server(), _client(ca, curve="secp384r1")) == "TLSv1.3"
    only_p384 = server(curve_preferences=[24])
    assert _handshake(only_p384, _client(ca, curve="prime256v1")) == "NO_SUITABLE_KEY_SHARE"
    assert _handshake(only_p384, _client(ca, curve="secp384r1")) == "TLSv1.3"
    assert _handshake(server(curve_preferences=[29, 23]), _client(ca, curve="X25519")) == \
        "TLSv1.3"
    # TLS 1.2 suites by Go's numbers: the client's other suites are refused.
    tls12 = server(min_version="TLS12", max_version="TLS12", cipher_suites=[49195])
    assert _handshake(tls12, _client(ca, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")) == "TLSv1.2"
    assert _handshake(tls12, _client(ca, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305")) == \
        "NO_SHARED_CIPHER"
    assert _handshake(tls12, _client(ca, minimum_version=ssl.TLSVersion.TLSv1_3)) == \
        "UNSUPPORTED_PROTOCOL"
