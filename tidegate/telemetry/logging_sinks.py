"""Where log lines go without ever stalling the process: stdout and syslog.

`LineWriter` owns a non-blocking way to write to file descriptor 1 (its own open file of the same
pipe or terminal: the flag does not leak to the other processes sharing stdout; a socket is
written with MSG_DONTWAIT; a regular file never blocks). Lines written on the event loop's
thread are gathered and written once per loop iteration, in writes of whole lines of at most
PIPE_BUF bytes (atomic on a pipe shared with the other workers). When nobody reads, the lines
wait in a buffer bounded in bytes; past it they are dropped and counted, and the count is
reported once the output moves again.

`SyslogSink` sends datagrams (RFC 3164 framing, as Go's log/syslog to a local daemon) to
/dev/log, or to the address in TIDEGATE_SYSLOG_ADDRESS (a unix socket path or host:port for
UDP), never waiting: a full or absent daemon loses the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("tidegate.telemetry")

PIPE_BUF = 4096
# `os.write` looked up once (compiled, `os.write` is a module attribute lookup per call).
_write: Final = os.write
# Bytes of log lines held while stdout is not read (env TIDEGATE_LOG_BUFFER_BYTES).
DEFAULT_BUFFER = 1 << 20


def _buffer_limit() -> int:
    raw = os.environ.get("TIDEGATE_LOG_BUFFER_BYTES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_BUFFER


class LineWriter:
    """Lines to a file descriptor, never blocking the caller; bounded in memory."""

    def __init__(self, fd: int = 1, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else _buffer_limit()
        self.dropped = 0
        self._reported = 0
        self._pending: list[bytes] = []
        self._size = 0
        self._lock = threading.RLock()  # flush may log (re-enters write)
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The bound loop's `call_soon` and this writer's `flush`, looked up once (each is an
        # attribute lookup per line otherwise).
        self._call_soon: Callable[[Callable[[], None]], object] | None = None
        self._flush: Callable[[], None] = self.flush
        self._loop_thread = 0
        self._watching = False
        self._sock: socket.socket | None = None
        self._origin = fd
        self.fd, self._own = self._open(fd)

    @staticmethod
    def _open(fd: int) -> tuple[int, bool]:
        """A descriptor whose writes never block, and whether it is ours to close."""
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return fd, False
        if stat.S_ISREG(mode):
            return fd, False  # a file: writes complete, no need to reopen
        if stat.S_ISSOCK(mode):
            return fd, False  # sent with MSG_DONTWAIT, see _send
        try:  # a new open file of the same pipe/terminal: O_NONBLOCK stays ours
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND
                           | os.O_CLOEXEC), True
        except OSError:
            return fd, False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Gather lines per iteration of this loop (until then, each line is written at once)."""
        self._loop = loop
        self._call_soon = loop.call_soon
        self._loop_thread = threading.get_ident()
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(self.fd).st_mode):
                self._sock = socket.socket(fileno=os.dup(self.fd))

    def write(self, line: bytes) -> None:
        """Queue one line (ending with a newline); from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():  # no loop (yet, or any more): written now
            with self._lock:
                self._pending.append(line)
                self.flush()
        elif threading.get_ident() == self._loop_thread:
            self.append(line)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self.append, line)

    def append(self, line: bytes) -> None:
        """Queue one line, on the bound loop's thread (no lock: only that thread touches the
        buffer); written once this loop iteration is over (at once without a loop)."""
        size = self._size + len(line)
        if size > self.limit:
            self.dropped += 1
            return
        self._pending.append(line)
        self._size = size
        if not self._scheduled:
            call_soon = self._call_soon
            if call_soon is None:
                self.flush()
                return
            self._scheduled = True
            call_soon(self._flush)

    def append_text(self, text: str) -> None:
        """`append` for a str line (the access log's)."""
        self.append(text.encode())

    def flush(self) -> None:
        """Write what waits, as far as the output takes it without blocking (on the loop's
        thread, or under the lock when there is no loop)."""
        self._scheduled = False
        pending = self._pending
        if len(pending) == 1 and self._sock is None:  # the common case at low load
            line = pending[0]
            try:
                written = _write(self.fd, line)
            except BlockingIOError:
                self._watch()  # the line stays queued
                return
            except OSError:  # stdout closed: nothing more will be written
                pending.clear()
                self._size = 0
                self.dropped += 1
                return
            # The same list stays the queue (a new one per write costs its allocation).
            pending.clear()
            self._size = 0
            if written < len(line):
                self._requeue([line[written:]])
                return
        elif not self._flush_all(pending):
            return
        if self._watching:
            self._unwatch()
        if self.dropped != self._reported:
            lost, self._reported = self.dropped - self._reported, self.dropped
            log.warning("%d log line(s) dropped: stdout was not read", lost)

    def _flush_all(self, pending: list[bytes]) -> bool:
        """`flush` of several lines (or none) in chunks; False when the output did not take
        them all (the rest is queued again) or is closed."""
        self._pending = []
        self._size = 0
        done = 0
        try:
            for chunk, count in _chunks(pending):
                written = self._send(chunk)
                if written < len(chunk):  # a partial write of a chunk past PIPE_BUF
                    self._requeue([chunk[written:], *pending[done + count:]])
                    return False
                done += count
        except BlockingIOError:
            self._requeue(pending[done:])
            return False
        except OSError:  # stdout closed: nothing more will be written
            self.dropped += len(pending) - done
            return False
        return True

    def _requeue(self, rest: list[bytes]) -> None:
        """Lines the output did not take yet go back in front; wait until it is writable."""
        self._pending[:0] = rest
        self._size += sum(map(len, rest))
        self._watch()

    def _send(self, chunk: bytes) -> int:
        if self._sock is not None:
            return self._sock.send(chunk, socket.MSG_DONTWAIT)
        return _write(self.fd, chunk)

    def _watch(self) -> None:
        loop = self._loop
        if loop is not None and not self._watching and not loop.is_closed():
            self._watching = True
            loop.add_writer(self.fd, self.flush)

    def _unwatch(self) -> None:
        # Untyped on purpose: uvloop's remove_writer returns None where asyncio's (and the
        # stubs) return a bool, and a compiled build checks a declared return type even when
        # the result is unused (a TypeError there lost the dropped-lines report).
        loop: Any = self._loop
        if self._watching and loop is not None:
            self._watching = False
            loop.remove_writer(self.fd)

    def close(self) -> None:
        """Write what is left (blocking at most briefly) and release the descriptor."""
        self._unwatch()
        with self._lock:
            pending, self._pending = self._pending, []
        data = b"".join(pending)
        deadline = time.monotonic() + 1.0
        while data and time.monotonic() < deadline:
            try:
                data = data[self._send(data):]
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        if self._own:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        # Whatever is logged after this (the last lines of a stop) is written plainly.
        self.fd, self._own, self._loop, self._sock = self._origin, False, None, None
        self._call_soon = None
        self._scheduled = False


def _chunks(lines: list[bytes]) -> list[tuple[bytes, int]]:
    """Whole lines joined into writes of at most PIPE_BUF bytes (a longer line alone), each
    with the number of lines in it."""
    if len(lines) == 1:
        return [(lines[0], 1)]
    out: list[tuple[bytes, int]] = []
    cur: list[bytes] = []
    size = 0
    for line in lines:
        if cur and size + len(line) > PIPE_BUF:
            out.append((b"".join(cur), len(cur)))
            cur, size = [], 0
        cur.append(line)
        size += len(line)
    if cur:
        out.append((b"".join(cur), len(cur)))
    return out


# Go's log/syslog severities by level name.
SEVERITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


class SyslogSink:
    """Datagrams to the local syslog daemon (or TIDEGATE_SYSLOG_ADDRESS), fire-and-forget."""

    def __init__(self, facility: int, tag: str) -> None:
        self.facility = facility
        self.tag = tag or os.path.basename(sys.argv[0] or "tidegate")
        address = os.environ.get("TIDEGATE_SYSLOG_ADDRESS") or "/dev/log"
        self.sock: socket.socket | None = None
        self.target: str | tuple[str, int] = address
        host, sep, port = address.rpartition(":")
        try:
            if "/" not in address and sep and port.isdigit():
                self.target = (host or "127.0.0.1", int(port))
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            else:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
        except OSError as exc:
            log.warning("syslog unavailable at %s: %s", address, exc)

    def send(self, level: str, text: str) -> None:
        """One message at the severity of this level."""
        if self.sock is None:
            return
        pri = self.facility * 8 + SEVERITY.get(level, 2)
        now = time.localtime()
        stamp = f"{time.strftime('%b', now)} {now.tm_mday:>2} {time.strftime('%H:%M:%S', now)}"
        data = f"<{pri}>{stamp} {self.tag}[{os.getpid()}]: {text}".encode()
        try:
            self.sock.sendto(data, self.target)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ENOENT, errno.ECONNREFUSED):
                log.debug("syslog: %s", exc)

    def close(self) -> None:
        """Release the socket."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
