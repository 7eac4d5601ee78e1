"""TLS at the edge, as a client meets it: a real gateway on 127.0.0.1 with certificates the
tests make (`tests/tls_support.py`), reached with curl and Python's ssl clients."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.support import Gateway, backend, free_port, gateway, write_config
from tests.tls_support import (
    Authority,
    Issued,
    client_context,
    peer_serial,
    tls_connect,
    tls_get,
)

pytestmark = pytest.mark.slow


def _config(bport: int, tls: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "timeout": "3s", "tls": tls, "endpoints": [
        {"endpoint": "/hello", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                            "url_pattern": "/hello"}]}]}


def _keys(*pairs: Issued) -> list[dict[str, str]]:
    return [{"public_key": str(p.cert), "private_key": str(p.key)} for p in pairs]


def _renew(ca: Authority, stem: str) -> Issued:
    """A new certificate and key for the same names, swapped in by rename (as cert-manager
    and editors write), the key first."""
    fresh = ca.issue(f"{stem}-next")
    fresh.key.replace(fresh.key.with_name(f"{stem}.key"))
    fresh.cert.replace(fresh.cert.with_name(f"{stem}.crt"))
    return Issued(fresh.cert.with_name(f"{stem}.crt"), fresh.key.with_name(f"{stem}.key"),
                  fresh.serial)


def test_curl_with_cacert_gets_the_answer_and_plain_http_is_refused(tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed (.ci/run installs it)"
    ca = Authority(tmp_path)
    leaf = ca.issue("server")
    config = tmp_path / "krakend.json"
    with backend() as bport:
        write_config(config, _config(bport, {"keys": _keys(leaf)}))
        port = free_port()
        with gateway(str(config), port):
            out = subprocess.run(
                [curl, "-sS", "--cacert", str(ca.path), "-w", "\\n%{http_code} %{http_version}",
                 f"https://localhost:{port}/hello"],
                capture_output=True, text=True, timeout=20)
            assert out.returncode == 0, out.stderr
            body, _, status = out.stdout.rpartition("\n")
            assert status == "200 1.1"  # ALPN offers http/1.1 only
            assert '"path": "/hello"' in body or '"path":"/hello"' in body
            # The same port in plain HTTP: no HTTP answer, the connection is closed.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try:
                    answer = raw.recv(65536)
                except ConnectionResetError:
                    answer = b""
            assert not answer.startswith(b"HTTP/")
            # Without the CA, curl refuses the certificate.
            untrusted = subprocess.run([curl, "-sS", f"https://localhost:{port}/hello"],
                                       capture_output=True, text=True, timeout=20)
            assert untrusted.returncode == 60, untrusted.stderr  # peer certificate not trusted


# The server ends the handshake (the client could speak that version: see the positive case).
REFUSED = "UNEXPECTED_EOF|ALERT_PROTOCOL_VERSION|WRONG_VERSION"


def _old_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only `version` (old versions need OpenSSL's security level 0)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0, on purpose
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def test_tls_versions_follow_krakend_names_and_defaults(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    leaf = ca.issue("server")
    config = tmp_path / "krakend.json"
    with backend() as bport:
        # Default: TLS 1.3 only, as KrakenD.
        write_config(config, _config(bport, {"public_key": str(leaf.cert),
                                             "private_key": str(leaf.key)}))
        port = free_port()
        with gateway(str(config), port):
            with tls_connect(port, client_context(ca.path)) as sock:
                assert sock.version() == "TLSv1.3"
                assert sock.selected_alpn_protocol() is None  # the client offered none
                assert tls_get(sock, "/hello")[0] == 200
            with pytest.raises(ssl.SSLError, match=REFUSED):
                tls_connect(port, _old_client(ssl.TLSVersion.TLSv1_2)).close()
        # TLS12 as the minimum: TLS 1.2 is served, TLS 1.0 is refused by the server.
        write_config(config, _config(bport, {"keys": _keys(leaf), "min_version": "TLS12",
                                             "cipher_suites": [49195, 4865]}))
        with gateway(str(config), port):
            with tls_connect(port, _old_client(ssl.TLSVersion.TLSv1_2)) as sock:
                assert sock.version() == "TLSv1.2"
                assert sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"  # suite 49195
                assert tls_get(sock, "/hello")[0] == 200
            with pytest.raises(ssl.SSLError, match=REFUSED):
                tls_connect(port, _old_client(ssl.TLSVersion.TLSv1)).close()
        # The same client is served where TLS10 is asked for (with a suite TLS 1.0 has: the
        # default suites are all TLS 1.2 AEAD ones, as in KrakenD).
        write_config(config, _config(bport, {"keys": _keys(leaf), "min_version": "TLS10",
                                             "cipher_suites": [49161]}))
        with gateway(str(config), port), \
                tls_connect(port, _old_client(ssl.TLSVersion.TLSv1)) as sock:
            assert sock.version() == "TLSv1"
            assert tls_get(sock, "/hello")[0] == 200


def _no_answer(port: int, ctx: ssl.SSLContext) -> bool:
    """The request gets no HTTP answer: the connection ends during or just after the
    handshake (with TLS 1.3 the client finishes its side first, then the server ends it)."""
    try:
        with tls_connect(port, ctx) as sock:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return sock.recv(65536) == b""
    except (ssl.SSLError, ConnectionResetError):
        return True


def test_mtls_refuses_a_client_without_a_certificate_and_serves_one_with(
        tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    clients = Authority(tmp_path, "client CA")
    leaf = ca.issue("server")
    good = clients.issue("alice", ("alice",), client=True)
    stranger = Authority(tmp_path, "other CA").issue("mallory", ("mallory",), client=True)
    config = tmp_path / "krakend.json"
    with backend() as bport:
        write_config(config, _config(bport, {
            "keys": _keys(leaf), "enable_mtls": True, "ca_certs": [str(clients.path)],
            "disable_system_ca_pool": True}))
        port = free_port()
        with gateway(str(config), port):
            with tls_connect(port, client_context(ca.path, cert=good)) as sock:
                assert tls_get(sock, "/hello")[0] == 200
            for cert in (None, stranger):
                assert _no_answer(port, client_context(ca.path, cert=cert))


def test_a_renewed_certificate_serves_new_connections_while_old_ones_go_on(
        tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    first = ca.issue("server")
    config = tmp_path / "krakend.json"
    with backend() as bport:
        write_config(config, _config(bport, {"keys": _keys(first)}))
        port = free_port()
        with gateway(str(config), port, "--watch") as gw:
            old = tls_connect(port, client_context(ca.path))
            try:
                assert peer_serial(old) == first.serial
                assert tls_get(old, "/hello")[0] == 200
                renewed = _renew(ca, "server")
                gw.wait_for("generation 2 active")
                with tls_connect(port, client_context(ca.path)) as new:
                    assert peer_serial(new) == renewed.serial
                    assert tls_get(new, "/hello")[0] == 200
                # The keep-alive connection opened before goes on, on its own session.
                assert tls_get(old, "/hello")[0] == 200
                assert peer_serial(old) == first.serial
                # A broken certificate keeps the last good one serving, with a located error.
                renewed.cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
                line = gw.wait_for("configuration rejected")
                assert "still serving generation 2" in line
                located = gw.wait_for("tls.keys[0].public_key")
                assert f"{config}:" in located and "not a valid PEM certificate" in located
                with tls_connect(port, client_context(ca.path)) as new:
                    assert peer_serial(new) == renewed.serial
                assert tls_get(old, "/hello")[0] == 200
                # SIGHUP reads the files again too.
                again = _renew(ca, "server")
                gw.proc.send_signal(signal.SIGHUP)
                gw.wait_for("generation 3 active")
                with tls_connect(port, client_context(ca.path)) as new:
                    assert peer_serial(new) == again.serial
                assert tls_get(old, "/hello")[0] == 200
            finally:
                old.close()


def test_several_keys_are_chosen_by_sni(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    default = ca.issue("default", ("localhost",))
    api = ca.issue("api", ("api.example.com", "*.api.example.com"))
    config = tmp_path / "krakend.json"
    with backend() as bport:
        write_config(config, _config(bport, {"keys": _keys(default, api)}))
        port = free_port()
        with gateway(str(config), port):
            for name, expected in (("api.example.com", api), ("v2.api.example.com", api),
                                   ("localhost", default)):
                with tls_connect(port, client_context(ca.path), name) as sock:
                    assert peer_serial(sock) == expected.serial
                    assert tls_get(sock, "/hello", name)[0] == 200
            ctx = client_context(ca.path)
            ctx.check_hostname = False
            with tls_connect(port, ctx, "unknown.test") as sock:  # no match: the first key
                assert peer_serial(sock) == default.serial


def test_a_certificate_issued_after_the_start_is_picked_up_by_the_watch(tmp_path: Path) -> None:
    """cert-manager may issue the certificate after the gateway starts: with --watch, the
    missing files are reported with their position and watched, and their arrival serves."""
    ca = Authority(tmp_path)
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    config = tmp_path / "krakend.json"
    port = free_port()
    with backend() as bport:
        write_config(config, _config(bport, {"public_key": str(cert), "private_key": str(key)}))
        gw = Gateway(["run", "-p", str(port), "--workers", "1", "--watch", "-c", str(config)])
        try:
            line = gw.wait_for("tls.public_key")
            assert f"cannot read '{cert}': No such file or directory" in line
            gw.wait_for("watching for a valid configuration")
            issued = ca.issue("server")
            gw.wait_for("listening on")
            with tls_connect(port, client_context(ca.path)) as sock:
                assert peer_serial(sock) == issued.serial
                assert tls_get(sock, "/hello")[0] == 200
        finally:
            assert gw.stop() == 0


def test_a_stop_does_not_wait_for_idle_tls_clients_to_say_goodbye(tmp_path: Path) -> None:
    """An idle keep-alive client that never answers close_notify does not hold the drain
    (asyncio waits 30 s for it by default; the drain would give up only after 10 s)."""
    ca = Authority(tmp_path)
    leaf = ca.issue("server")
    config = tmp_path / "krakend.json"
    with backend() as bport:
        write_config(config, _config(bport, {"keys": _keys(leaf)}))
        port = free_port()
        gw = Gateway(["run", "-p", str(port), "--workers", "1", "-c", str(config)])
        try:
            gw.wait_for("listening on")
            with tls_connect(port, client_context(ca.path)) as idle:
                assert tls_get(idle, "/hello")[0] == 200
                started = time.monotonic()
                assert gw.stop() == 0
                assert time.monotonic() - started < 6.0
        finally:
            gw.stop()
