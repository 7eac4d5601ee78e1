"""What keeps hot reload alive when a build or the watcher itself fails.

`build_in_thread` abandons a build that never returns (without blocking the process's exit),
`build_candidate` turns any unforeseen exception into a rejected build, and `supervise_watch`
survives a failing reload and a crashing watcher. Test doubles stand in for the watcher only
where a real one cannot be made to crash.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import ROOT
from tidegate.errors import ConfigBuildError
from tidegate.reload import builder, collector, watcher
from tidegate.reload.builder import build_candidate, build_in_thread
from tidegate.reload.watcher import RESTARTED, plan_watches, resolution_chain, supervise_watch


def test_a_build_that_never_returns_is_abandoned_and_the_lock_released() -> None:
    release = threading.Event()
    lock = asyncio.Lock()

    def stuck() -> builder.Candidate:
        with collector.collector_paused():  # as a real build does
            release.wait(30)
        raise AssertionError("abandoned builds are never read")

    async def main() -> str:
        async with lock:
            try:
                await build_in_thread(stuck, source="krakend.json", deadline=0.2)
            except ConfigBuildError as exc:
                message = str(exc)
        assert not lock.locked()
        assert gc.isenabled()  # the stuck build paused the collector; abandoning it resumes it
        # The next build runs although the stuck one still holds its thread.
        async with lock:
            done = await build_in_thread(lambda: "fresh", source="krakend.json",  # type: ignore
                                         deadline=10)
        assert done == "fresh"
        return message

    try:
        message = asyncio.run(main())
    finally:
        release.set()
    assert message.startswith("krakend.json: the build did not finish within 0.2s")


def test_stopping_abandons_a_stuck_build_at_once() -> None:
    release = threading.Event()

    async def main() -> str:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_soon(stop.set)
        with pytest.raises(ConfigBuildError) as info:
            await build_in_thread(lambda: release.wait(30), source="c.json",  # type: ignore
                                  deadline=30, stop=stop)
        return str(info.value)

    try:
        assert asyncio.run(main()) == "c.json: the build was abandoned: the gateway is stopping"
    finally:
        release.set()


def test_a_read_that_never_returns_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """A build blocked for good in open() on a FIFO: the process still exits when done."""
    fifo = tmp_path / "hung"
    os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        import asyncio
        from tidegate.reload.builder import build_in_thread

        def hung():
            with open({str(fifo)!r}) as fh:  # no writer: blocks for ever
                return fh.read()

        async def main():
            try:
                await build_in_thread(hung, source="krakend.json", deadline=0.2)
            except Exception as exc:
                print(exc, flush=True)

        asyncio.run(main())
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "the build did not finish within 0.2s" in done.stdout


def test_an_unforeseen_exception_is_a_rejected_build(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "krakend.json"
    config.write_text('{"version": 3, "endpoints": []}')

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(builder, "Generation", broken)
    with pytest.raises(ConfigBuildError) as info:
        build_candidate(str(config), {}, port=None, debug=False)
    assert str(info.value) == (f"{config}: the configuration could not be built: "
                               "ZeroDivisionError: division by zero")
    assert info.value.to_dict()["kind"] == "build"


class FakeWatcher:
    """Yields the given change sets, then fails or waits to be closed."""

    def __init__(self, batches: list[set[str]], fail: bool) -> None:
        self.batches = batches
        self.fail = fail
        self.closed = False
        self._closing = asyncio.Event()

    async def changes(self) -> AsyncIterator[set[str]]:
        for batch in self.batches:
            yield batch
        if self.fail:
            raise RuntimeError("inotify went away")
        await self._closing.wait()

    def close(self) -> None:
        self.closed = True
        self._closing.set()


def test_watch_survives_a_failing_reload_and_a_crashing_watcher(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher, "RESTART_DELAY", 0.0)
    made = [FakeWatcher([{"a"}, {"b"}], fail=True), FakeWatcher([{"c"}], fail=False)]
    seen: list[set[str]] = []

    async def main() -> None:
        got_c = asyncio.Event()

        async def on_change(changed: set[str]) -> None:
            seen.append(changed)
            if changed == {"a"}:
                raise ValueError("a reload went wrong")
            if changed == {"c"}:
                got_c.set()

        task = supervise_watch(lambda: made.pop(0), on_change)  # type: ignore[arg-type,return-value]
        await asyncio.wait_for(got_c.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="tidegate"):
        asyncio.run(main())
    assert seen == [{"a"}, {"b"}, {RESTARTED}, {"c"}]
    messages = [r.getMessage() for r in caplog.records]
    assert "handling a configuration change failed; still watching" in messages
    assert "the configuration watcher failed; watching again in 0.0s" in messages
    assert "watching the configuration again" in messages


def test_watches_follow_the_path_as_given_through_a_configmap_layout(tmp_path: Path) -> None:
    (tmp_path / "..2026_01").mkdir()
    (tmp_path / "..2026_01" / "krakend.json").write_text("{}")
    os.symlink("..2026_01", tmp_path / "..data")
    os.symlink("..data/krakend.json", tmp_path / "krakend.json")
    given = str(tmp_path / "krakend.json")
    assert resolution_chain(given) == [given, str(tmp_path / "..data"),
                                       str(tmp_path / "..2026_01" / "krakend.json")]
    plan = plan_watches([given])
    assert plan.folders == {str(tmp_path), str(tmp_path.parent),
                            str(tmp_path / "..2026_01")}
    assert plan.matters(str(tmp_path / "..data"))
    assert plan.matters(str(tmp_path))  # the folder itself removed or made again
    assert not plan.matters(str(tmp_path / "gw.log"))
    assert not plan.matters(str(tmp_path / "..2026_02"))


def test_a_sighup_reload_that_fails_unexpectedly_does_not_end_sighup_reloads(
        caplog: pytest.LogCaptureFixture) -> None:
    from tidegate.server.supervisor import Supervisor

    async def scenario() -> list[str]:
        sup = Supervisor(None, port=None, debug=False, watch=False, workers=1, env={})
        calls: list[str] = []
        first, second = asyncio.Event(), asyncio.Event()

        async def reload(reason: str) -> None:
            calls.append(reason)
            if len(calls) == 1:
                first.set()
                raise RuntimeError("injected fault")
            second.set()

        sup.reload = reload  # type: ignore[method-assign]
        task = asyncio.ensure_future(sup._on_hup())
        sup.reload_requested.set()
        await asyncio.wait_for(first.wait(), 5)
        sup.reload_requested.set()  # the handler cleared the first request before reloading
        await asyncio.wait_for(second.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return calls

    with caplog.at_level(logging.ERROR, logger="tidegate"):
        assert asyncio.run(scenario()) == ["SIGHUP", "SIGHUP"]
    assert "SIGHUP: the reload failed unexpectedly" in caplog.text
    assert "injected fault" in caplog.text
