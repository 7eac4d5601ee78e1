"""The image's entrypoint (docker/entrypoint.sh), run directly: no Docker engine is needed.

A temporary working directory holding krakend.json plays the mounted /etc/krakend, and
TIDEGATE_BIN points the script at this interpreter's `python -m tidegate`.
Readiness and reloads are learned from the supervisor's log lines, never from sleeps.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Gateway, checkout_env, free_port, request, write_config

pytestmark = pytest.mark.slow

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
TIMEOUT = 60.0

if " " in sys.executable:  # TIDEGATE_BIN is split on whitespace, as documented in the script
    pytest.skip("interpreter path contains a space", allow_module_level=True)


def env() -> dict[str, str]:
    # This checkout's package, not whichever copy an editable install last pointed at.
    return {**checkout_env(), "PYTHONUNBUFFERED": "1",
            "TIDEGATE_BIN": f"{sys.executable} -m tidegate"}


def config(port: int, *extra_endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, "listen_ip": "127.0.0.1", "port": port, "timeout": "5s",
            "endpoints": list(extra_endpoints)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder a user mounts at /etc/krakend."""
    write_config(tmp_path / "krakend.json", config(8080))
    return tmp_path


def entrypoint(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], cwd=workdir, env=env(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def Container(workdir: Path, *args: str) -> Gateway:
    """`sh docker/entrypoint.sh ARGS` as a long-running process (what `docker run` starts)."""
    return Gateway([], env=env(), cwd=str(workdir), command=["sh", str(ENTRYPOINT), *args])


@pytest.fixture
def container(workdir: Path) -> Iterator[Any]:
    started: list[Gateway] = []

    def start(*args: str) -> Gateway:
        started.append(Container(workdir, *args))
        return started[-1]

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(TIMEOUT)


def test_version(workdir: Path) -> None:
    from tidegate import __version__

    result = entrypoint(workdir, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"tidegate {__version__}"


def test_check(workdir: Path) -> None:
    result = entrypoint(workdir, "check", "-c", "krakend.json")
    assert result.returncode == 0, result.stderr
    assert "Syntax OK!" in result.stdout


def test_leading_flag_goes_to_tidegate(workdir: Path) -> None:
    result = entrypoint(workdir, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tidegate")


def test_leading_flags_are_added_to_the_default_run(workdir: Path, container) -> None:
    """`docker run IMAGE -d -p N`: the mounted krakend.json served, with those flags."""
    port = free_port()
    c = container("-d", "-p", str(port), "--workers", "1")
    c.wait_for("listening on")
    status, _, body = request(port, "POST", "/__debug/anything", body=b"hi")
    assert status == 200, body
    assert c.stop() == 0, "".join(c.log)


def test_other_command_is_execd(workdir: Path) -> None:
    result = entrypoint(workdir, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n")


def test_watch_serves_and_hot_reloads(workdir: Path, container) -> None:
    port = free_port()
    c = container("watch", "-p", str(port), "--workers", "1")
    c.wait_for("listening on")
    assert request(port, "GET", "/__health")[0] == 200
    assert request(port, "GET", "/fresh")[0] == 404

    write_config(workdir / "krakend.json", config(8080, {"endpoint": "/fresh", "backend": [
        {"host": [f"http://127.0.0.1:{port}"], "url_pattern": "/__health"}]}))
    c.wait_for("generation 2 active")
    assert request(port, "GET", "/fresh")[0] == 200

    code = c.stop()
    assert code == 0, "".join(c.log)
