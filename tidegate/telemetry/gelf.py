"""GELF 1.1 to Graylog (`telemetry/gelf`): application log lines and the access log.

UDP (the default, as go-gelf): each message is zlib-compressed and sent in one datagram, or in
chunks of `CHUNK_SIZE` bytes with GELF's chunk header (magic 0x1e 0x0f, an 8-byte message id,
sequence number, count) when larger; beyond `MAX_CHUNKS` chunks it is dropped. Fire-and-forget
on a non-blocking socket: a dead Graylog costs nothing.

TCP (``enable_tcp``): uncompressed JSON, each message ended by a NUL byte, written by one
thread from a queue bounded in messages; when Graylog is away the thread reconnects with a
growing delay and, while the queue is full, new messages are dropped (and counted).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
import zlib

from tidegate.telemetry.logging_config import Gelf
from tidegate.telemetry.logging_format import HOSTNAME

log = logging.getLogger("tidegate.telemetry")

CHUNK_SIZE = 1420  # go-gelf's: a datagram that fits an Ethernet frame
CHUNK_HEADER = 12
MAX_CHUNKS = 128
TCP_QUEUE = 1024
RECONNECT_MAX = 5.0


def message(text: str, level: int, created: float, extra: dict[str, object] | None = None
            ) -> bytes:
    """One GELF message: the first line is the short message, the whole text the full one."""
    short, nl, _ = text.partition("\n")
    msg: dict[str, object] = {"version": "1.1", "host": HOSTNAME, "short_message": short,
                              "timestamp": round(created, 6), "level": level,
                              "_facility": "tidegate"}
    if nl:
        msg["full_message"] = text
    if extra:
        msg.update(extra)
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()


def chunks(data: bytes, message_id: bytes) -> list[bytes]:
    """The datagrams of one compressed message ([] when it needs more than MAX_CHUNKS)."""
    if len(data) <= CHUNK_SIZE:
        return [data]
    size = CHUNK_SIZE - CHUNK_HEADER
    count = -(-len(data) // size)
    if count > MAX_CHUNKS:
        return []
    return [b"\x1e\x0f" + message_id + bytes((i, count)) + data[i * size:(i + 1) * size]
            for i in range(count)]


class GelfSender:
    """Sends GELF messages to one Graylog address, never blocking the caller."""

    def __init__(self, settings: Gelf) -> None:
        self.settings = settings
        self.dropped = 0
        self._closed = False
        self._udp: socket.socket | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._target: tuple[str, int] = (settings.host, settings.port)
        if settings.tcp:
            self._queue = queue.Queue(TCP_QUEUE)
            self._thread = threading.Thread(target=self._tcp_loop, name="gelf-tcp",
                                            daemon=True)
            self._thread.start()
        else:
            with contextlib.suppress(OSError):
                info = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_DGRAM)
                family, _, _, _, addr = info[0]
                self._udp = socket.socket(family, socket.SOCK_DGRAM)
                self._udp.setblocking(False)
                self._target = (str(addr[0]), int(addr[1]))

    def send(self, payload: bytes) -> None:
        """Queue or send one message (a JSON object)."""
        if self._queue is not None:
            try:
                self._queue.put_nowait(payload)
            except queue.Full:
                self.dropped += 1
            return
        if self._udp is None:
            return
        for datagram in chunks(zlib.compress(payload, 1), os.urandom(8)) or ():
            try:
                self._udp.sendto(datagram, self._target)
            except OSError:
                self.dropped += 1
                return

    def _tcp_loop(self) -> None:
        assert self._queue is not None
        delay = 0.1
        sock: socket.socket | None = None
        pending: bytes | None = None
        while not self._closed:
            if pending is None:
                pending = self._queue.get()
                if pending is None:
                    break
            if sock is None:
                try:
                    sock = socket.create_connection(self._target, timeout=2.0)
                    delay = 0.1
                except OSError:
                    time.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
            try:
                sock.sendall(pending + b"\0")
                pending = None
            except OSError:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Stop sending; queued TCP messages are given a moment to leave."""
        self._closed = True
        if self._queue is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        if self._udp is not None:
            self._udp.close()
