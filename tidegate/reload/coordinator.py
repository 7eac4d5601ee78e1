"""The one owner of reloads: generation ids, build, activation, rollback, worker restarts.

Everything that changes what the workers serve runs under one lock: the first start, every
reload (SIGHUP, a save), the move to a new listen address, and the restart of a worker that
died. So a restarted worker is always loaded with the configuration the current id names, and
a reload never sees a worker list that changes under it.

Life cycle of a configuration here (`pipeline.lifecycle`): the build moves it from loading to
validated or rejected; the acknowledgement of every worker makes it active, and the one it
replaces starts draining (the workers retire it). A configuration that validates but fails in
a worker, that equals the serving one, or whose address cannot be bound, is rejected.

The worker processes themselves are the `Fleet`'s (server side): this module decides, the fleet
does the process I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from tidegate.errors import ConfigError
from tidegate.pipeline.lifecycle import Lifecycle, Phase
from tidegate.reload.builder import Candidate, unprotected_lines
from tidegate.reload.control import Failed, Load, Status, ToSupervisor, ToWorker
from tidegate.telemetry.reloads import EndpointDiff, ReloadEvent, ReloadJournal

log = logging.getLogger("tidegate")

ACK_TIMEOUT = 30.0
# Worker deaths tolerated within one activation before it counts as failed (a crash loop).
MAX_RESPAWNS = 8
# A worker that dies outside an activation is restarted after these delays (seconds), by the
# number of its deaths within CRASH_WINDOW: at once for the first ones, then backing off.
RESTART_BACKOFF = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
CRASH_WINDOW = 60.0


class WorkerLink(Protocol):
    """One worker, as the coordinator talks to it."""

    index: int

    def send(self, msg: ToWorker) -> None:
        """Write one control message."""

    def load(self, msg: Load) -> asyncio.Future[ToSupervisor | None]:
        """Send `msg`; resolves to the worker's answer, or None if it died first."""

    async def wait_ready(self) -> None:
        """Until the process has started (imports done), died, or a bound passed."""


class Listener(Protocol):
    """A bound listening socket."""

    def close(self) -> None:
        """Stop listening (the workers close their copies as they stop)."""


W = TypeVar("W", bound=WorkerLink)
L = TypeVar("L", bound=Listener)


class Fleet(Protocol[W, L]):
    """The worker processes (implemented by `server.workers.WorkerFleet`), of worker type `W`
    listening on `L`."""

    on_exit: Callable[[W, int], None] | None

    def bind(self, listen: tuple[str, int]) -> L:
        """A listening socket on `listen`; raises OSError."""

    async def spawn(self, index: int, listener: L) -> W:
        """Start worker `index` on `listener`."""

    async def stop(self, workers: list[W]) -> None:
        """Stop these workers (they drain first)."""

    async def stop_all(self) -> None:
        """Stop every worker still running."""


class ActivationError(RuntimeError):
    """A generation could not be made active in every worker."""


class ListenError(Exception):
    """The address a configuration asks for cannot be bound."""

    def __init__(self, candidate: Candidate, exc: OSError) -> None:
        ip, port = candidate.listen
        super().__init__(f"cannot listen on {ip}:{port}: {exc.strerror or exc}")
        self.source = candidate.loaded.source

    def as_config_error(self) -> ConfigError:
        """The same, located on the configuration's `port` (for `/__health`)."""
        return ConfigError(str(self), file=self.source, path=("port",))


class ReloadCoordinator(Generic[W, L]):
    """Serialises every change of what the workers serve."""

    def __init__(self, build: Callable[[], Awaitable[Candidate]], fleet: Fleet[W, L], *,
                 workers: int, debug: bool) -> None:
        self._build = build
        self.fleet = fleet
        self.nworkers = max(1, workers)
        self.debug = debug
        self.gen_id = 0
        self.current: Candidate | None = None
        self.listen: tuple[str, int] | None = None
        self.workers: list[W] = []
        self.last_error: str | None = None
        self._error_info: dict[str, Any] | None = None
        self.started = asyncio.Event()
        self._listener: L | None = None
        self._active: Lifecycle | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._deaths: dict[int, deque[float]] = {}  # recent death times, by worker index
        # Every outcome of a start, save or SIGHUP: metrics and the status page read it.
        self.journal = ReloadJournal()
        fleet.on_exit = self._worker_exited

    # entry points ----------------------------------------------------------------------------
    async def start(self) -> None:
        """The first configuration: build, bind, start the workers; raises ConfigError,
        ListenError or ActivationError."""
        async with self._lock:
            if self.current is not None:  # a save got there first, under the lock
                return
            try:
                candidate, lc = await self._validated()
            except ConfigError as exc:
                self.journal.record(ReloadEvent("rejected", "start", error=exc.to_dict()))
                raise
            await self._start(candidate, lc)

    async def reload(self, reason: str) -> None:
        """Build, validate and swap in the configuration on disk."""
        async with self._lock:
            if self._stopping:
                return
            try:
                candidate, lc = await self._validated()
            except ConfigError as exc:
                self._report_error(exc, reason)
                return
            if self.current is None:
                # Not serving yet (the first configuration was broken): start with this one.
                try:
                    await self._start(candidate, lc, reason)
                except ListenError as exc:
                    self._report_error(exc.as_config_error(), reason)
                except ActivationError as exc:
                    log.error("%s: could not start: %s", reason, exc)
                return
            if candidate.config_hash == self.current.config_hash:
                lc.advance(Phase.REJECTED, "unchanged")
                self._clear_error()
                self.journal.record(ReloadEvent(
                    "unchanged", reason, generation=self.gen_id,
                    config_hash=candidate.config_hash, build_seconds=candidate.build_seconds))
                log.debug("%s: configuration unchanged (config %s)", reason,
                          candidate.config_hash)
                return
            await self._apply(candidate, lc, reason)

    async def shutdown(self) -> None:
        """Stop restarting workers and stop them all (a reload in flight was cancelled)."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.fleet.stop_all()
        if self._listener is not None:
            self._listener.close()

    # building ----------------------------------------------------------------------------
    async def _validated(self) -> tuple[Candidate, Lifecycle]:
        lc = Lifecycle(self.gen_id + 1, "-")
        try:
            candidate = await self._build()
        except ConfigError as exc:
            lc.advance(Phase.REJECTED, str(exc).splitlines()[0])
            raise
        lc.config_hash = candidate.config_hash
        lc.advance(Phase.VALIDATED, f"built in {candidate.build_seconds * 1000:.1f} ms")
        return candidate, lc

    # starting and reloading ----------------------------------------------------------------
    async def _start(self, candidate: Candidate, lc: Lifecycle, reason: str = "start") -> None:
        try:
            listener = self.fleet.bind(candidate.listen)
        except OSError as exc:
            lc.advance(Phase.REJECTED, f"cannot listen: {exc}")
            raise ListenError(candidate, exc) from None
        log.info("accepting connections on %s:%d; starting %d worker(s)", *candidate.listen,
                 self.nworkers)
        self.gen_id += 1
        self._listener, self.listen = listener, candidate.listen
        self.workers = [await self.fleet.spawn(i, listener) for i in range(self.nworkers)]
        try:
            await self._activate(candidate, self.gen_id, self.workers, listener)
        except ActivationError as exc:
            lc.advance(Phase.REJECTED, str(exc))
            await self.fleet.stop(self.workers)
            listener.close()
            self._listener, self.listen, self.workers = None, None, []
            raise
        lc.advance(Phase.ACTIVE)
        self._active, self.current = lc, candidate
        self.last_error = self._error_info = None
        self.started.set()
        log.info("listening on %s:%d with %d worker(s), generation %d, config %s (%s)",
                 *candidate.listen, self.nworkers, self.gen_id, candidate.config_hash,
                 candidate.loaded.source)
        self._warn_unprotected(candidate)
        self.journal.record(ReloadEvent(
            "applied", reason, generation=self.gen_id, config_hash=candidate.config_hash,
            build_seconds=candidate.build_seconds,
            diff=EndpointDiff.between({}, candidate.fingerprints)))

    async def _apply(self, candidate: Candidate, lc: Lifecycle, reason: str) -> None:
        old = self.current
        assert old is not None
        assert self._listener is not None  # bound since the generation that is current
        listener = None
        if candidate.listen != self.listen:
            try:  # bound before any id is spent: a busy port changes nothing
                listener = self.fleet.bind(candidate.listen)
            except OSError as exc:
                lc.advance(Phase.REJECTED, f"cannot listen: {exc}")
                self._report_error(ListenError(candidate, exc).as_config_error(), reason)
                return
        self.gen_id += 1
        try:
            if listener is not None:
                await self._move(candidate, listener)
            else:
                await self._activate(candidate, self.gen_id, self.workers, self._listener)
        except ActivationError as exc:
            # A worker did not swap: put every worker back on the configuration that
            # served, under a fresh id, so that no two workers serve different ones.
            lc.advance(Phase.REJECTED, str(exc))
            log.error("%s: generation %d failed in a worker (%s); restoring config %s",
                      reason, self.gen_id, exc, old.config_hash)
            self.gen_id += 1
            try:
                await self._activate(old, self.gen_id, self.workers, self._listener)
            except ActivationError as again:
                log.error("restoring config %s failed too: %s", old.config_hash, again)
            self.journal.record(ReloadEvent(
                "rejected", reason, generation=self.gen_id, config_hash=candidate.config_hash,
                build_seconds=candidate.build_seconds, error={"message": str(exc)}))
            return
        lc.advance(Phase.ACTIVE)
        if self._active is not None:
            self._active.advance(Phase.DRAINING, "replaced; the workers retire it")
        self._active, self.current = lc, candidate
        self._clear_error()
        if candidate.unprotected != old.unprotected:
            self._warn_unprotected(candidate)
        diff = EndpointDiff.between(old.fingerprints, candidate.fingerprints)
        # Recorded first: its subscribers switch the supervisor's own log to the new
        # configuration's format, so the line that announces it is written in it.
        self.journal.record(ReloadEvent(
            "applied", reason, generation=self.gen_id, config_hash=candidate.config_hash,
            build_seconds=candidate.build_seconds, diff=diff))
        log.info("%s: generation %d active, config %s, built in %.1f ms, %s", reason,
                 self.gen_id, candidate.config_hash, candidate.build_seconds * 1000,
                 diff.summary())

    async def _move(self, candidate: Candidate, listener: L) -> None:
        """A new listen address: new socket and workers first, then the old ones drain."""
        new_workers = [await self.fleet.spawn(i, listener) for i in range(self.nworkers)]
        try:
            await self._activate(candidate, self.gen_id, new_workers, listener)
        except BaseException:  # failed or cancelled: the old address keeps serving
            await self.fleet.stop(new_workers)
            listener.close()
            raise
        old_workers, old_listener = self.workers, self._listener
        assert old_listener is not None
        self.workers, self._listener, self.listen = new_workers, listener, candidate.listen
        log.info("now listening on %s:%d; draining the workers on the old address",
                 *candidate.listen)
        # Closed here and in each old worker as it starts draining: the old address then
        # refuses new clients instead of queueing them where nobody accepts.
        old_listener.close()
        await self.fleet.stop(old_workers)

    async def _activate(self, candidate: Candidate, gen: int, workers: list[W],
                        listener: L, only: list[W] | None = None) -> None:
        """Every worker of `workers` (or of `only`) serving `gen`, or ActivationError.

        A worker that dies meanwhile is replaced in `workers` and loaded too: an activation
        ends with every worker on `gen`, whatever died on the way.
        """
        msg = Load(gen, candidate.config_hash, candidate.loaded.data, self.debug,
                   list(candidate.unprotected))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT
        queue = [(w, w.load(msg)) for w in (workers if only is None else only)]
        respawns = 0
        while queue:
            worker, answer = queue.pop(0)
            try:
                reply = await asyncio.wait_for(answer, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise ActivationError(f"worker {worker.index} did not load generation {gen} "
                                      f"within {ACK_TIMEOUT:.0f} s") from None
            if isinstance(reply, Failed):
                raise ActivationError(f"worker {worker.index}: {reply.error}")
            if reply is None:
                respawns += 1
                if respawns > MAX_RESPAWNS:
                    raise ActivationError(f"workers died {respawns} times while loading "
                                          f"generation {gen}")
                log.error("worker %d died while loading generation %d; restarting it",
                          worker.index, gen)
                replacement = await self.fleet.spawn(worker.index, listener)
                workers[workers.index(worker)] = replacement
                queue.append((replacement, replacement.load(msg)))
            elif self._error_info is not None:  # a replacement learns the reload error too
                worker.send(Status(self._error_info))

    # workers that die ------------------------------------------------------------------------
    def restart_delay(self, index: int, now: float) -> float:
        """Seconds to wait before restarting worker `index`, which just died at `now`.

        The first deaths are restarted at once; a worker that keeps dying (a crash loop:
        a bug hit by every request, a resource gone) waits longer each time, so the
        supervisor does not spin starting interpreters. Deaths older than a minute are
        forgotten.
        """
        deaths = self._deaths.setdefault(index, deque())
        while deaths and now - deaths[0] > CRASH_WINDOW:
            deaths.popleft()
        deaths.append(now)
        return RESTART_BACKOFF[min(len(deaths), len(RESTART_BACKOFF)) - 1]

    def _worker_exited(self, worker: W, status: int) -> None:
        if self._stopping:
            return
        delay = self.restart_delay(worker.index, time.monotonic())
        log.error("worker %d exited unexpectedly (status %s); restarting it%s", worker.index,
                  status, f" in {delay:g} s (it keeps dying)" if delay else "")
        task = asyncio.ensure_future(self._restart(worker, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart(self, dead: W, delay: float = 0.0) -> None:
        """Replace a dead worker with one serving the current generation.

        The process starts outside the lock (an interpreter takes ~0.4 s to start, and saves
        must not wait for that); what it loads is decided under the lock, so it can only
        come up on the generation that is current then.
        """
        if delay:
            await asyncio.sleep(delay)  # cancelled by shutdown like any restart
        if self._stopping or self.current is None or dead not in self.workers:
            return
        listener = self._listener
        assert listener is not None  # bound since the generation that is current
        spare = await self.fleet.spawn(dead.index, listener)
        await spare.wait_ready()
        async with self._lock:
            if self._stopping or self.current is None or dead not in self.workers:
                await self.fleet.stop([spare])  # already replaced, or stopping
                return
            serving = self._listener
            assert serving is not None
            if listener is not serving:  # the address moved meanwhile
                await self.fleet.stop([spare])
                spare = await self.fleet.spawn(dead.index, serving)
            replacement = spare
            self.workers[self.workers.index(dead)] = replacement
            try:
                await self._activate(self.current, self.gen_id, self.workers, serving,
                                     only=[replacement])
            except ActivationError as exc:
                log.error("worker %d could not be restarted: %s", dead.index, exc)
                return
            log.info("worker %d restarted on generation %d", dead.index, self.gen_id)

    # errors ---------------------------------------------------------------------------------
    @staticmethod
    def _warn_unprotected(candidate: Candidate) -> None:
        """At every start, and whenever it changes: what the fail-closed opt-out lets through."""
        for line in unprotected_lines(candidate):
            log.warning("%s", line)

    def _report_error(self, exc: ConfigError, reason: str) -> None:
        text = str(exc)
        self._error_info = exc.to_dict()
        self.journal.record(ReloadEvent("rejected", reason, generation=self.gen_id or None,
                                        error=self._error_info))
        # Workers first: once the log line is out, /__health already shows the error.
        for w in self.workers:
            w.send(Status(self._error_info))
        if text != self.last_error:  # logged once per distinct error, not on every save
            log.error("configuration rejected, still serving generation %d:\n%s",
                      self.gen_id, text)
        self.last_error = text

    def _clear_error(self) -> None:
        if self.last_error is not None or self._error_info is not None:
            self.last_error = self._error_info = None
            for w in self.workers:
                w.send(Status(None))
