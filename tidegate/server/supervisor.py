"""`tidegate run`: signals, the config watch, and the reload coordinator over worker processes.

The supervisor builds and validates each configuration once (`reload.builder`); the
`ReloadCoordinator` hands it to every worker and waits until each has swapped to the same
generation id, and restarts a worker that dies, all under one lock. A configuration that fails
anywhere changes nothing that serves: the error is logged once, kept for `/__health`, and the
next good save recovers. A new listen address is bound before the old workers stop.

Signals only set events; the loop acts: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal

from tidegate.config.loader import watch_targets
from tidegate.config.model import ServiceConfig
from tidegate.config.tls import watched_files
from tidegate.errors import ConfigError
from tidegate.logs import setup_logging
from tidegate.reload.builder import Candidate, build_candidate, build_in_thread
from tidegate.reload.coordinator import ActivationError, ListenError, ReloadCoordinator
from tidegate.reload.watcher import ConfigWatcher, supervise_watch
from tidegate.server.cpus import available_cpus
from tidegate.server.workers import WorkerFleet
from tidegate.telemetry.logging_config import log_settings
from tidegate.telemetry.logging_setup import LogOutputs
from tidegate.telemetry.otlp_metrics import OtlpMetricsPush
from tidegate.telemetry.reloads import ReloadEvent
from tidegate.telemetry.servers import TelemetryServers
from tidegate.telemetry.status_doc import Serving
from tidegate.telemetry.status_service import StatusService
from tidegate.telemetry.status_source import node_counters
from tidegate.telemetry.tracing_reloads import ReloadTraces

log = logging.getLogger("tidegate")


class Supervisor:
    """Owns the signals, the watch and the coordinator of the worker processes."""

    def __init__(self, path: str | None, *, port: int | None, debug: bool, watch: bool,
                 workers: int, env: dict[str, str],
                 allow_unimplemented: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.allow_unimplemented = allow_unimplemented
        self.port = port
        self.debug = debug
        self.watch = watch
        self.env = env
        self.stop = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self._warned: set[str] = set()
        # The certificates and keys the last built configuration names (watched too).
        self.named_files: tuple[str, ...] = ()
        self.fleet = WorkerFleet()
        self.coordinator = ReloadCoordinator(self._build, self.fleet, workers=workers,
                                             debug=debug)
        # The supervisor logs as the generation being served asks (from its activation on).
        self.logs = LogOutputs("supervisor")
        # /metrics, /__stats (and the status page) over the workers' summed metrics, on the
        # listeners the current configuration asks for.
        self.telemetry = TelemetryServers(self.fleet.metrics, self.coordinator.journal)
        self._served: Serving | None = None  # as of the journal's last event
        self.coordinator.journal.subscribe(self._on_reload_event)
        # The live status page (/__status), on the same listener as /metrics.
        self.status = StatusService(
            self.coordinator.journal, self._served_generation,
            lambda: node_counters(self.telemetry.node))
        for path, handler in self.status.routes().items():
            self.telemetry.add_route(path, handler)
        # Each reload and rejected save as a span, to the serving configuration's exporters.
        self.reload_traces = ReloadTraces(self._serving)
        self.coordinator.journal.subscribe(self.reload_traces.record)
        # The node's metrics pushed to the serving configuration's OTLP exporters.
        self.otlp_metrics = OtlpMetricsPush(self.fleet.metrics, self._serving)
        self.coordinator.journal.subscribe(self.otlp_metrics.follow)

    def _serving(self) -> ServiceConfig | None:
        current = self.coordinator.current
        return current.loaded.service if current is not None else None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        tasks = [asyncio.ensure_future(self._on_hup()), asyncio.ensure_future(self.status.run())]
        if self.watch:
            # Watch before the first build, so that no save can fall between the two.
            paths, ignore = watch_targets(self.path, self.env)
            tasks.append(supervise_watch(
                lambda: ConfigWatcher(paths, ignore, also=lambda: self.named_files),
                self._on_change))
        try:
            return await self._serve()
        finally:
            # A reload in flight is cancelled first, so nothing spawns while the workers stop.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.coordinator.shutdown()
            await self.telemetry.close()
            await self.reload_traces.close()
            await self.otlp_metrics.close()
            if self.stop.is_set():
                log.info("stopped")
            self.logs.close()

    async def _serve(self) -> int:
        try:
            await self.coordinator.start()
        except ConfigError as exc:
            if self.stop.is_set():  # stopped while the first build was stuck
                return 0
            log.error("invalid configuration:\n%s", exc)
            if not self.watch:
                return 1
            self.coordinator.last_error = str(exc)
            log.info("watching for a valid configuration...")
            if not await self._first_valid():
                return 0
        except ListenError as exc:
            log.error("%s", exc)
            return 1
        except ActivationError as exc:
            log.error("could not start: %s", exc)
            return 1
        await self.stop.wait()
        return 0

    def _on_reload_event(self, event: ReloadEvent) -> None:
        """An outcome recorded: the status page learns what serves; a configuration applied:
        the logs and the telemetry listeners follow it."""
        current = self.coordinator.current
        if current is not None:
            # Events are recorded once every worker serves the outcome, so id and hash agree
            # here; mid-reload the coordinator's id is already the candidate's.
            self._served = Serving(self.coordinator.gen_id, current.config_hash,
                                   self.coordinator.nworkers)
        if event.result == "applied" and current is not None:
            self.logs.apply(log_settings(current.loaded.service.extra_config))
            self.telemetry.configure_soon(current.loaded.data)

    # building ----------------------------------------------------------------------------
    async def _build(self) -> Candidate:
        build = functools.partial(build_candidate, self.path, self.env, port=self.port,
                                  debug=self.debug,
                                  allow_unimplemented=self.allow_unimplemented)
        try:
            candidate = await build_in_thread(build, source=self.path, stop=self.stop)
        except ConfigError as exc:
            # A certificate named but missing (not issued yet) is watched too: its arrival
            # reloads.
            self.named_files = tuple(sorted({*self.named_files, *exc.named_files}))
            raise
        # A file added here is watched from the watcher's next re-plan (at most a second),
        # which reports it as a change: the reload that follows reads under the new watch.
        self.named_files = tuple(watched_files(candidate.loaded.data))
        for warning in candidate.warnings:
            if warning not in self._warned:  # once per key, not on every save
                self._warned.add(warning)
                log.warning("%s", warning)
        return candidate

    def _served_generation(self) -> Serving | None:
        """The generation every worker serves (what their `/__health` reports)."""
        return self._served

    async def _first_valid(self) -> bool:
        """With --watch, a broken first configuration waits for a good save (or a stop)."""
        stop = asyncio.ensure_future(self.stop.wait())
        valid = asyncio.ensure_future(self.coordinator.started.wait())
        await asyncio.wait([stop, valid], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        valid.cancel()
        return self.coordinator.started.is_set()

    # reloading ---------------------------------------------------------------------------
    async def reload(self, reason: str) -> None:
        """Build, validate and swap in the configuration on disk (the coordinator serialises)."""
        await self.coordinator.reload(reason)

    async def _on_hup(self) -> None:
        """Reload on each SIGHUP; a reload that fails unexpectedly is logged and the next
        SIGHUP still works (as the watch loop, `supervise_watch`)."""
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            try:
                await self.reload("SIGHUP")
            except Exception:
                log.exception("SIGHUP: the reload failed unexpectedly; still serving the "
                              "current generation")

    async def _on_change(self, changed: set[str]) -> None:
        names = ", ".join(sorted(os.path.basename(p) for p in changed))
        await self.reload(f"change in {names}")


def default_workers(env: dict[str, str]) -> int:
    """TIDEGATE_WORKERS, else one per CPU this process may actually run on."""
    return int(env.get("TIDEGATE_WORKERS") or 0) or available_cpus()


def run_command(args: argparse.Namespace) -> int:
    """`tidegate run`: returns the process exit code."""
    setup_logging("supervisor")
    watch = args.watch or os.environ.get("TIDEGATE_WATCH", "") not in ("", "0", "false")
    workers = args.workers or default_workers(dict(os.environ))
    supervisor = Supervisor(args.config, port=args.port, debug=args.debug, watch=watch,
                            workers=workers, env=dict(os.environ),
                            allow_unimplemented=args.allow_unimplemented)
    try:
        import uvloop

        return uvloop.run(supervisor.run())
    except KeyboardInterrupt:
        return 0
