"""The process runtime as an operator lives it: listening sockets across port changes, where
workers import tidegate from, how many start, the first answer of a start, and workers that die.

Every wait is on an event: a supervisor log line or the generation id on `/__health`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ROOT,
    SLOW_ARRIVED,
    Gateway,
    backend,
    child_pids,
    free_port,
    gateway,
    request,
    write_config,
)

pytestmark = pytest.mark.slow


def cfg(bport: int, port: int | None = None, version: int = 0, endpoints: int = 0
        ) -> dict[str, Any]:
    """A config on 127.0.0.1 whose `/version` answers `version` (through the backend's echo)."""
    host = [f"http://127.0.0.1:{bport}"]
    data: dict[str, Any] = {"version": 3, "listen_ip": "127.0.0.1", "timeout": "5s",
                            "endpoints": [
        {"endpoint": "/version", "backend": [{"host": host, "url_pattern": f"/v/{version}"}]},
        {"endpoint": "/slow", "backend": [{"host": host, "url_pattern": "/slow/x?ms=1500"}]},
        *({"endpoint": f"/e{i}", "backend": [{"host": host, "url_pattern": f"/e{i}"}]}
          for i in range(endpoints))]}
    if port is not None:
        data["port"] = port
    return data


def served_version(port: int) -> int:
    status, _, body = request(port, "GET", "/version")
    assert status == 200, body
    return int(json.loads(body)["path"].rsplit("/", 1)[1])


def assert_refused(port: int) -> None:
    """Nothing listens on the port any more: connecting is refused at once (no hang)."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@contextmanager
def running(*args: str, env: dict[str, str] | None = None, cwd: str | None = None,
            command: list[str] | None = None) -> Iterator[Gateway]:
    gw = Gateway(list(args), env=env, cwd=cwd, command=command)
    try:
        yield gw
    finally:
        code = gw.stop()
        assert code == 0, f"gateway exit status {code}:\n{''.join(gw.log)}"
    assert "Traceback" not in "".join(gw.log), "".join(gw.log)


# listening sockets --------------------------------------------------------------------------
def test_port_change_closes_the_old_socket_and_can_switch_back(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        a, b = free_port(), free_port()
        write_config(config, cfg(bport, a))
        with running("run", "--workers", "2", "--watch", "-c", str(config)) as gw:
            gw.wait_for("listening on")
            write_config(config, cfg(bport, b, version=1))
            gw.wait_for("generation 2 active")
            assert served_version(b) == 1
            assert_refused(a)  # the new workers did not inherit the old socket
            write_config(config, cfg(bport, a, version=2))  # A -> B -> A
            gw.wait_for("generation 3 active")
            assert served_version(a) == 2
            assert_refused(b)
            assert "Address already in use" not in "".join(gw.log)


def test_port_change_saved_as_the_gateway_first_answers_is_applied(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        a, b = free_port(), free_port()
        write_config(config, cfg(bport, a))
        with running("run", "--workers", "2", "--watch", "-c", str(config)) as gw:
            gw.wait_for(f"accepting connections on 127.0.0.1:{a}")
            assert request(a, "GET", "/__health")[0] == 200  # start-up still under way
            write_config(config, cfg(bport, b, version=1))
            gw.wait_for(f"now listening on 127.0.0.1:{b}")
            gw.wait_for("generation 2 active")
            assert served_version(b) == 1
            assert_refused(a)


# start-up -------------------------------------------------------------------------------------
def test_the_first_probe_of_a_start_sees_200(tmp_path: Path) -> None:
    """Connections wait in the backlog until a worker has its first generation, never 503."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        port = free_port()
        write_config(config, cfg(bport, endpoints=300))  # a compile long enough to race with
        with running("run", "-p", str(port), "--workers", "2", "-c", str(config)) as gw:
            gw.wait_for(f"accepting connections on 127.0.0.1:{port}")
            status, _, body = request(port, "GET", "/__health")
            assert status == 200, body
            assert json.loads(body)["generation"]["id"] == 1


def test_run_from_a_folder_holding_a_tidegate_folder(tmp_path: Path) -> None:
    """The README's layout: the project checkout (`tidegate/`) next to `shared/`."""
    (tmp_path / "tidegate").mkdir()
    (tmp_path / "tidegate" / "README.md").write_text("a checkout, not the package\n")
    (tmp_path / "shared").mkdir()
    with backend() as bport:
        write_config(tmp_path / "krakend.json", cfg(bport, version=7))
        port = free_port()
        # As the installed `tidegate` script runs: its own folder, not the current one, is
        # first on the import path.
        boot = (f"import sys; sys.path[0] = {str(ROOT)!r}; "
                "from tidegate.cli import main; sys.exit(main())")
        command = [sys.executable, "-c", boot, "run", "-p", str(port), "--workers", "1",
                   "-c", "krakend.json"]
        with running(command=command, cwd=str(tmp_path)) as gw:
            gw.wait_for("listening on")
            assert served_version(port) == 7


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
def test_default_worker_count_follows_cpu_affinity(tmp_path: Path) -> None:
    config = tmp_path / "krakend.json"
    write_config(config, cfg(1))
    port = free_port()
    command = ["taskset", "-c", "0", sys.executable, "-m", "tidegate", "run", "-p", str(port),
               "-c", str(config)]
    with running(command=command, env={"TIDEGATE_WORKERS": "0"}) as gw:
        assert "with 1 worker(s)" in gw.wait_for("listening on")


# workers that die -----------------------------------------------------------------------------
ACTIVE = re.compile(r"generation (\d+) active, config (\w+)")


def worker_pid(gw: Gateway, index: int) -> int:
    """The pid of the live worker started with `--index index`."""
    for pid in child_pids(gw.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--index" in argv and argv[argv.index(b"--index") + 1] == str(index).encode():
            return pid
    raise AssertionError(f"no worker {index}:\n{''.join(gw.log)}")


def test_worker_killed_in_the_middle_of_reloads_comes_back_on_the_reported_generation(
        tmp_path: Path) -> None:
    """SIGKILL a worker while each reload is under way, under load: every worker ends on the
    generation `/__health` reports, and no request is served by an older config."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, version=0))
        port = free_port()
        with gateway(str(config), port, "--watch", workers=2,
                     env={"TIDEGATE_LOG_LEVEL": "DEBUG"}) as gw:
            floor = [0]  # the version known to be active everywhere
            stale: list[tuple[int, int]] = []
            answers = [0]
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    expected = floor[0]
                    try:
                        got = served_version(port)
                    except OSError:  # held by the worker that was killed
                        continue
                    answers[0] += 1
                    if got < expected:
                        stale.append((expected, got))

            clients = [threading.Thread(target=load) for _ in range(4)]
            for t in clients:
                t.start()
            gen = 1
            try:
                for version in range(1, 7):
                    write_config(config, cfg(bport, version=version))
                    if version % 2:  # dies while the reload is pending or building
                        os.kill(worker_pid(gw, version // 2 % 2), signal.SIGKILL)
                    else:  # worker 1 has swapped: worker 0 dies while loading or acking
                        gw.wait_for(f"w1: generation {gen + 1} (config")
                        os.kill(worker_pid(gw, 0), signal.SIGKILL)
                    found, chash = ACTIVE.search(gw.wait_for(" active, config ")).groups()
                    gen = int(found)
                    floor[0] = version
                    for _ in range(10):  # new connections: both workers get some
                        health = json.loads(request(port, "GET", "/__health")[2])
                        assert (health["generation"]["id"], health["generation"]
                                ["config_hash"]) == (gen, chash)
                        assert served_version(port) == version
            finally:
                stop.set()
                for t in clients:
                    t.join(10)
            assert not stale, f"served by an older config than reported: {stale}"
            assert answers[0] > 0
            log = "".join(gw.log)
            assert "restoring config" not in log and "Traceback" not in log, log


def test_killed_worker_is_restarted_on_the_current_generation_others_answer(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, version=3))
        port = free_port()
        with gateway(str(config), port, workers=2) as gw:
            victim = child_pids(gw.proc.pid)[0]
            SLOW_ARRIVED.clear()
            results: list[Any] = []

            def slow() -> None:
                try:
                    results.append(request(port, "GET", "/slow")[0])
                except OSError as exc:
                    results.append(exc)

            held = [threading.Thread(target=slow) for _ in range(6)]
            for t in held:
                t.start()
            assert SLOW_ARRIVED.wait(10)
            os.kill(victim, signal.SIGKILL)
            gw.wait_for("exited unexpectedly")
            gw.wait_for("restarted on generation 1")
            for t in held:
                t.join(10)
            lost = [r for r in results if isinstance(r, OSError)]
            # The victim's requests are lost with it; every other one is answered.
            assert all(r == 200 for r in results if not isinstance(r, OSError)), results
            assert len(lost) <= len(results)
            assert victim not in child_pids(gw.proc.pid)
            for _ in range(10):
                assert served_version(port) == 3
                assert json.loads(request(port, "GET", "/__health")[2])["generation"]["id"] == 1


# stopping -------------------------------------------------------------------------------------
def test_stop_retires_the_current_generation_and_those_still_draining(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport))
        port = free_port()
        gw = Gateway(["run", "-p", str(port), "--workers", "1", "--watch", "-c", str(config)],
                     env={"TIDEGATE_LOG_LEVEL": "DEBUG"})
        try:
            gw.wait_for("listening on")
            SLOW_ARRIVED.clear()
            result: list[Any] = []
            t = threading.Thread(target=lambda: result.append(request(port, "GET", "/slow")))
            t.start()
            assert SLOW_ARRIVED.wait(10)
            write_config(config, cfg(bport, version=1))
            gw.wait_for("generation 2 active")
        finally:
            code = gw.stop()
        t.join(10)
        assert code == 0 and result and result[0][0] == 200
        log = "".join(gw.log)
        for gen in (1, 2):
            assert re.search(rf"w0: generation {gen} \(config \w+\): draining -> retired", log), log
        assert "Task was destroyed" not in log and "Traceback" not in log


def test_respawning_workers_leaks_no_descriptor_in_the_supervisor(tmp_path: Path) -> None:
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, version=3))
        port = free_port()
        with gateway(str(config), port) as gw:
            fds = f"/proc/{gw.proc.pid}/fd"
            before = len(os.listdir(fds))
            for kill in range(1, 6):  # restarted at once (a longer crash loop backs off)
                os.kill(child_pids(gw.proc.pid)[0], signal.SIGKILL)
                gw.wait_for("restarted on generation 1")
                assert served_version(port) == 3, f"after kill {kill}"
            assert len(os.listdir(fds)) == before
