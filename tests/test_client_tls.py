"""`client_tls`: how the gateway reaches https backends (KrakenD's root setting), against a real
TLS backend on 127.0.0.1 that asks for a client certificate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, free_port, gateway, request, write_config
from tests.tls_support import Authority, https_backend

pytestmark = pytest.mark.slow


def _config(bport: int, **root: Any) -> dict[str, Any]:
    return {"version": 3, "timeout": "3s", **root, "endpoints": [
        {"endpoint": "/hello", "backend": [{"host": [f"https://localhost:{bport}"],
                                            "url_pattern": "/hello"}]}]}


def test_backends_are_verified_with_client_tls_and_get_its_certificate(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    clients = Authority(tmp_path, "client CA")
    alice = clients.issue("alice", ("alice",), client=True)
    config = tmp_path / "krakend.json"
    port = free_port()
    with https_backend(ca.issue("backend"), client_ca=clients.path) as bport:
        write_config(config, _config(bport, client_tls={
            "ca_certs": [str(ca.path)], "min_version": "TLS12",
            "client_certs": [{"certificate": str(alice.cert), "private_key": str(alice.key)}]}))
        with gateway(str(config), port, "--watch") as gw:
            status, _, body = request(port, "GET", "/hello")
            assert status == 200 and json.loads(body)["path"] == "/hello"
            # Without the CA the backend's certificate is not trusted: the backend fails.
            write_config(config, _config(bport, client_tls={
                "client_certs": [{"certificate": str(alice.cert),
                                  "private_key": str(alice.key)}]}))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/hello")[0] == 500
            # Trusted, but without a client certificate: the backend refuses the handshake.
            write_config(config, _config(bport, client_tls={"ca_certs": [str(ca.path)]}))
            gw.wait_for("generation 3 active")
            assert request(port, "GET", "/hello")[0] == 500
            # allow_insecure_connections skips the verification (and audit says so).
            insecure = _config(bport, client_tls={
                "allow_insecure_connections": True,
                "client_certs": [{"certificate": str(alice.cert),
                                  "private_key": str(alice.key)}]})
            write_config(config, insecure)
            gw.wait_for("generation 4 active")
            assert request(port, "GET", "/hello")[0] == 200
    audit = subprocess.run([sys.executable, "-m", "tidegate", "audit", "-c", str(config)],
                           capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert ("2.1.1\t[HIGH]\tBackends' TLS certificates are not verified "
            "(allow_insecure_connections). (at client_tls.allow_insecure_connections)"
            ) in audit.stdout.splitlines()
