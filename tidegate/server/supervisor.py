"""`tidegate run`: binds the socket, starts the workers, and is the only place that reloads.

The supervisor builds and validates each configuration once (`reload.builder`), then hands it to
every worker and waits until each has swapped to the same generation id. A configuration that
fails anywhere changes nothing that serves: the error is logged once, kept for `/__health`, and
the next good save recovers. A new listen address is bound before the old workers stop.

Signals only set events; the loop acts: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from typing import Any

import orjson

from tidegate.config.loader import watch_targets
from tidegate.errors import ConfigError
from tidegate.logs import setup_logging
from tidegate.reload.builder import (
    Candidate,
    build_candidate,
    build_in_thread,
    describe_changes,
    unprotected_lines,
)
from tidegate.reload.watcher import ConfigWatcher, supervise_watch

log = logging.getLogger("tidegate")

ACK_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class WorkerHandle:
    """A worker process and its two pipes."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, control_w: int,
                 acks: asyncio.StreamReader) -> None:
        self.index = index
        self.proc = proc
        self.control = os.fdopen(control_w, "wb", buffering=0)
        self.acks = acks
        self.expected_exit = False

    def send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.control.write(orjson.dumps(msg) + b"\n")

    async def wait_loaded(self, gen: int) -> bool:
        while True:
            line = await self.acks.readline()
            if not line:
                return False
            msg = orjson.loads(line)
            if msg.get("gen") == gen:
                return msg.get("op") == "loaded"


def bind(ip: str, port: int) -> socket.socket:
    """A listening socket the workers inherit (bound once; reloads never close it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Owns sockets, workers and the current configuration."""

    def __init__(self, path: str | None, *, port: int | None, debug: bool, watch: bool,
                 workers: int, env: dict[str, str],
                 allow_unimplemented: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.allow_unimplemented = allow_unimplemented
        self.port = port
        self.debug = debug
        self.watch = watch
        self.nworkers = max(1, workers)
        self.env = env
        self.stop = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.workers: list[WorkerHandle] = []
        self.sock: socket.socket | None = None
        self.listen: tuple[str, int] | None = None
        self.current: Candidate | None = None
        self.gen_id = 0
        self.last_error: str | None = None
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()
        self._valid: asyncio.Event | None = None
        self._pending: Candidate | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        tasks = []
        if self.watch:
            # Watch before the first build, so that no save can fall between the two.
            paths, ignore = watch_targets(self.path, self.env)
            tasks.append(supervise_watch(lambda: ConfigWatcher(paths, ignore), self._on_change))
        try:
            return await self._serve()
        finally:
            for t in tasks:
                t.cancel()

    async def _serve(self) -> int:
        try:
            candidate = await self._build()
        except ConfigError as exc:
            if self.stop.is_set():  # stopped while the first build was stuck
                return 0
            log.error("invalid configuration:\n%s", exc)
            if not self.watch:
                return 1
            self.last_error = str(exc)
            log.info("watching for a valid configuration...")
            candidate = await self._first_valid()
            if candidate is None:
                return 0
        try:
            await self._start(candidate)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", *candidate.listen, exc.strerror or exc)
            return 1
        hup = asyncio.ensure_future(self._on_hup())
        await self.stop.wait()
        hup.cancel()
        await self._stop_workers(self.workers)
        log.info("stopped")
        return 0

    # building ----------------------------------------------------------------------------
    async def _build(self) -> Candidate:
        build = functools.partial(build_candidate, self.path, self.env, port=self.port,
                                  debug=self.debug,
                                  allow_unimplemented=self.allow_unimplemented)
        candidate = await build_in_thread(build, source=self.path, stop=self.stop)
        for warning in candidate.warnings:
            if warning not in self._warned:  # once per key, not on every save
                self._warned.add(warning)
                log.warning("%s", warning)
        return candidate

    async def _first_valid(self) -> Candidate | None:
        """With --watch, a broken first configuration waits for a good save."""
        self._valid = asyncio.Event()
        stop = asyncio.ensure_future(self.stop.wait())
        valid = asyncio.ensure_future(self._valid.wait())
        await asyncio.wait([stop, valid], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        valid.cancel()
        return self._pending

    # starting and reloading ----------------------------------------------------------------
    async def _start(self, candidate: Candidate) -> None:
        self.sock = bind(*candidate.listen)
        self.listen = candidate.listen
        self.gen_id = 1
        self.workers = [await self._spawn(i, self.sock) for i in range(self.nworkers)]
        await self._activate(candidate, self.workers)
        self.current = candidate
        log.info("listening on %s:%d with %d worker(s), generation %d, config %s (%s)",
                 *candidate.listen, self.nworkers, self.gen_id, candidate.config_hash,
                 candidate.loaded.source)
        self._warn_unprotected(candidate)

    def _warn_unprotected(self, candidate: Candidate) -> None:
        """At every start, and whenever it changes: what the fail-closed opt-out lets through."""
        for line in unprotected_lines(candidate):
            log.warning("%s", line)

    async def _spawn(self, index: int, sock: socket.socket) -> WorkerHandle:
        control_r, control_w = os.pipe()
        ack_r, ack_w = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidegate.server.worker", "--fd", str(sock.fileno()),
            "--control-fd", str(control_r), "--ack-fd", str(ack_w), "--index", str(index),
            pass_fds=(sock.fileno(), control_r, ack_w), stdin=asyncio.subprocess.DEVNULL)
        os.close(control_r)
        os.close(ack_w)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(ack_r, "rb", buffering=0))
        handle = WorkerHandle(index, proc, control_w, reader)
        task = asyncio.ensure_future(self._supervise(handle, sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    async def _supervise(self, handle: WorkerHandle, sock: socket.socket) -> None:
        """Restart a worker that died unexpectedly, with the current generation."""
        code = await handle.proc.wait()
        if handle.expected_exit or self.stop.is_set():
            return
        log.error("worker %d exited unexpectedly (status %s); restarting it", handle.index, code)
        if handle not in self.workers or self.current is None:
            return
        replacement = await self._spawn(handle.index, sock)
        self.workers[self.workers.index(handle)] = replacement
        self._send_load(replacement, self.current, self.gen_id)
        await replacement.wait_loaded(self.gen_id)

    def _send_load(self, worker: WorkerHandle, candidate: Candidate, gen: int) -> None:
        worker.send({"op": "load", "gen": gen, "hash": candidate.config_hash,
                     "data": candidate.loaded.data, "debug": self.debug,
                     "unprotected": list(candidate.unprotected)})

    async def _activate(self, candidate: Candidate, workers: list[WorkerHandle]) -> None:
        for w in workers:
            self._send_load(w, candidate, self.gen_id)
        results = await asyncio.wait_for(
            asyncio.gather(*(w.wait_loaded(self.gen_id) for w in workers)), ACK_TIMEOUT)
        if not all(results):
            raise RuntimeError(f"a worker failed to load generation {self.gen_id}")

    async def reload(self, reason: str) -> None:
        """Build, validate and swap in the configuration on disk (serialised)."""
        async with self._reload_lock:
            try:
                candidate = await self._build()
            except ConfigError as exc:
                self._report_error(exc)
                return
            if self.current is None:
                # Not serving yet (the first configuration was broken): start with this one.
                self._pending = candidate
                if self._valid is not None:
                    self._valid.set()
                return
            if candidate.config_hash == self.current.config_hash:
                self._clear_error()
                log.debug("%s: configuration unchanged (config %s)", reason,
                          candidate.config_hash)
                return
            old = self.current
            self.gen_id += 1
            try:
                if candidate.listen != self.listen:
                    await self._move(candidate)
                else:
                    await self._activate(candidate, self.workers)
            except OSError as exc:  # the new address cannot be bound: keep serving the old
                self.gen_id -= 1
                self._report_error(ConfigError(
                    f"cannot listen on {candidate.listen[0]}:{candidate.listen[1]}: "
                    f"{exc.strerror or exc}", file=candidate.loaded.source, path=("port",)))
                return
            except (RuntimeError, TimeoutError) as exc:
                # A worker did not swap: put every worker back on the configuration that
                # served, under a fresh id, so that no two workers serve different ones.
                log.error("%s: generation %d failed in a worker (%s); restoring config %s",
                          reason, self.gen_id, exc, old.config_hash)
                self.gen_id += 1
                with contextlib.suppress(RuntimeError, TimeoutError):
                    await self._activate(old, self.workers)
                return
            self.current = candidate
            self._clear_error()
            if candidate.unprotected != old.unprotected:
                self._warn_unprotected(candidate)
            changes = describe_changes(old.fingerprints if old else {}, candidate.fingerprints)
            log.info("%s: generation %d active, config %s, built in %.1f ms, %s", reason,
                     self.gen_id, candidate.config_hash, candidate.build_seconds * 1000, changes)

    async def _move(self, candidate: Candidate) -> None:
        """A new listen address: new socket and workers first, then the old ones drain."""
        new_sock = bind(*candidate.listen)
        new_workers = [await self._spawn(i, new_sock) for i in range(self.nworkers)]
        await self._activate(candidate, new_workers)
        old_workers, old_sock = self.workers, self.sock
        self.workers, self.sock, self.listen = new_workers, new_sock, candidate.listen
        log.info("now listening on %s:%d; draining the workers on the old address",
                 *candidate.listen)
        await self._stop_workers(old_workers)
        if old_sock is not None:
            old_sock.close()

    def _report_error(self, exc: ConfigError) -> None:
        text = str(exc)
        info = exc.to_dict()
        # Workers first: once the log line is out, /__health already shows the error.
        for w in self.workers:
            w.send({"op": "status", "last_reload_error": info})
        if text != self.last_error:  # logged once per distinct error, not on every save
            log.error("configuration rejected, still serving generation %d:\n%s",
                      self.gen_id, text)
        self.last_error = text

    def _clear_error(self) -> None:
        if self.last_error is not None:
            self.last_error = None
            for w in self.workers:
                w.send({"op": "status", "last_reload_error": None})

    async def _on_hup(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            await self.reload("SIGHUP")

    async def _on_change(self, changed: set[str]) -> None:
        names = ", ".join(sorted(os.path.basename(p) for p in changed))
        await self.reload(f"change in {names}")

    async def _stop_workers(self, workers: list[WorkerHandle]) -> None:
        for w in workers:
            w.expected_exit = True
            if w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                await asyncio.wait_for(w.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                w.proc.kill()
                await w.proc.wait()


def run_command(args: argparse.Namespace) -> int:
    """`tidegate run`: returns the process exit code."""
    setup_logging("supervisor")
    watch = args.watch or os.environ.get("TIDEGATE_WATCH", "") not in ("", "0", "false")
    workers = args.workers or int(os.environ.get("TIDEGATE_WORKERS", "0")) or os.cpu_count() or 1
    supervisor = Supervisor(args.config, port=args.port, debug=args.debug, watch=watch,
                            workers=workers, env=dict(os.environ),
                            allow_unimplemented=args.allow_unimplemented)
    try:
        import uvloop

        return uvloop.run(supervisor.run())
    except KeyboardInterrupt:
        return 0
