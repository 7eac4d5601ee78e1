"""A real redis-server for the tests: on 127.0.0.1, a free port, no persistence, stopped by PID.

Skipped with a clear reason when the binary is absent locally; CI sets TIDEGATE_REQUIRE_REDIS=1
(its `.ci/run` installs Debian's `redis-server`), and then a missing binary is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import Gateway, free_port


def redis_binary() -> str:
    """The redis-server to run, or skip (fail under CI) without one."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)),
        None)
    if found is None:
        if os.environ.get("TIDEGATE_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (TIDEGATE_REQUIRE_REDIS) but missing")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    return found


class RedisServer:
    """One redis-server process; `stop` and `start` again on the same port (an outage)."""

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.binary = redis_binary()
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="tidegate-redis-")
        self.proc: Gateway | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = Gateway([], command=[
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
            "--loglevel", "notice", *self.extra])
        self.proc.wait_for("Ready to accept connections", timeout=20)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=10)
            self.proc = None

    def command(self, *args: str) -> Any:
        """One command over a plain socket (RESP), for looking at keys from a test."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            sock.sendall(out.encode())
            return _read_reply(sock.makefile("rb"))


def _read_reply(f: Any) -> Any:
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ValueError(f"unexpected reply {line!r}")


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[RedisServer]]:
    """A Redis Cluster of `masters` masters (no replicas) made with `redis-cli --cluster
    create`, ready (every node says cluster_state:ok, waited for with a bounded deadline)."""
    cli = shutil.which("redis-cli")
    if cli is None:
        redis_binary()
        pytest.skip("redis-cli is not installed (Debian: apt-get install redis-tools)")
    nodes = [RedisServer(extra=("--cluster-enabled", "yes", "--cluster-config-file",
                                "nodes.conf", "--cluster-node-timeout", "5000",
                                "--cluster-port", str(free_port())))
             for _ in range(masters)]
    try:
        for node in nodes:
            node.start()
        subprocess.run([cli, "--cluster", "create", *(n.address for n in nodes),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True,
                       capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in n.command("CLUSTER", "INFO") for n in nodes):
            assert time.monotonic() < deadline, "the cluster never became ready"
            threading.Event().wait(0.05)
        yield nodes
    finally:
        for node in nodes:
            node.stop()
            shutil.rmtree(node.dir, ignore_errors=True)
