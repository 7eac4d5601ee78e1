"""A generation: one validated configuration compiled into an immutable, servable object.

The server holds one reference to the current generation and swaps it whole. Everything a
request needs (route table, endpoint pipelines, upstream pools) belongs to the generation, so two
generations coexist while the old one drains, and nothing derived from configuration is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from tidegate import KRAKEND_COMPAT_VERSION
from tidegate.components import DEFAULT_REGISTRY, Level, Registry, Resources
from tidegate.config.model import EndpointConfig, ServiceConfig
from tidegate.config.tls import client_tls
from tidegate.errors import ConfigErrors, ConfigValueError
from tidegate.messages import EndpointHandler, Request, Response, ServiceHandler
from tidegate.pipeline import builtins
from tidegate.pipeline.backend import CompiledBackend
from tidegate.pipeline.client_ip import client_ip_rules, client_ip_stage
from tidegate.pipeline.endpoint import (
    COMPLETED_HEADER,
    HIDDEN_VERSION_HEADER,
    VERSION_HEADER,
    compile_endpoint,
)
from tidegate.pipeline.lifecycle import Lifecycle, Phase
from tidegate.pipeline.router import Match, MethodNotAllowed, Redirect, RouteConflict, Router
from tidegate.state import StateStore
from tidegate.telemetry.access_log import AccessLogger
from tidegate.telemetry.logging_config import DEFAULT_SETTINGS, log_settings
from tidegate.upstream.client import PoolRegistry, Target, UpstreamClient, parse_target

# What backends see, as from KrakenD (some allow-list the gateway by it); an operator may set
# another with TIDEGATE_USER_AGENT.
USER_AGENT = f"KrakenD Version {KRAKEND_COMPAT_VERSION}"


def user_agent(env: Mapping[str, str]) -> str:
    """The User-Agent (and X-Forwarded-Via) sent to backends."""
    return env.get("TIDEGATE_USER_AGENT") or USER_AGENT

_NOT_FOUND = Response.text(404, "404 page not found")


@dataclass(slots=True)
class ServerStatus:
    """Server-wide facts that outlive generations (shown on `/__health`)."""

    started: float = field(default_factory=time.time)
    last_reload_error: dict[str, Any] | None = None
    reloads: int = 0


def config_hash(data: Any) -> str:
    """A stable short hash of the effective configuration (after overrides)."""
    blob = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(blob).hexdigest()[:16]


def endpoint_fingerprints(service: ServiceConfig) -> dict[str, str]:
    """``"GET /users/{id}"`` → hash of that endpoint's raw config (to describe reload changes)."""
    return {f"{ep.method} {ep.endpoint}": config_hash(ep.raw) for ep in service.endpoints}


class Generation:
    """The compiled configuration; `handle` answers one request.

    Life: compiled here (pure, in any thread; the supervisor's trial build stops there), then
    `provision` (worker, event loop, before the swap: state and upstream pools are leased),
    then `close` once drained (components closed in reverse order, leases released).
    """

    def __init__(self, service: ServiceConfig, gen_id: int, chash: str, *, debug: bool,
                 status: ServerStatus, build_seconds: float = 0.0,
                 unprotected: tuple[str, ...] = (),
                 registry: Registry = DEFAULT_REGISTRY) -> None:
        self.service = service
        # Protections the config asks for that the operator let through unimplemented.
        self.unprotected = unprotected
        self.id = gen_id
        self.config_hash = chash
        self.status = status
        self.build_seconds = build_seconds
        self.activated = time.time()
        self.inflight = 0
        # Built from a configuration the supervisor already validated.
        self.lifecycle = Lifecycle(gen_id, chash, Phase.VALIDATED)
        self._drained: asyncio.Event | None = None
        errors: list[ConfigValueError] = []
        try:  # https backends are reached with this generation's client_tls
            self.client = UpstreamClient(tls=client_tls(service.raw))
        except ConfigErrors as tls_errors:
            errors.extend(e for e in tls_errors.errors if isinstance(e, ConfigValueError))
            self.client = UpstreamClient()
        self.resources = Resources(generation=gen_id, config_hash=chash)
        self._assembly = registry.assembly(service, self.resources)
        self.return_error_msg = service.router.return_error_msg
        self.version_header = (HIDDEN_VERSION_HEADER if service.router.hide_version_header
                               else VERSION_HEADER)
        self.user_agent = user_agent(os.environ)
        self.max_payload = service.router.max_payload
        rules = client_ip_rules(service.router)
        self.trusted_proxies = rules is not None
        self.router: Router[EndpointHandler] = Router()
        self._routes: dict[EndpointHandler, str] = {}  # handler -> its endpoint pattern
        try:
            self.logs = log_settings(service.extra_config)
        except ConfigValueError as exc:
            errors.append(exc)
            self.logs = DEFAULT_SETTINGS
        # Set by the worker that serves it (the protocol writes one line per request).
        self.access_log: AccessLogger | None = None
        debug = debug or service.debug_endpoint
        reserved = builtins.builtin_routes(debug=debug, echo=service.echo_endpoint)
        for ep in service.endpoints:
            taken = builtins.builtin_conflict(ep.method, ep.endpoint, reserved)
            if taken is not None:
                errors.append(ConfigValueError(
                    f"{ep.method} {ep.endpoint} collides with the built-in route {taken}",
                    path=(*ep.path, "endpoint")))
                continue
            try:
                handler = self._compile(ep)
                self.router.add(ep.method, ep.endpoint, handler)
                self._routes[handler] = ep.endpoint
            except ConfigValueError as exc:
                errors.append(exc)
            except (ValueError, RouteConflict) as bad_route:
                errors.append(ConfigValueError(str(bad_route), path=ep.path))
        try:
            # Components around the whole service see every request before routing, and the
            # client's address is known before any of them runs.
            self.handle: ServiceHandler = client_ip_stage(rules, self._assembly.wrap(
                Level.SERVICE, self.route, service.extra_config))
        except ConfigValueError as exc:
            errors.append(exc)
        except ValueError as bad_value:
            errors.append(ConfigValueError(str(bad_value), path=("extra_config",)))
        if errors:
            raise ConfigErrors(errors)
        self.targets: list[Target] = []
        for ep in service.endpoints:
            for backend in ep.backend:
                for host in backend.host:
                    with contextlib.suppress(ValueError):  # invalid hosts failed above
                        self.targets.append(parse_target(host))
        builtins.register(self.router, self, debug=debug, echo=service.echo_endpoint)

    def _compile(self, ep: EndpointConfig) -> EndpointHandler:
        backends = []
        alone = len(ep.backend) == 1  # its answer is the endpoint's: no-op can stream it
        for b in ep.backend:
            try:
                backends.append(CompiledBackend(b, self.client, self.user_agent, self._assembly,
                                                stream_answer=alone))
            except ValueError as exc:
                raise ConfigValueError(str(exc), path=b.path) from None
        return compile_endpoint(ep, backends, self.user_agent, self.return_error_msg,
                                registry=self._assembly,
                                max_payloads=(self.max_payload, ep.proxy.max_payload),
                                version_header=self.version_header,
                                trusted_proxies=self.trusted_proxies)

    async def provision(self, store: StateStore) -> None:
        """Lease what outlives generations (pools, component state) from the worker's store
        and start the components' timers and clients; before the swap, on the event loop."""
        self.client.use(PoolRegistry(store))
        for target in self.targets:
            self.client.reserve(target)  # a reload hands the pool over warm
        try:
            await self.resources.provision(store)
        except BaseException:
            await self.client.close()
            raise

    def route(self, request: Request) -> Awaitable[Response]:
        """Route and answer one request on this generation (inside the service components).

        Not a coroutine itself: a routed request is answered by awaiting its endpoint's
        handler directly, one coroutine frame fewer per request."""
        path = request.path
        if "%" in path:
            path = unquote(path)
        found = self.router.lookup(request.method, path)
        if type(found) is Match:
            request.route = self._routes.get(found.handler, "")
            return found.handler(request, found.params)
        assert not isinstance(found, Match)
        return self._unrouted(request, found)

    async def _unrouted(self, request: Request,
                        found: Redirect | MethodNotAllowed | None) -> Response:
        """The answer to a request no endpoint takes: 404, 405 or a redirect."""
        if found is None:
            return _NOT_FOUND
        if isinstance(found, MethodNotAllowed):
            return Response(405, [(COMPLETED_HEADER, "false"), ("Content-Type", "text/plain")],
                            b"405 method not allowed")
        assert isinstance(found, Redirect)
        location = found.location + (f"?{request.query}" if request.query else "")
        code = 301 if request.method == "GET" else 307
        body = b""
        headers = [("Location", location)]
        if request.method in ("GET", "HEAD"):
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            text = "Moved Permanently" if code == 301 else "Temporary Redirect"
            body = f'<a href="{location}">{text}</a>.\n\n'.encode()
        return Response(code, headers, body)

    def leave(self) -> None:
        """A request of this generation finished (called by the protocol)."""
        self.inflight -= 1
        if self.inflight == 0 and self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        """Wait until no request uses this generation any more."""
        if self.inflight <= 0:
            return
        self._drained = asyncio.Event()
        await self._drained.wait()

    def describe(self) -> dict[str, Any]:
        """What `/__health` says about this generation."""
        return {"id": self.id, "config_hash": self.config_hash,
                "activated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.activated)),
                "endpoints": len(self.service.endpoints)}

    async def close(self) -> None:
        """Once drained: close the components (reverse order), release their state and the
        upstream pools. Errors are logged by `Resources.close`, never raised into a swap."""
        await self.resources.close()
        await self.client.close()

