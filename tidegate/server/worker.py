"""A worker process: serves the inherited listening socket with the generation it is handed.

The supervisor talks to a worker over two pipes of JSON lines, the typed messages of
`reload.control` (Load, Status, Stop one way; Loaded, Failed the other).

A worker compiles each configuration itself (the supervisor already validated it) and hands it
to its `GenerationSlot`, which swaps it in by reference and retires the one it replaces. The
worker accepts no connection before its first generation is in the slot: until then the
listening socket's backlog holds them, so the first request of a start is answered by the
configuration, never by a "not loaded yet" placeholder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tidegate.config.model import DEFAULT_EDGE, EdgeLimits, build_service
from tidegate.config.tls import ServerTLS, server_tls
from tidegate.config.tls_context import server_contexts
from tidegate.logs import setup_logging
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.reload.collector import collector_paused
from tidegate.reload.control import (
    Failed,
    Load,
    Loaded,
    Metrics,
    ProtocolError,
    Ready,
    Status,
    Stop,
    ToSupervisor,
    decode,
    encode,
)
from tidegate.reload.slot import GenerationSlot
from tidegate.server.listener import Listener
from tidegate.server.protocol import DeadlineSweeper, HttpProtocol, protocol_factory
from tidegate.state import SharedBuckets, StateStore
from tidegate.telemetry import recorder
from tidegate.telemetry.logging_setup import LogOutputs

log = logging.getLogger("tidegate.worker")

DRAIN_SECONDS = 10.0
# How often the worker ships its metrics to the supervisor (a scrape is current within 2 s).
METRICS_PERIOD = 1.0


class WorkerState:
    """What the protocol reads on every request: the current generation."""

    def __init__(self) -> None:
        self.current: Any = None  # never read before the first swap: nothing is accepted
        self.connections: set[HttpProtocol] = set()
        self.draining = False
        self.closed = asyncio.Event()  # set when draining and the last connection is gone
        self.status = ServerStatus()
        self.limits: EdgeLimits = DEFAULT_EDGE  # the current generation's server bounds

    def publish(self, gen: Generation) -> None:
        """What a swap changes for the request path: the generation and its server bounds."""
        self.current = gen
        self.limits = gen.service.edge

    def all_closed(self) -> None:
        """The protocol's signal that draining has nothing left to wait for."""
        self.closed.set()


class Worker:
    """One serving process."""

    def __init__(self, sock: socket.socket, control_fd: int, ack_fd: int, index: int,
                 store: StateStore | None = None) -> None:
        self.sock = sock
        self.control_fd = control_fd
        self.ack = os.fdopen(ack_fd, "wb", buffering=0)
        self.index = index
        self.state = WorkerState()
        self.slot = GenerationSlot(self.state.publish)
        self.stopping = asyncio.Event()
        self.listener = Listener(sock, protocol_factory(self.state))
        self.accepting = False  # from the first generation on
        # What outlives generations (upstream pools, component state): a reload keeps it.
        self.store = store if store is not None else StateStore()
        # Where this worker's logs and access log go: each generation's settings, from its swap.
        self.logs = LogOutputs(f"w{index}")
        # The generation to accept with first, its TLS settings and context (until accepting).
        self._first: tuple[Generation, ServerTLS | None, ssl.SSLContext | None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the supervisor reloads
        reader = asyncio.StreamReader(limit=1 << 30)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(self.control_fd, "rb", buffering=0))
        control = asyncio.ensure_future(self._control(reader))
        self._send(Ready())
        ready = asyncio.ensure_future(self.slot.first.wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([ready, stop], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        first, self._first = self._first, None
        if not self.stopping.is_set() and first is not None:
            self.accepting = True
            await self._listen(*first)
        sweeper = DeadlineSweeper(self.state)
        sweeper.start()
        shipping = asyncio.ensure_future(self._ship_metrics())
        await stop
        control.cancel()
        await asyncio.gather(control, return_exceptions=True)
        await self._drain()
        sweeper.stop()
        shipping.cancel()
        await asyncio.gather(shipping, return_exceptions=True)
        self._send_metrics()  # what the drained requests recorded

    async def _ship_metrics(self) -> None:
        """Every METRICS_PERIOD, the series that moved (or a heartbeat) to the supervisor."""
        while True:
            await asyncio.sleep(METRICS_PERIOD)
            self._send_metrics()

    def _send_metrics(self) -> None:
        table = recorder.active()
        if table is not None:
            self._send(Metrics(table.snapshot()))

    async def _control(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:  # the supervisor is gone: stop serving
                self.stopping.set()
                return
            try:
                msg = decode(line)
            except ProtocolError as exc:  # a bug, not input: stop rather than guess
                log.error("worker %d: %s; stopping", self.index, exc)
                self.stopping.set()
                return
            if isinstance(msg, Load):
                await self._load(msg)
            elif isinstance(msg, Status):
                self.state.status.last_reload_error = msg.last_reload_error
            elif isinstance(msg, Stop):
                self.stopping.set()
                return

    async def _load(self, msg: Load) -> None:
        started = time.perf_counter()
        try:
            gen, tls, context = await asyncio.to_thread(self._build, msg)
        except Exception as exc:  # validated upstream; a failure here is reported, not fatal
            log.error("worker %d could not build generation %s: %s", self.index, msg.gen, exc)
            self._send(Failed(msg.gen, str(exc)))
            return
        try:
            await gen.provision(self.store)
        except Exception as exc:  # a component could not start: keep serving the current one
            log.error("worker %d could not provision generation %s: %s", self.index, msg.gen,
                      exc)
            self._send(Failed(msg.gen, f"provisioning failed: {exc}"))
            return
        if self.accepting:  # the new certificate (if any) serves from just before the swap
            try:
                await self._listen(gen, tls, context)
            except Exception as exc:
                log.error("worker %d could not listen for generation %s: %s", self.index,
                          msg.gen, exc)
                await gen.close()
                self._send(Failed(msg.gen, f"listening failed: {exc}"))
                return
        if not self.accepting:
            self._first = gen, tls, context
        gen.build_seconds = time.perf_counter() - started
        gen.access_log = self.logs.access_logger(gen.logs, gen.id)
        self.logs.apply(gen.logs)
        if self.slot.current is None:
            # Everything alive now (modules, the first generation) lives as long as the worker:
            # keep it out of every future collection.
            gc.collect()
            gc.freeze()
        self.slot.swap(gen, f"built in {gen.build_seconds * 1000:.1f} ms")
        self._send(Loaded(gen.id))

    def _build(self, msg: Load) -> tuple[Generation, ServerTLS | None, ssl.SSLContext | None]:
        with collector_paused():
            service = build_service(msg.data)
            tls = server_tls(msg.data)
            # Unchanged TLS settings keep the server (and context) that serves them.
            same = self.listener.server is not None and tls == self.listener.tls
            context = server_contexts(tls) if tls is not None and not same else None
            gen = Generation(service, msg.gen, msg.config_hash, debug=msg.debug,
                             status=self.state.status,
                             unprotected=tuple(msg.unprotected))
            return gen, tls, context

    async def _listen(self, gen: Generation, tls: ServerTLS | None,
                      context: ssl.SSLContext | None) -> None:
        if tls is not None and context is None:
            return  # the settings being served: the server keeps its context
        if await self.listener.serve(tls, context, gen.service.edge.header_timeout):
            log.debug("worker %d accepts %s", self.index,
                      "in plain HTTP" if tls is None else "with TLS")

    async def _drain(self) -> None:
        """Graceful stop: no new connections, finish in-flight requests, close idle ones."""
        # The listening socket closes now (uvloop's server.close() closes it; without a server
        # it is closed here): once the supervisor's copy is closed too, a client of this
        # address is refused at once instead of waiting in a backlog nobody accepts from.
        self.listener.close()
        self.state.draining = True
        # Busy connections close themselves after their response (no keep-alive while
        # draining); idle ones are closed now. The last one to go sets `closed`.
        for conn in list(self.state.connections):
            if conn.idle:
                conn.close()
        if self.state.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.closed.wait(), DRAIN_SECONDS)
        for conn in list(self.state.connections):
            conn.close()
        await self.slot.close()
        await self.store.settle()
        self.logs.close()

    def _send(self, msg: ToSupervisor) -> None:
        data = memoryview(encode(msg))
        try:
            while data:  # a pipe may take a large line (a snapshot) in several writes
                written = self.ack.write(data)
                if written is None:
                    raise OSError("the supervisor's pipe is not blocking")
                data = data[written:]
        except OSError:
            self.stopping.set()


# The request path allocates many short-lived containers that reference counting frees; the
# default threshold (700) ran the cyclic collector ~300 times a second for ~5 % of a worker's
# CPU. Cycles still get collected, just in larger batches.
GC_THRESHOLDS = (20_000, 50, 100)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process (started by the supervisor, never by users)."""
    gc.set_threshold(*GC_THRESHOLDS)
    parser = argparse.ArgumentParser(prog="tidegate-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--ack-fd", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--buckets-fd", type=int, default=None,
                        help="the node's shared token-bucket table (several workers)")
    args = parser.parse_args(argv)
    setup_logging(f"w{args.index}")
    sock = socket.socket(fileno=args.fd)
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        runner = asyncio.run
    buckets = SharedBuckets(args.buckets_fd) if args.buckets_fd is not None else None
    worker = Worker(sock, args.control_fd, args.ack_fd, args.index, StateStore(buckets))
    with contextlib.suppress(KeyboardInterrupt):
        runner(worker.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
