"""The reload coordinator's decisions over a fake fleet (no processes): life cycle, rollback,
and workers that die while a generation is activated."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tidegate.errors import ConfigError
from tidegate.reload.builder import Candidate
from tidegate.reload.control import Failed, Load, Loaded, Status, ToSupervisor, ToWorker
from tidegate.reload.coordinator import ReloadCoordinator


def candidate(chash: str, port: int = 8080) -> Candidate:
    service = SimpleNamespace(listen_ip="127.0.0.1", port=port)
    loaded = SimpleNamespace(service=service, data={"v": chash}, source="krakend.json")
    return Candidate(loaded, chash, {}, 0.001)  # type: ignore[arg-type]


class FakeWorker:
    """Answers each Load as `plan` says: "ok", "fail", or "die" (then stays dead)."""

    def __init__(self, index: int, plan: Callable[[Load], str]) -> None:
        self.index = index
        self.plan = plan
        self.dead = False
        self.serving: Load | None = None
        self.sent: list[ToWorker] = []

    def send(self, msg: ToWorker) -> None:
        self.sent.append(msg)

    async def wait_ready(self) -> None:
        """Started at once."""

    def load(self, msg: Load) -> asyncio.Future[ToSupervisor | None]:
        fut: asyncio.Future[ToSupervisor | None] = asyncio.get_running_loop().create_future()
        action = "die" if self.dead else self.plan(msg)
        if action == "ok":
            self.serving = msg
            fut.set_result(Loaded(msg.gen))
        elif action == "fail":
            fut.set_result(Failed(msg.gen, "boom"))
        else:
            self.dead = True
            fut.set_result(None)
        return fut


class FakeFleet:
    def __init__(self, plan: Callable[[Load], str] = lambda msg: "ok") -> None:
        self.plan = plan
        self.on_exit: Any = None
        self.spawned: list[FakeWorker] = []
        self.stopped: list[FakeWorker] = []

    def bind(self, listen: tuple[str, int]) -> Any:
        return SimpleNamespace(listen=listen, close=lambda: None)

    async def spawn(self, index: int, listener: Any) -> FakeWorker:
        self.spawned.append(FakeWorker(index, self.plan))
        return self.spawned[-1]

    async def stop(self, workers: list[Any]) -> None:
        self.stopped.extend(workers)

    async def stop_all(self) -> None:
        pass


def coordinator(builds: list[Candidate | ConfigError], fleet: FakeFleet,
                workers: int = 2) -> ReloadCoordinator:
    queue = list(builds)

    async def build() -> Candidate:
        item = queue.pop(0)
        if isinstance(item, ConfigError):
            raise item
        return item

    return ReloadCoordinator(build, fleet, workers=workers, debug=False)


def serving(c: ReloadCoordinator) -> set[tuple[int, str]]:
    return {(w.serving.gen, w.serving.config_hash) for w in c.workers}


def test_life_cycle_of_builds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broken = ConfigError("bad value", file="krakend.json", path=("port",))

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a"), broken, candidate("a"), candidate("b")], FakeFleet())
        await c.start()
        await c.reload("save")
        await c.reload("save")
        await c.reload("save")
        return c

    c = asyncio.run(scenario())
    text = caplog.text
    assert "generation 1 (config a): loading -> validated" in text
    assert "generation 1 (config a): validated -> active" in text
    assert "generation 2 (config -): loading -> rejected (krakend.json: port: bad value)" in text
    assert "generation 2 (config a): validated -> rejected (unchanged)" in text
    assert "generation 2 (config b): validated -> active" in text
    assert "generation 1 (config a): active -> draining" in text
    assert serving(c) == {(2, "b")}
    # The error reached the workers before the log line, and was cleared by the good save.
    statuses = [m for m in c.workers[0].sent if isinstance(m, Status)]
    assert statuses[0].last_reload_error is not None and statuses[-1].last_reload_error is None
    # The journal holds one event per outcome, in order, with what each one was about.
    events = list(c.journal.events)
    assert [(e.result, e.generation, e.config_hash) for e in events] == [
        ("applied", 1, "a"), ("rejected", 1, None), ("unchanged", 1, "a"), ("applied", 2, "b")]
    assert events[1].error is not None and events[1].error["path"] == "port"
    assert events[1].reason == "save"


def test_a_worker_that_fails_puts_everyone_back_under_a_fresh_id() -> None:
    fleet = FakeFleet(lambda msg: "fail" if msg.config_hash == "b" else "ok")

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a"), candidate("b")], fleet)
        await c.start()
        await c.reload("save")
        return c

    c = asyncio.run(scenario())
    assert c.gen_id == 3 and c.current is not None and c.current.config_hash == "a"
    assert serving(c) == {(3, "a")}


def test_a_worker_that_dies_while_activating_is_replaced_and_loaded_with_it() -> None:
    deaths = {"b": 1}

    def plan(msg: Load) -> str:
        if deaths.get(msg.config_hash):
            deaths[msg.config_hash] -= 1
            return "die"
        return "ok"

    fleet = FakeFleet(plan)

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a"), candidate("b")], fleet)
        await c.start()
        await c.reload("save")
        return c

    c = asyncio.run(scenario())
    assert len(fleet.spawned) == 3  # two at start, one replacement
    assert all(not w.dead for w in c.workers)
    assert serving(c) == {(2, "b")}


def test_a_dead_worker_is_restarted_on_the_current_generation_after_the_reload() -> None:
    fleet = FakeFleet()

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a"), candidate("b")], fleet)
        await c.start()
        victim = c.workers[0]
        victim.dead = True
        # Noticed while a reload holds the lock: the restart waits for it, then loads "b"
        # under the id the reload gave it.
        reload = asyncio.ensure_future(c.reload("save"))
        fleet.on_exit(victim, -9)
        await reload
        await asyncio.gather(*c._tasks)
        return c

    c = asyncio.run(scenario())
    assert all(not w.dead for w in c.workers)
    assert serving(c) == {(2, "b")}


def test_crash_loop_is_bounded() -> None:
    fleet = FakeFleet(lambda msg: "die" if msg.config_hash == "b" else "ok")

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a"), candidate("b")], fleet)
        await c.start()
        await c.reload("save")
        return c

    c = asyncio.run(scenario())
    assert c.current is not None and c.current.config_hash == "a"
    assert len(fleet.spawned) < 20


def test_a_worker_that_keeps_dying_is_restarted_with_a_growing_delay() -> None:
    c = coordinator([], FakeFleet())
    delays = [c.restart_delay(0, float(t)) for t in range(10)]
    assert delays[:6] == [0.0] * 6  # the first deaths: at once
    assert delays[6:] == sorted(delays[6:]) and 0 < delays[6] < delays[-1] <= 30
    assert c.restart_delay(1, 9.0) == 0.0  # per worker
    assert c.restart_delay(0, 200.0) == 0.0  # a minute later, forgotten


def test_a_restart_waiting_out_its_delay_is_cancelled_by_shutdown(
        caplog: pytest.LogCaptureFixture) -> None:
    fleet = FakeFleet()

    async def scenario() -> ReloadCoordinator:
        c = coordinator([candidate("a")], fleet)
        await c.start()
        for death in range(1, 8):  # the seventh death in a row waits before its restart
            victim = c.workers[0]
            victim.dead = True
            fleet.on_exit(victim, -9)
            if death < 7:
                await asyncio.gather(*c._tasks)  # restarted at once
        await c.shutdown()
        return c

    with caplog.at_level(logging.ERROR, logger="tidegate"):
        asyncio.run(scenario())
    assert "restarting it in 0.5 s (it keeps dying)" in caplog.text
    assert len(fleet.spawned) == 2 + 6  # the delayed seventh restart never spawned
