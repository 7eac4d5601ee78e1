"""The interface of tidegate's Python plugins, for KrakenD's three plugin namespaces.

KrakenD loads Go plugins (``.so`` files built against its exact Go and library versions).
tidegate cannot load those; it offers the same namespaces to plugins written in Python:

* ``plugin/http-server`` (service level): `HttpServerPlugin` wraps the whole service before
  routing, ``build(config, next) -> handler``, where ``handler(Request) -> Response``.
* ``plugin/http-client`` (backend level): `HttpClientPlugin` replaces (or wraps) the backend's
  HTTP executor, ``build(config, next) -> exchange``, ``exchange(ClientRequest) ->
  ClientResponse``; ``next`` is tidegate's own executor.
* ``plugin/req-resp-modifier`` (endpoint and backend levels): `ModifierPlugin`, ``build(config)
  -> Modifier``, whose ``request(ProxyRequest)`` runs before the backends and
  ``response(ProxyResponse)`` after them; each may change its argument in place. Raising
  `PluginError` aborts the request with its status and message.

A plugin is found by its ``name`` in the section: first among the installed distributions'
entry points of group ``tidegate.plugins``, then as ``<name>.py`` (or ``<name>/__init__.py``)
in the root ``plugin.folder``. Either way the object is the module's ``plugin`` attribute (or
the entry point's target). A name that is not found is a configuration error, located at the
name: a plugin is never skipped silently. ``examples/plugins/`` has one of each kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tidegate.messages import (
    BackendFailure,
    Exchange,
    ProxyRequest,
    ProxyResponse,
    ServiceHandler,
)

__all__ = ["HttpClientPlugin", "HttpServerPlugin", "Modifier", "ModifierPlugin", "PluginError"]

Config = Mapping[str, Any]


class PluginError(BackendFailure):
    """A plugin's refusal: the client gets ``status`` (the message with return_error_msg)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpServerPlugin:
    """``plugin/http-server``: ``build(config, next)`` returns the handler that wraps `next`."""

    build: Callable[[Config, ServiceHandler], ServiceHandler]


@dataclass(frozen=True, slots=True)
class HttpClientPlugin:
    """``plugin/http-client``: ``build(config, next)`` returns the backend's executor."""

    build: Callable[[Config, Exchange], Exchange]


class Modifier(Protocol):
    """What a `ModifierPlugin` builds; either method may be a no-op."""

    def request(self, req: ProxyRequest) -> None:
        """Change the request the backends get (in place); raise PluginError to refuse."""

    def response(self, resp: ProxyResponse) -> None:
        """Change the answer (in place); raise PluginError to fail it."""


@dataclass(frozen=True, slots=True)
class ModifierPlugin:
    """``plugin/req-resp-modifier``: ``build(config)`` returns a `Modifier`."""

    build: Callable[[Config], Modifier]


Plugin = HttpServerPlugin | HttpClientPlugin | ModifierPlugin
