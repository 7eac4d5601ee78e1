"""The image's entrypoint (docker/entrypoint.sh), run directly: no Docker engine is needed.

A temporary working directory holding krakend.json plays the mounted /etc/krakend, and
TIDEGATE_BIN points the script at this interpreter's `python -m tidegate`.
Readiness and reloads are learned from the supervisor's log lines, never from sleeps.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, free_port, request, write_config

pytestmark = pytest.mark.slow

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
TIMEOUT = 60.0

if " " in sys.executable:  # TIDEGATE_BIN is split on whitespace, as documented in the script
    pytest.skip("interpreter path contains a space", allow_module_level=True)


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1",
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


class Container:
    """`sh docker/entrypoint.sh ARGS` as a long-running process; output lines on a queue."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT), *args], cwd=workdir, env=env(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no output line with {text!r}; output:\n{''.join(self.log)}") from None
            if text in line:
                return line
            if line == "":
                raise AssertionError(f"exited ({self.proc.wait(TIMEOUT)}) before {text!r}:"
                                     f"\n{''.join(self.log)}")

    def stop(self, timeout: float = TIMEOUT) -> int:
        """SIGTERM (what `docker stop` sends PID 1); kill by PID if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._pump_thread.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def container(workdir: Path) -> Iterator[Any]:
    started: list[Container] = []

    def start(*args: str) -> Container:
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
