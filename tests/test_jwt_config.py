"""auth/validator configuration: `check` refuses what KrakenD would silently turn into a default
or a gateway that answers 401 to everyone, and says where."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tests.jwt_support import ISSUER, claims, sign
from tests.support import backend, free_port, gateway, request, write_config
from tidegate.cli import main


def _config(section: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "endpoints": [{
        "endpoint": "/a", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
        "extra_config": {"auth/validator": section}}]}


@pytest.mark.parametrize(("section", "where", "message"), [
    ({"jwk_url": "https://idp/jwks"}, "alg", "alg is required: one of EdDSA, HS256"),
    ({"alg": "none", "jwk_url": "https://idp/jwks"}, "alg", "unknown algorithm 'none'"),
    ({"alg": "RS256"}, "jwk_url", "jwk_url (or jwk_local_path) is required"),
    ({"alg": "RS256", "jwk_url": "http://idp/jwks"}, "jwk_url",
     "jwk_url 'http://idp/jwks' is not https"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "leeway": "5 seconds"}, "leeway",
     "leeway: time: unknown unit"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "key_identify_strategy": "jku"},
     "key_identify_strategy", "unknown key_identify_strategy 'jku'"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "scopes_matcher": "some"},
     "scopes_matcher", "scopes_matcher must be \"any\" or \"all\""),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "roles": "admin"}, "roles",
     "roles must be a list of strings"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "propagate_claims": [["sub"]]},
     "propagate_claims[0]", "each propagate_claims entry must be [claim, header]"),
    ({"alg": "RS256", "jwk_local_path": "missing.json"}, "jwk_local_path",
     "jwk_local_path 'missing.json': No such file or directory"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "jwk_local_ca": "nope.pem"},
     "jwk_local_ca", "jwk_local_ca 'nope.pem': no such file"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "cipher_suites": [1]},
     "cipher_suites[0]", "unknown cipher suite 1"),
    ({"alg": "RS256", "jwk_url": "https://idp/jwks", "secret_url": "base64key://x"},
     "secret_url", "not supported"),
])
def test_check_refuses_with_the_location(tmp_path: Path, capsys: Any, section: dict[str, Any],
                                         where: str, message: str) -> None:
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(_config(section), indent=2))
    assert main(["check", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert f'endpoints[0].extra_config["auth/validator"].{where}' in err
    assert message in err


def test_cache_cannot_be_combined_with_a_local_key_set(tmp_path: Path, capsys: Any) -> None:
    keys = tmp_path / "jwk.json"
    keys.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}))
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(_config({"alg": "ES256", "jwk_local_path": str(keys),
                                        "cache": True}), indent=2))
    assert main(["check", "-c", str(path)]) == 1
    assert "cache cannot be used with jwk_local_path" in capsys.readouterr().err


def test_a_local_key_set_without_usable_keys_is_refused(tmp_path: Path, capsys: Any) -> None:
    keys = tmp_path / "jwk.json"
    keys.write_text(json.dumps({"keys": [{"kty": "oct", "k": ""}]}))
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(_config({"alg": "HS256", "jwk_local_path": str(keys)}), indent=2))
    assert main(["check", "-c", str(path)]) == 1
    assert "none of the 1 keys is usable" in capsys.readouterr().err


def test_local_key_set_es256_with_x5t_strategy(tmp_path: Path) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "ec1", "x5t": "thumb"})
    keys = tmp_path / "jwk.json"
    keys.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    with backend() as bport:
        conf = tmp_path / "krakend.json"
        write_config(conf, {"version": 3, "endpoints": [{
            "endpoint": "/a", "backend": [{"host": [f"http://127.0.0.1:{bport}"],
                                           "url_pattern": "/"}],
            "extra_config": {"auth/validator": {
                "alg": "ES256", "jwk_local_path": str(keys), "issuer": ISSUER,
                "key_identify_strategy": "x5t", "leeway": "1m"}}}]})
        port = free_port()
        with gateway(str(conf), port):
            def get(token: str) -> int:
                return request(port, "GET", "/a", headers={"Authorization": token})[0]
            assert get(sign(key, claims(), alg="ES256", kid="ignored", x5t="thumb")) == 200
            assert get(sign(key, claims(), alg="ES256", kid="ec1", x5t="other")) == 401
            # leeway "1m": expired 30 s ago still passes, 90 s ago does not.
            assert get(sign(key, claims(exp=int(time.time()) - 30), alg="ES256",
                            x5t="thumb")) == 200
            assert get(sign(key, claims(exp=int(time.time()) - 90), alg="ES256",
                            x5t="thumb")) == 401
