"""The watcher never dies and sees every change a user makes (a real gateway, over 127.0.0.1).

Kubernetes ConfigMap updates (a symlink swapped to a new folder, the old one deleted), a
config folder deleted and made again, a log file written beside the configuration, and saves
that no check foresaw (integers beyond 64 bits, deep nesting, built-in route names, a FIFO).
Every wait is on a log line or on `/__health`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import Gateway, backend, free_port, gateway, health, request, write_config

pytestmark = pytest.mark.slow


def cfg(bport: int, *paths: str, **root: Any) -> dict[str, Any]:
    host = [f"http://127.0.0.1:{bport}"]
    return {"version": 3, "timeout": "5s", **root,
            "endpoints": [{"endpoint": p, "backend": [{"host": host, "url_pattern": p}]}
                          for p in paths]}


class ConfigMapVolume:
    """A folder laid out and updated the way kubelet does it for a mounted ConfigMap.

    ``dir/..<timestamp>/krakend.json``, ``dir/..data -> ..<timestamp>`` and
    ``dir/krakend.json -> ..data/krakend.json``. An update writes a new timestamped folder,
    renames a new symlink over ``..data`` (atomic), then deletes the previous folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.updates = 0
        self.current: Path | None = None
        root.mkdir(exist_ok=True)

    @property
    def config(self) -> Path:
        return self.root / "krakend.json"

    def update(self, write: Callable[[Path], None]) -> None:
        """`write(path)` puts the new krakend.json at `path`."""
        self.updates += 1
        folder = self.root / f"..2026_12_05_13_00_{self.updates:02d}.{os.getpid()}"
        folder.mkdir()
        write(folder / "krakend.json")
        tmp = self.root / "..data_tmp"
        os.symlink(folder.name, tmp)
        os.replace(tmp, self.root / "..data")
        if not self.config.is_symlink():
            os.symlink("..data/krakend.json", self.config)
        if self.current is not None:
            shutil.rmtree(self.current)
        self.current = folder

    def save(self, data: dict[str, Any]) -> None:
        self.update(lambda path: path.write_text(json.dumps(data)))


def save_text(path: Path, content: str) -> None:
    """Atomic, as an editor saves: the watcher never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def device(path: Path) -> None:
    os.symlink("/dev/zero", path)


def folder(path: Path) -> None:
    path.mkdir()


def deep(levels: int) -> str:
    return '{"version": 3, "x": ' + "[" * levels + "]" * levels + ', "endpoints": []}'


def route(bport: int, endpoint: str) -> str:
    return json.dumps(cfg(bport, endpoint, debug_endpoint=True, echo_endpoint=True))


def pathological_saves(bport: int) -> list[tuple[Callable[[Path], None], str]]:
    """Twenty saves that no check foresaw, each with (part of) the error it must produce.

    No two in a row give the same error: the gateway logs an error once until it changes.
    """
    big = '{"version": 3, "timeout": "5s", "x": %s, "endpoints": []}'
    return [
        (text(big % (2**64)), ":1:38: x: integer out of range: 18446744073709551616"),
        (text(deep(10_000)), "invalid JSON: nested deeper than 200 levels"),
        (text(route(bport, "/__health")), "GET /__health collides with the built-in route"),
        (fifo, "not a regular file (a FIFO)"),
        (text(big % (-(2**63) - 1)), "integer out of range: -9223372036854775809"),
        (text(deep(300)), ":1:220: nested deeper than 200 levels"),
        (text(route(bport, "/__echo/")), "GET /__echo/ collides with the built-in route"),
        (device, "not a regular file (a character device)"),
        (text(big % (10**30)), "integer out of range: 1000000000000000000000000000000"),
        (text(deep(1_000)), ":1:220: invalid JSON: nested deeper than 200 levels"),
        (text(route(bport, "/__debug/")), "GET /__debug/ collides with the built-in route"),
        (folder, "cannot read the configuration: Is a directory"),
        (text(big % ("7" * 5000)), "integer out of range: 777777777777…777777 (5000 digits)"),
        (text(deep(5_000)), "invalid JSON: nested deeper than 200 levels, near"),
        (text(route(bport, "/__debug/{x}")), "GET /__debug/{x} collides"),
        (fifo, "not a regular file (a FIFO)"),
        (text(big % "1e400"), ":1:38: x: number out of range"),
        (text(deep(201)), ":1:220: nested deeper than 200 levels"),
        (text(route(bport, "/__echo/{p}/x")), "GET /__echo/{p}/x collides"),
        (text(big % (2**70)), "integer out of range: 1180591620717411303424"),
    ]


def test_a_save_that_broke_the_build_no_longer_ends_hot_reload(tmp_path: Path) -> None:
    """Errors that used to escape the build (and end the watch task in silence) are located
    rejections, and the next good save is applied."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:
            save_text(config, '{"version": 3,\n "max_idle_connections": ' + f"{2**64}}}")
            gw.wait_for(f"{config}:2:26: max_idle_connections: integer out of range")
            assert health(port)["last_reload_error"]["kind"] == "syntax"
            write_config(config, cfg(bport, "/a", "/__health"))
            gw.wait_for("endpoints[1].endpoint: GET /__health collides with the built-in")
            assert health(port)["last_reload_error"]["path"] == "endpoints[1].endpoint"
            save_text(config, deep(10_000))
            gw.wait_for("invalid JSON: nested deeper than 200 levels")
            write_config(config, cfg(bport, "/a", "/b"))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/b")[0] == 200
            assert health(port)["last_reload_error"] is None


def test_configmap_updates_are_each_applied(tmp_path: Path) -> None:
    """Three kubelet-style updates in a row: each is served (today only the first is seen)."""
    with backend() as bport:
        volume = ConfigMapVolume(tmp_path / "config")
        volume.save(cfg(bport, "/v0"))
        port = free_port()
        with gateway(str(volume.config), port, "--watch", "-d") as gw:
            for n in range(1, 4):
                volume.save(cfg(bport, f"/v{n}"))
                gw.wait_for(f"generation {n + 1} active")
                assert request(port, "GET", f"/v{n}")[0] == 200
                assert request(port, "GET", f"/v{n - 1}")[0] == 404


def test_check_watch_follows_configmap_updates(tmp_path: Path) -> None:
    """`check --watch` uses the same watcher: each update gets a fresh verdict."""
    volume = ConfigMapVolume(tmp_path / "config")
    volume.save(cfg(1, "/a"))
    checker = Gateway(["check", "--watch", "-c", str(volume.config)])
    try:
        checker.wait_for("Syntax OK!")
        volume.update(text('{"version": 3, "endpoints": [}'))
        checker.wait_for(f"ERROR parsing the configuration file: {volume.config}:1:30")
        volume.save(cfg(1, "/a", "/b"))
        checker.wait_for("Syntax OK!")
        volume.update(text('{"version": 3,\n "port": 18446744073709551616}'))
        checker.wait_for(f"{volume.config}:2:10: port: integer out of range")
    finally:
        checker.stop(signal.SIGINT)


def test_config_folder_deleted_and_made_again_is_watched_again(tmp_path: Path) -> None:
    with backend() as bport:
        folder_ = tmp_path / "conf"
        folder_.mkdir()
        config = folder_ / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:
            shutil.rmtree(folder_)
            gw.wait_for(f"{config}: cannot read the configuration: No such file or directory")
            assert request(port, "GET", "/a")[0] == 200  # still serving the last good one
            folder_.mkdir()
            write_config(config, cfg(bport, "/a", "/b"))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/b")[0] == 200
            write_config(config, cfg(bport, "/c"))  # and it keeps being watched
            gw.wait_for("generation 3 active")
            assert request(port, "GET", "/c")[0] == 200


def test_log_file_beside_the_config_never_reloads(tmp_path: Path) -> None:
    """`tidegate run --watch -c dir/krakend.json > dir/gw.log`: the log is not configuration."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", tee=tmp_path / "gw.log") as gw:
            for _ in range(20):
                assert request(port, "GET", "/a")[0] == 200
            write_config(config, cfg(bport, "/a", "/b"))
            line = gw.wait_for("generation 2 active")
            assert "change in krakend.json: generation 2 active" in line
            assert health(port)["generation"]["id"] == 2
            assert not any("gw.log" in logged for logged in gw.log), "".join(gw.log)
            assert not any("configuration unchanged" in logged for logged in gw.log)


def test_fifo_config_is_refused_and_shutdown_is_prompt(tmp_path: Path) -> None:
    """A FIFO in place of the config used to block the build, the reloads and SIGTERM."""
    with backend() as bport:
        config = tmp_path / "krakend.json"
        write_config(config, cfg(bport, "/a"))
        port = free_port()
        with gateway(str(config), port, "--watch", "-d") as gw:
            config.unlink()
            os.mkfifo(config)
            gw.wait_for(f"{config}: cannot read the configuration: not a regular file (a FIFO)")
            error = health(port)["last_reload_error"]
            assert error["kind"] == "io" and error["file"] == str(config)
            write_config(config, cfg(bport, "/a", "/b"))
            gw.wait_for("generation 2 active")
            assert request(port, "GET", "/b")[0] == 200
            config.unlink()
            os.mkfifo(config)
            gw.wait_for("not a regular file (a FIFO)")
        # Leaving the block sent SIGTERM and asserted exit status 0 within the stop timeout.


def test_watcher_survives_a_storm_of_updates(tmp_path: Path) -> None:
    """Three ConfigMap updates, twenty pathological saves, the folder deleted and made again:
    every good save is applied and every bad one is reported on `/__health` and in the log."""
    with backend() as bport:
        volume = ConfigMapVolume(tmp_path / "config")
        volume.save(cfg(bport, "/v0"))
        port = free_port()
        with gateway(str(volume.config), port, "--watch", "-d") as gw:
            gen = 1
            for n in range(1, 4):
                volume.save(cfg(bport, f"/v{n}"))
                gen += 1
                gw.wait_for(f"generation {gen} active")
            for write, expected in pathological_saves(bport):
                volume.update(write)
                gw.wait_for(expected)
                error = health(port)["last_reload_error"]
                assert error is not None and expected in error["error"], (expected, error)
                assert error["file"] == str(volume.config)
                assert health(port)["generation"]["id"] == gen  # still serving the last good
                assert request(port, "GET", "/v3")[0] == 200
            volume.save(cfg(bport, "/after-storm"))
            gen += 1
            gw.wait_for(f"generation {gen} active")
            assert health(port)["last_reload_error"] is None
            assert request(port, "GET", "/after-storm")[0] == 200
            # The whole volume goes away and comes back (a pod's volume re-mounted).
            shutil.rmtree(volume.root)
            gw.wait_for("No such file or directory")
            volume = ConfigMapVolume(volume.root)
            volume.save(cfg(bport, "/remounted"))
            gen += 1
            gw.wait_for(f"generation {gen} active")
            volume.save(cfg(bport, "/remounted", "/and-updated"))
            gen += 1
            gw.wait_for(f"generation {gen} active")
            assert request(port, "GET", "/and-updated")[0] == 200
            assert health(port)["generation"]["id"] == gen
            assert "Traceback" not in "".join(gw.log)
