"""The worker's server on its listening socket, plain or TLS, and its swap when TLS changes.

The socket is the worker's for its whole life; each asyncio server gets a duplicate of it.
When a generation brings different TLS settings (a renewed certificate, another version, TLS
switched on or off), a new server with the new context starts accepting on the same socket
*before* the old one stops: there is no moment without an acceptor, new connections get the
new certificate, and connections already accepted keep their own TLS session until they end
(closing a server closes its listening socket, never its connections).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

from tidegate.config.tls import ServerTLS

BACKLOG = 2048
# How long a closing TLS connection waits for the client's close_notify (Go does not wait;
# asyncio's default, 30 s, would hold a draining worker that long).
SHUTDOWN_TIMEOUT = 2.0


class Listener:
    """One socket, the server accepting on it, and the TLS settings that server uses."""

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol]) -> None:
        self.sock = sock
        self.factory = factory
        self.server: asyncio.AbstractServer | None = None
        self.tls: ServerTLS | None = None
        self._lock = asyncio.Lock()

    async def serve(self, tls: ServerTLS | None, context: ssl.SSLContext | None,
                    handshake_timeout: float) -> bool:
        """Accept with these settings from now on; True when a new server was started."""
        if (tls is None) != (context is None):
            raise ValueError("TLS settings and their context go together")
        async with self._lock:
            if self.server is not None and tls == self.tls:
                return False
            loop = asyncio.get_running_loop()
            if context is None:
                server = await loop.create_server(self.factory, sock=self.sock.dup(),
                                                  backlog=BACKLOG)
            else:
                server = await loop.create_server(
                    self.factory, sock=self.sock.dup(), backlog=BACKLOG, ssl=context,
                    ssl_handshake_timeout=handshake_timeout,
                    ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
            old, self.server, self.tls = self.server, server, tls
            if old is not None:
                old.close()  # its listening duplicate only: its connections go on
            return True

    def close(self) -> None:
        """Stop accepting: the server's duplicate and the socket itself are closed."""
        if self.server is not None:
            self.server.close()
        self.sock.close()
