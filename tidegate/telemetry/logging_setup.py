"""A process's log outputs, switched to each generation's `LogSettings` when it takes over.

One `LogOutputs` per process (the supervisor, each worker): it owns stdout's `LineWriter`, the
syslog socket and the GELF sender (kept across reloads while their settings are unchanged) and
points the root logger at them. Without a `telemetry/logging` section the process keeps
tidegate's own log on stderr (`tidegate.logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

from tidegate.logs import setup_logging
from tidegate.telemetry.access_log import AccessLogger, Emit
from tidegate.telemetry.gelf import GelfSender
from tidegate.telemetry.gelf import message as gelf_message
from tidegate.telemetry.logging_config import AppLog, Gelf, LogSettings
from tidegate.telemetry.logging_format import (
    SYSLOG_PATTERN,
    compile_pattern,
    logstash_record,
    message,
)
from tidegate.telemetry.logging_sinks import SEVERITY, LineWriter, SyslogSink

_SYSLOG = compile_pattern(SYSLOG_PATTERN)


class AppLogHandler(logging.Handler):
    """Application log records rendered as KrakenD's logger renders them, to every output the
    section names (stdout, syslog) and to Graylog when configured."""

    def __init__(self, app: AppLog, outputs: LogOutputs) -> None:
        super().__init__(app.level)
        self.app = app
        self.outputs = outputs
        self._seq = itertools.count(1)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.seq = next(self._seq)
            app = self.app
            if app.logstash_module is not None:
                line = short = logstash_record(record, app.logstash_module)
            else:
                line = app.prefix + app.pattern.render(record)
                short = message(record)  # KrakenD gives Graylog the bare message
            out = self.outputs
            if app.stdout:
                out.stdout().write((line + "\n").encode())
            if out.syslog is not None:
                out.syslog.send(record.levelname, _SYSLOG.render(record))
            if out.gelf is not None:
                out.gelf.send(gelf_message(short, SEVERITY.get(record.levelname, 6), record.created,
                                      {"_file": record.pathname, "_line": record.lineno}))
        except Exception:
            self.handleError(record)


class LogOutputs:
    """The log outputs of one process (`role` names it in tidegate's own log format)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.settings: LogSettings | None = None
        self.syslog: SyslogSink | None = None
        self.gelf: GelfSender | None = None
        self._stdout: LineWriter | None = None
        self._syslog_key: tuple[int, str] | None = None
        self._gelf_key: Gelf | None = None

    def stdout(self) -> LineWriter:
        """The process's non-blocking stdout (opened on first use)."""
        if self._stdout is None:
            self._stdout = LineWriter(1)
            with contextlib.suppress(RuntimeError):
                self._stdout.bind(asyncio.get_running_loop())
        return self._stdout

    def apply(self, settings: LogSettings) -> None:
        """Switch the root logger and the outputs to these settings (idempotent)."""
        if settings == self.settings:
            return
        self.settings = settings
        app = settings.app
        key = (app.facility, app.prefix) if app is not None and app.syslog else None
        if key != self._syslog_key:
            if self.syslog is not None:
                self.syslog.close()
            self.syslog = SyslogSink(*key) if key is not None else None
            self._syslog_key = key
        if settings.gelf != self._gelf_key:
            if self.gelf is not None:
                self.gelf.close()
            self.gelf = GelfSender(settings.gelf) if settings.gelf is not None else None
            self._gelf_key = settings.gelf
        if app is None:
            setup_logging(self.role)
            return
        root = logging.getLogger()
        root.handlers[:] = [AppLogHandler(app, self)]
        root.setLevel(app.level)

    def access_logger(self, settings: LogSettings, generation: int) -> AccessLogger | None:
        """The access log of a generation with these settings (None when disabled)."""
        if not settings.access.enabled:
            return None
        emit = self._access_emit(settings)
        # To stdout the encoded line goes straight to the writer's queue.
        writer = self.stdout() if settings.gelf is None else None
        return AccessLogger(settings.access, generation, emit, writer)

    def _access_emit(self, settings: LogSettings) -> Emit:
        if settings.gelf is not None:
            # As KrakenD: with Graylog configured the access log goes there, not to stdout.
            def to_gelf(line: str) -> None:
                sender = self.gelf
                if sender is not None:
                    sender.send(gelf_message(line.rstrip("\n"), 6, time.time()))
            return to_gelf
        return self.stdout().append_text  # the access log writes on the loop's thread

    def close(self) -> None:
        """Flush stdout and release the sockets."""
        if self._stdout is not None:
            self._stdout.close()
        if self.syslog is not None:
            self.syslog.close()
        if self.gelf is not None:
            self.gelf.close()
