"""`security/bot-detector` through a real gateway: 403 with KrakenD's empty answer, at the root
(before routing, not on /__health) and in one endpoint; a pattern Go would refuse is a
located `check` error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, backend, exchange, free_port, gateway, write_config
from tests.support import header_values as values

pytestmark = pytest.mark.slow

ROOT_BOTS = {"deny": ["a"], "allow": ["Pingdom.com_bot_version_1.1"],
             "patterns": ["(Pingdom.com_bot_version_).*", r"(?i)\bcurl/"], "cache_size": 10}


def _config(bport: int, root: dict[str, Any] | None) -> dict[str, Any]:
    def ep(path: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"endpoint": path, "extra_config": extra or {},
                "backend": [{"host": [f"http://127.0.0.1:{bport}"], "url_pattern": "/echo"}]}

    return {"version": 3,
            "extra_config": {"security/bot-detector": root} if root is not None else {},
            "endpoints": [ep("/open"), ep("/guarded", {"security/bot-detector": {
                "deny": ["scraper/1.0"], "empty_user_agent_is_bot": True}})]}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with backend() as bport:
        cfg = tmp_path_factory.mktemp("bots") / "krakend.json"
        write_config(cfg, _config(bport, ROOT_BOTS))
        gport = free_port()
        with gateway(str(cfg), gport):
            yield gport


@pytest.mark.parametrize("ua", ["a", "Pingdom.com_bot_version_1.14", "my CURL/8.0"])
def test_root_detector_answers_403_with_nothing_else(port: int, ua: str) -> None:
    status, headers, body = exchange(port, "GET", "/open", {"User-Agent": ua})
    assert (status, body) == (403, b"")
    assert not values(headers, "content-type") and not values(headers, "x-krakend-completed")
    # before routing: an unknown path is refused too, as gin's NoRoute runs the middlewares
    assert exchange(port, "GET", "/nowhere", {"User-Agent": ua})[0] == 403


def test_allow_is_exact_and_health_is_not_checked(port: int) -> None:
    assert exchange(port, "GET", "/open", {"User-Agent": "Pingdom.com_bot_version_1.1"})[0] \
        == 200
    assert exchange(port, "GET", "/__health", {"User-Agent": "a"})[0] == 200
    assert exchange(port, "GET", "/open", {"User-Agent": "Mozilla/5.0"})[0] == 200


def test_endpoint_detector_guards_only_its_endpoint(port: int) -> None:
    assert exchange(port, "GET", "/guarded", {"User-Agent": "scraper/1.0"})[0] == 403
    assert exchange(port, "GET", "/open", {"User-Agent": "scraper/1.0"})[0] == 200
    # empty_user_agent_is_bot there: http.client sends no User-Agent when given ""
    assert exchange(port, "GET", "/guarded", {"User-Agent": ""})[0] == 403
    assert exchange(port, "GET", "/open", {"User-Agent": ""})[0] == 200


def test_a_pattern_go_refuses_is_a_check_error(tmp_path: Path) -> None:
    cfg = tmp_path / "krakend.json"
    cfg.write_text(json.dumps(_config(9, {"patterns": ["ok", "(?<!x)bot"]}), indent=2))
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 1
    assert (f'{cfg}:7:9: extra_config["security/bot-detector"].patterns[1]: patterns[1] is not '
            "a valid Go (RE2) regular expression: invalid perl operator: (?<") in proc.stderr
