"""A worker process: serves the inherited listening socket with the generation it is handed.

The supervisor talks to a worker over two pipes of JSON lines:

    supervisor → worker   {"op": "load", "gen": N, "hash": h, "data": {...}, "debug": bool,
                           "unprotected": [names served without their protection]}
                          {"op": "status", "last_reload_error": {...} | null}
                          {"op": "stop"}
    worker → supervisor   {"op": "loaded", "gen": N} | {"op": "failed", "gen": N, "error": "..."}

A worker compiles each configuration itself (the supervisor already validated it) and swaps it
in by reference; the retired generation closes its upstream pools once its last request ends.
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
import sys
import time
from typing import Any

import orjson

from tidegate.config.model import DEFAULT_EDGE, EdgeLimits, build_service
from tidegate.logs import setup_logging
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.pipeline.lifecycle import Phase
from tidegate.reload.builder import collector_paused
from tidegate.server.protocol import DeadlineSweeper, HttpProtocol, protocol_factory
from tidegate.upstream.client import PoolRegistry

log = logging.getLogger("tidegate.worker")

DRAIN_SECONDS = 10.0
RETIRE_SECONDS = 60.0


class _Placeholder:
    """Answers 503 until the first generation arrives (never serves for long)."""

    inflight = 0
    id = 0

    async def handle(self, request: Any) -> Any:
        from tidegate.server.messages import Response

        return Response.text(503, "503 no configuration loaded yet")

    def leave(self) -> None:
        self.inflight -= 1


class WorkerState:
    """What the protocol reads on every request: the current generation."""

    def __init__(self) -> None:
        self.current: Any = _Placeholder()
        self.connections: set[HttpProtocol] = set()
        self.draining = False
        self.closed = asyncio.Event()  # set when draining and the last connection is gone
        self.status = ServerStatus()
        self.limits: EdgeLimits = DEFAULT_EDGE  # the current generation's server bounds

    def all_closed(self) -> None:
        """The protocol's signal that draining has nothing left to wait for."""
        self.closed.set()


class Worker:
    """One serving process."""

    def __init__(self, sock: socket.socket, control_fd: int, ack_fd: int, index: int) -> None:
        self.sock = sock
        self.control_fd = control_fd
        self.ack = os.fdopen(ack_fd, "wb", buffering=0)
        self.index = index
        self.state = WorkerState()
        self.stopping = asyncio.Event()
        self.server: asyncio.AbstractServer | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        # Upstream keep-alive pools outlive generations: a reload keeps backend connections.
        self.pools = PoolRegistry()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the supervisor reloads
        reader = asyncio.StreamReader(limit=1 << 30)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(self.control_fd, "rb", buffering=0))
        control = asyncio.ensure_future(self._control(reader))
        self.server = await loop.create_server(
            protocol_factory(self.state), sock=self.sock, backlog=2048)
        sweeper = DeadlineSweeper(self.state)
        sweeper.start()
        await self.stopping.wait()
        control.cancel()
        await self._drain()
        sweeper.stop()

    async def _control(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:  # the supervisor is gone: stop serving
                self.stopping.set()
                return
            msg = orjson.loads(line)
            op = msg.get("op")
            if op == "load":
                await self._load(msg)
            elif op == "status":
                self.state.status.last_reload_error = msg.get("last_reload_error")
            elif op == "stop":
                self.stopping.set()
                return

    async def _load(self, msg: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            gen = await asyncio.to_thread(self._build, msg)
        except Exception as exc:  # validated upstream; a failure here is reported, not fatal
            log.error("worker %d could not build generation %s: %s", self.index, msg["gen"], exc)
            self._send({"op": "failed", "gen": msg["gen"], "error": str(exc)})
            return
        gen.build_seconds = time.perf_counter() - started
        old = self.state.current
        if not isinstance(old, Generation):
            # Everything alive now (modules, the first generation) lives as long as the worker:
            # keep it out of every future collection.
            gc.collect()
            gc.freeze()
        self.state.current = gen
        self.state.limits = gen.service.edge
        gen.lifecycle.advance(Phase.ACTIVE, f"built in {gen.build_seconds * 1000:.1f} ms")
        self._send({"op": "loaded", "gen": gen.id})
        if isinstance(old, Generation):
            old.lifecycle.advance(Phase.DRAINING, f"{old.inflight} requests in flight")
            task = asyncio.ensure_future(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def _build(self, msg: dict[str, Any]) -> Generation:
        with collector_paused():
            service = build_service(msg["data"])
            return Generation(service, msg["gen"], msg["hash"], debug=msg.get("debug", False),
                              status=self.state.status, pools=self.pools,
                              unprotected=tuple(msg.get("unprotected", ())))

    async def _retire(self, gen: Generation) -> None:
        """Close a replaced generation once its in-flight requests are done."""
        try:
            await asyncio.wait_for(gen.drained(), RETIRE_SECONDS)
        except TimeoutError:
            log.warning("generation %d still had %d requests after %.0fs; closing it",
                        gen.id, gen.inflight, RETIRE_SECONDS)
        await asyncio.shield(gen.close())
        gen.lifecycle.advance(Phase.RETIRED)

    async def _drain(self) -> None:
        """Graceful stop: no new connections, finish in-flight requests, close idle ones."""
        assert self.server is not None
        self.server.close()
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
        current = self.state.current
        if isinstance(current, Generation):
            await current.close()

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.ack.write(orjson.dumps(msg) + b"\n")
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
    args = parser.parse_args(argv)
    setup_logging(f"w{args.index}")
    sock = socket.socket(fileno=args.fd)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        runner = asyncio.run
    worker = Worker(sock, args.control_fd, args.ack_fd, args.index)
    with contextlib.suppress(KeyboardInterrupt):
        runner(worker.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
