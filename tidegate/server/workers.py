"""Worker processes as the supervisor owns them: listening sockets, spawning, pipes, stopping.

Descriptors are handed to a worker by `pass_fds` only and are never inheritable in the
supervisor: uvloop's spawn passes every inheritable descriptor to every child, so an
inheritable listening socket would outlive its own workers in the next ones (an old port still
accepting, and unbindable again).

A worker imports exactly the tidegate package the supervisor runs: it is started with `-P`
(the current folder is not put on the import path, so a `tidegate/` folder there cannot shadow
the package) and the supervisor package's parent folder first on its path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import tidegate
from tidegate.reload.control import (
    Failed,
    Load,
    Loaded,
    Metrics,
    ProtocolError,
    Ready,
    ToSupervisor,
    ToWorker,
    decode,
    encode,
)
from tidegate.state import SharedBuckets
from tidegate.telemetry.aggregate import NodeMetrics

log = logging.getLogger("tidegate")

STOP_TIMEOUT = 15.0
READY_TIMEOUT = 30.0
BACKLOG = 2048
ACK_LINE_LIMIT = 1 << 26

PACKAGE_PARENT = str(Path(tidegate.__file__).resolve().parent.parent)
# `python -P -c BOOT PARENT ARGS...`: import the worker from PARENT, not from the current folder.
BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from tidegate.server.worker import main; sys.exit(main())")


def worker_command(*args: str) -> list[str]:
    """The argv that starts a worker running this very package."""
    return [sys.executable, "-P", "-c", BOOT, PACKAGE_PARENT, *args]


def bind(ip: str, port: int) -> socket.socket:
    """A listening socket for the workers (bound once; reloads never close it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class WorkerProcess:
    """One worker process, its control pipe, and the acknowledgements it sends back.

    A single task reads the acknowledgements and resolves the future of the generation each
    one names, so no two coroutines ever read one pipe. When the worker dies every future
    still waiting resolves to None.
    """

    def __init__(self, index: int, proc: asyncio.subprocess.Process, control_w: int,
                 acks: asyncio.StreamReader,
                 acks_transport: asyncio.BaseTransport | None = None,
                 metrics: NodeMetrics | None = None) -> None:
        self.index = index
        # The node's metrics: this worker's snapshots go in, and its totals stay after it exits.
        self.metrics = metrics
        self.proc = proc
        self.pid = proc.pid
        self.control = os.fdopen(control_w, "wb", buffering=0)
        self.expected_exit = False
        self.dead = False
        self._waiting: dict[int, asyncio.Future[ToSupervisor | None]] = {}
        # The read end of the ack pipe: a stream protocol keeps it open after EOF (half-close
        # semantics), so it is closed here when the reader ends, or every respawn leaks one.
        self._acks_transport = acks_transport
        self._ready = asyncio.Event()  # set by the worker's Ready, or by its death
        self._reader = asyncio.ensure_future(self._read_acks(acks))

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the worker has started (or died, or `timeout` passed: a Load still works
        then, it only waits longer)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def send(self, msg: ToWorker) -> None:
        """Write one message (a dead worker's pipe is ignored: its exit is noticed elsewhere)."""
        with contextlib.suppress(OSError, ValueError):
            self.control.write(encode(msg))

    def load(self, msg: Load) -> asyncio.Future[ToSupervisor | None]:
        """Send `msg`; the future is the worker's answer for that generation, None if it died."""
        fut: asyncio.Future[ToSupervisor | None] = asyncio.get_running_loop().create_future()
        if self.dead:
            fut.set_result(None)
            return fut
        self._waiting[msg.gen] = fut
        self.send(msg)
        return fut

    async def _read_acks(self, acks: asyncio.StreamReader) -> None:
        try:
            while line := await acks.readline():
                msg = decode(line)
                if isinstance(msg, Ready):
                    self._ready.set()
                    continue
                if isinstance(msg, Metrics):
                    if self.metrics is not None:
                        self.metrics.update(self.pid, msg.families)
                    continue
                if not isinstance(msg, Loaded | Failed):
                    raise ProtocolError(f"a worker does not send {msg.op!r}")
                fut = self._waiting.pop(msg.gen, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except ProtocolError as exc:
            log.error("worker %d: %s; stopping it", self.index, exc)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        finally:
            # EOF: every snapshot it sent has been read; its counts stay in the node's totals.
            if self.metrics is not None:
                self.metrics.retire(self.pid)
            if self._acks_transport is not None:
                self._acks_transport.close()
            self.dead = True
            self._ready.set()
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_result(None)
            self._waiting.clear()

    def close(self) -> None:
        """Release the control pipe (the process has exited; the ack reader ends on EOF)."""
        with contextlib.suppress(OSError):
            self.control.close()


class WorkerFleet:
    """Spawns and stops worker processes; tells `on_exit` about one that exits by itself."""

    def __init__(self) -> None:
        self.on_exit: Callable[[WorkerProcess, int], None] | None = None
        # The node's token buckets: one table every worker maps, so a rate limit is per node
        # whatever the worker count, and survives a worker's restart.
        self.buckets = SharedBuckets.create()
        # The node's metrics, summed over the workers (read by the telemetry listeners).
        self.metrics = NodeMetrics()
        self.alive: set[WorkerProcess] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self, listen: tuple[str, int]) -> socket.socket:
        """A new listening socket (raises OSError)."""
        return bind(*listen)

    async def spawn(self, index: int, sock: socket.socket) -> WorkerProcess:
        """Start worker `index` on `sock`; it serves once it has loaded a generation."""
        control_r, control_w = os.pipe()
        ack_r, ack_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *worker_command("--fd", str(sock.fileno()), "--control-fd", str(control_r),
                                "--ack-fd", str(ack_w), "--index", str(index),
                                "--buckets-fd", str(self.buckets.fd)),
                pass_fds=(sock.fileno(), control_r, ack_w, self.buckets.fd),
                stdin=asyncio.subprocess.DEVNULL)
        except BaseException:
            os.close(control_w)
            os.close(ack_r)
            raise
        finally:  # the worker's ends: its copies are the only ones left
            os.close(control_r)
            os.close(ack_w)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=ACK_LINE_LIMIT)  # a metrics snapshot is one line
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(ack_r, "rb", buffering=0))
        worker = WorkerProcess(index, proc, control_w, reader, transport, self.metrics)
        self.alive.add(worker)
        task = asyncio.ensure_future(self._watch(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return worker

    async def _watch(self, worker: WorkerProcess) -> None:
        code = await worker.proc.wait()
        self.alive.discard(worker)
        worker.close()
        if not worker.expected_exit and self.on_exit is not None:
            self.on_exit(worker, code)

    async def stop(self, workers: list[WorkerProcess]) -> None:
        """SIGTERM (the worker drains), then SIGKILL after STOP_TIMEOUT."""
        for w in workers:
            w.expected_exit = True
            if w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                await asyncio.wait_for(w.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()

    async def stop_all(self) -> None:
        """Every worker still running, whichever generation or address it was started for."""
        await self.stop(list(self.alive))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.buckets.close()
