"""`tidegate audit`: rules, severities, ignore lists and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import SHARED
from tidegate.cli import main
from tidegate.config.model import build_service
from tidegate.lint.audit import RULES, audit, parse_severities

FIXTURE = SHARED / "conformance" / "fixtures" / "krakend.json"

# A configuration that passes every rule (hardened, components present).
HARDENED: dict[str, Any] = {
    "version": 3, "timeout": "2s", "tls": {"public_key": "a.pem", "private_key": "a.key"},
    "extra_config": {
        "router": {"hide_version_header": True},
        "security/http": {}, "security/cors": {"allow_origins": ["https://app"]},
        "security/bot-detector": {}, "telemetry/opentelemetry": {}, "telemetry/logging": {},
    },
    "endpoints": [{
        "endpoint": "/a", "input_headers": ["Authorization"],
        "extra_config": {"auth/validator": {"alg": "RS256", "issuer": "https://idp",
                                            "audience": ["api"], "jwk_url": "https://idp/jwk"},
                         "qos/ratelimit/router": {"max_rate": 10}},
        "backend": [
            {"host": ["https://one"], "url_pattern": "/",
             "extra_config": {"qos/circuit-breaker": {}}},
            {"host": ["http://127.0.0.1:9000"], "url_pattern": "/"},
        ],
    }],
}


def _ids(data: dict[str, Any], **kw: Any) -> list[str]:
    return [f.rule for f in audit(build_service(data), **kw)]


def _with(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(HARDENED))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return data


def test_rule_ids_are_unique_and_numeric() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(len(i.split(".")) == 3 and i.replace(".", "").isdigit() for i in ids)


def test_a_hardened_config_has_no_findings() -> None:
    assert _ids(HARDENED) == []


@pytest.mark.parametrize(("changes", "rule"), [
    ({"debug_endpoint": True}, "5.1.2"),
    ({"echo_endpoint": True}, "5.1.3"),
    ({"use_h2c": True}, "2.1.8"),
    ({"tls__disabled": True}, "2.1.3"),
    ({"extra_config__security/cors": {"allow_origins": ["*"], "allow_credentials": True}},
     "8.1.1"),
    ({"extra_config__security/cors": {"allow_credentials": True}}, "8.1.1"),
    ({"endpoints__0__extra_config__auth/validator": {"alg": "RS256", "audience": ["a"]}},
     "8.1.2"),
    ({"endpoints__0__extra_config__auth/validator": {"alg": "RS256", "issuer": "i"}},
     "8.1.3"),
    ({"endpoints__0__extra_config__auth/validator": {
        "issuer": "i", "audience": ["a"], "disable_jwk_security": True}}, "8.1.4"),
    ({"endpoints__0__extra_config__auth/validator": {
        "issuer": "i", "audience": ["a"], "jwk_url": "http://idp/jwk"}}, "8.1.5"),
    ({"endpoints__0__backend__0__host": ["http://remote"]}, "8.2.1"),
    ({"endpoints__0__timeout": "61s"}, "3.3.4"),
    ({"endpoints__0__input_headers": ["*"]}, "2.2.3"),
    ({"endpoints__0__input_query_strings": ["*"]}, "2.2.4"),
    ({"extra_config__router": {}}, "2.2.1"),
    ({"endpoints__0__extra_config": {}}, "3.1.2"),
    ({"endpoints__0__backend__0__extra_config": {}}, "3.1.3"),
    ({"endpoints__0__endpoint": "/a/*"}, "5.1.4"),
])
def test_each_rule_fires(changes: dict[str, Any], rule: str) -> None:
    assert rule in _ids(_with(**changes))


def test_timeouts_fire_every_threshold_below() -> None:
    ids = _ids(_with(endpoints__0__timeout="2m"))
    assert {"3.3.1", "3.3.2", "3.3.3", "3.3.4"} <= set(ids)
    assert "3.3.4" not in _ids(_with(endpoints__0__timeout="59s"))


def test_severity_threshold_and_list() -> None:
    assert parse_severities("HIGH") == {"CRITICAL", "HIGH"}
    assert parse_severities("low") == {"CRITICAL", "HIGH", "MEDIUM", "LOW"}
    assert parse_severities("CRITICAL,LOW") == {"CRITICAL", "LOW"}
    with pytest.raises(ValueError, match="unknown severity SEVERE"):
        parse_severities("SEVERE")


def _write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "krakend.json"
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def test_cli_prints_findings_and_fails(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _with(debug_endpoint=True, **{
        "extra_config__auth/gcp": {"audience": "https://api.test"}}))
    assert main(["audit", "-c", path]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "5.1.2\t[LOW]\tThe /__debug/ endpoint is enabled (debug_endpoint). (at debug_endpoint)",
        "9.1.1\t[CRITICAL]\tA security component (or TLS) is configured but not enforced by "
        "tidegate yet: traffic is not protected by it. (at extra_config[\"auth/gcp\"])",
    ]
    assert captured.err == "audit: 2 recommendation(s) at the selected severities\n"


def test_cli_ignore_and_threshold(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _with(debug_endpoint=True))
    assert main(["audit", "-c", path, "--ignore", "9.1.1"]) == 1
    assert main(["audit", "-c", path, "-i", "9.1.1", "--severity", "MEDIUM"]) == 0
    ignore = tmp_path / ".audit_ignore"
    ignore.write_text("# accepted risks\n9.1.1\n5.1.2\n")
    capsys.readouterr()
    assert main(["audit", "-c", path, "-I", str(ignore)]) == 0
    assert capsys.readouterr().out == ""


def test_cli_json_format(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _with(echo_endpoint=True))
    assert main(["audit", "-c", path, "-i", "9.1.1", "-f", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"recommendations": [
        {"rule": "5.1.3", "severity": "LOW", "where": ["echo_endpoint"],
         "message": "The /__echo/ endpoint is enabled (echo_endpoint)."}], "stats": {}}


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, HARDENED)
    assert main(["audit", "-c", path, "-s", "SEVERE"]) == 2
    assert main(["audit", "-c", path, "-i", "1.2.3.4"]) == 2
    assert "unknown rule(s) to ignore: 1.2.3.4" in capsys.readouterr().err
    assert main(["audit"]) == 2


def test_cli_invalid_config_exits_1(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, {"version": 2})
    assert main(["audit", "-c", path]) == 1
    assert capsys.readouterr().err == (f"ERROR parsing the configuration file: {path}:2:14: "
                                       "version: unsupported version number 2: expected 3\n")


@pytest.mark.skipif(not FIXTURE.exists(), reason="../shared/conformance is not beside the repo")
def test_krakend_example_in_a_real_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "tidegate", "audit", "-c", str(FIXTURE),
                           "--severity", "CRITICAL"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    # auth/signer, the fixture's last unenforced security section, is enforced now.
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == ["8.1.4"]


def test_format_takes_krakends_go_template(tmp_path: Path, capsys) -> None:
    """`-f '{{ marshal . }}'` as in KrakenD's docs: the result as JSON on stderr."""
    path = _write(tmp_path, _with(debug_endpoint=True))
    assert main(["audit", "-c", path, "-s", "LOW", "-i", "9.1.1",
                 "-f", "{{ marshal . }}"]) == 1
    data = json.loads(capsys.readouterr().err)
    assert {"rule": "5.1.2", "severity": "LOW",
            "message": "The /__debug/ endpoint is enabled (debug_endpoint)."} in \
        data["recommendations"]
    assert data["stats"] == {}
    template = "{{ range .Recommendations }}{{.Rule}}\t[{{.Severity}}]   \t{{.Message}}\n{{ end }}"
    assert main(["audit", "-c", path, "-s", "LOW", "-i", "9.1.1", "-f", template]) == 1
    assert "5.1.2\t[LOW]   \tThe /__debug/ endpoint is enabled" in capsys.readouterr().err
    assert main(["audit", "-c", path, "-f", "{{ range .Nope }}{{ end }}"]) == 1
    assert "ERROR rendering the results: " in capsys.readouterr().err
    assert main(["audit", "-c", path, "-f", "{{ if }}"]) == 1
    assert "ERROR parsing the template: " in capsys.readouterr().err
