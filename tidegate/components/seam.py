"""The seam for KrakenD components: a namespace → a typed section → a wrapped stage, at four levels.

KrakenD CE stacks its components at four places: around the whole engine (``executor.go``: CORS,
``security/http``, the bot detector, telemetry see every request, 404s and preflights included)
and in ``handler_factory.go``, ``proxy_factory.go`` and ``backend_factory.go``. tidegate keeps
the same four (the stage types are in `tidegate.messages`):

* ``SERVICE``: wraps the generation *before routing*, ``Request → Response``.
* ``ROUTER``: wraps an endpoint's handler, ``(Request, route params) → Response``.
* ``PROXY``: wraps the endpoint's proxy, outside lura's merge/flatmap/static stages.
* ``BACKEND``: wraps one backend's exchange, after the request builder.
* ``CLIENT``: wraps the HTTP request executor under it, ``ClientRequest → ClientResponse``,
  before the status check and decoding (KrakenD's ``qos/http-cache``, client credentials).

A component's life has three steps:

* **compile** (`Component.parse` then `Component.build`): pure; turns the raw section into a
  frozen value (errors located at the key) and `next` into the wrapped stage. Runs in the
  supervisor's trial build and in every worker.
* **provision** (`Resources.provision`, worker only, before the swap): leases the state the
  component asked for with `Build.state` from the worker's `StateStore` and runs its
  `on_provision` hooks (timers, clients). The supervisor's trial generation never provisions.
* **close** (`Resources.close`, after the generation drained): `on_close` hooks in reverse order,
  then the leases are released; errors are collected and logged, never raised into a swap.

Nothing is looked up per request: a stage reads ``lease.value``, set once at provision.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tidegate.errors import ConfigValueError, PathPart
from tidegate.state import BucketStore, StateKey, StateStore, fingerprint

if TYPE_CHECKING:
    from tidegate.config.model import BackendConfig, EndpointConfig, ServiceConfig
    from tidegate.messages import Proxy, ProxyRequest, Request, Response

log = logging.getLogger("tidegate.components")

C = TypeVar("C")
T = TypeVar("T")
Stage = TypeVar("Stage")
Hook = Callable[[], "Awaitable[None] | None"]
JsonPath = tuple[PathPart, ...]


class Level(Enum):
    """Where a component wraps the pipeline (krakend-ce's engine and its three factories)."""

    SERVICE = "service"
    ROUTER = "router"
    PROXY = "proxy"
    BACKEND = "backend"
    CLIENT = "client"   # the request executor: one HTTP exchange, before decoding


def _identity(raw: Any, path: JsonPath) -> Any:
    return raw


@dataclass(frozen=True, slots=True)
class Component(Generic[C]):
    """One KrakenD namespace, as a component registers it.

    ``parse(raw, path)`` returns a frozen typed value or raises `ConfigValueError` with the
    path of the offending key; ``build(ctx, next)`` returns ``next`` wrapped (compile time,
    no I/O). ``schema`` (JSON schema of the section) serves `check -l`, `tidegate schema` and
    the unknown-attribute warnings. ``order``: smaller is closer to the core. ``service_wide``:
    a component below SERVICE whose root-level section applies to every endpoint (backend)
    without one of its own (the root ``telemetry/opentelemetry`` instruments them all).
    ``bounded`` (BACKEND and CLIENT levels): the stage awaits nothing but the next stage
    (and, in the executor, nothing past ``ClientRequest.deadline``), so the backend's own
    deadline bounds the call and a single backend needs no endpoint timeout scope around it.
    """

    namespace: str
    levels: frozenset[Level]
    build: Callable[[Build[C], Any], Any]
    parse: Callable[[Any, JsonPath], C] = _identity
    schema: Mapping[str, Any] | None = None
    order: int = 100
    service_wide: bool = False
    bounded: bool = False


class Lease(Generic[T]):
    """A handle on state a component asked for; `value` is set when the generation provisions."""

    __slots__ = ("create", "key", "value")
    value: T

    def __init__(self, key: StateKey, create: Callable[[], T]) -> None:
        self.key = key
        self.create = create

    def __repr__(self) -> str:
        return f"Lease({self.key!r})"


@dataclass(slots=True)
class Resources:
    """What one generation's components asked for at compile time, provisioned and closed
    together (the generation owns one)."""

    leases: list[Lease[Any]] = field(default_factory=list)
    # The generation being compiled (telemetry tags what it records with them).
    generation: int = 0
    config_hash: str = ""
    provisioners: list[Hook] = field(default_factory=list)
    closers: list[Hook] = field(default_factory=list)
    # (section, item) -> what `/__health` shows under body[section][item] (e.g. a Redis pool)
    reports: dict[tuple[str, str], Callable[[], Any]] = field(default_factory=dict)
    store: StateStore | None = None
    _held: list[Lease[Any]] = field(default_factory=list)

    async def provision(self, store: StateStore) -> None:
        """Lease every entry and run the provision hooks (worker only, before the swap).

        If a hook fails, what was provisioned is closed again and the error propagates: the
        generation is then not swapped in.
        """
        self.store = store
        try:
            for lease in self.leases:
                lease.value = store.lease(lease.key, lease.create)
                self._held.append(lease)
            for hook in self.provisioners:
                result = hook()
                if inspect.isawaitable(result):
                    await result
        except BaseException:
            await self.close()
            raise

    async def close(self) -> list[BaseException]:
        """Close hooks in reverse order, then release the leases; errors are logged and
        returned, never raised (a failing close must not stop the others)."""
        errors: list[BaseException] = []
        for hook in reversed(self.closers):
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.exception("closing a component failed")
                errors.append(exc)
        self.closers.clear()
        held, self._held = self._held, []
        for lease in reversed(held):
            try:
                if self.store is not None:
                    self.store.release(lease.key)
            except Exception as exc:
                log.exception("releasing state %s failed", lease.key)
                errors.append(exc)
        return errors

    @property
    def buckets(self) -> BucketStore:
        """The node's token buckets (after provision)."""
        if self.store is None:
            raise RuntimeError("token buckets are available once the generation is provisioned")
        return self.store.buckets


@dataclass(frozen=True, slots=True)
class EndpointParts:
    """What lura's handler factory is given besides the endpoint: its proxy, the request
    builder and the endpoint timeout. A ROUTER component that replaces the handler instead of
    wrapping it (krakend-jose's signer) builds its own around them."""

    proxy: Proxy
    build_request: Callable[[Request, dict[str, str]], ProxyRequest]
    timeout: float


@dataclass(frozen=True, slots=True)
class Build(Generic[C]):
    """The compile-time context of one component at one place of the configuration."""

    namespace: str
    config: C
    level: Level
    scope: str                    # "service", "GET /users/{id}", "GET /users/{id} #0"
    path: JsonPath                # of the section, for located errors
    service: ServiceConfig
    endpoint: EndpointConfig | None
    backend: BackendConfig | None
    resources: Resources
    parts: EndpointParts | None = None  # ROUTER level only

    def state(self, fingerprint_of: Any, create: Callable[[], T], *,
              scope: str | None = None) -> Lease[T]:
        """State kept across generations while `fingerprint_of` (exactly what it depends on)
        and the scope are unchanged. ``scope="service"`` shares one entry across endpoints."""
        key = (self.namespace, self.scope if scope is None else scope,
               fingerprint(fingerprint_of))
        lease: Lease[T] = Lease(key, create)
        self.resources.leases.append(lease)
        return lease

    def on_provision(self, hook: Hook) -> None:
        """Run `hook` in the worker before the generation serves (timers, clients)."""
        self.resources.provisioners.append(hook)

    def on_close(self, hook: Hook) -> None:
        """Run `hook` after the generation drained (reverse order of registration)."""
        self.resources.closers.append(hook)

    def report(self, section: str, item: str, describe: Callable[[], Any]) -> None:
        """Show ``describe()`` on `/__health` under ``section.item`` while this generation
        serves (called per health request, after provision)."""
        self.resources.reports[(section, item)] = describe

    @property
    def generation(self) -> int:
        """The id of the generation being compiled."""
        return self.resources.generation

    @property
    def buckets(self) -> BucketStore:
        """The node's token buckets; read it per request, never at build time."""
        return self.resources.buckets

    def error(self, message: str, *key: PathPart) -> ConfigValueError:
        """A config error located at ``path + key``."""
        return ConfigValueError(message, path=(*self.path, *key))


class Registry:
    """Registered components, by level, kept sorted by their stacking order."""

    def __init__(self) -> None:
        self._entries: dict[Level, list[Component[Any]]] = {lvl: [] for lvl in Level}

    def add(self, component: Component[Any]) -> None:
        """Register a component at each of its levels."""
        if component.service_wide and Level.SERVICE in component.levels:
            raise ValueError("a service-level component cannot be service-wide")
        for level in component.levels:
            entries = self._entries[level]
            # One namespace may be served by several components at a level (metrics and
            # traces of `telemetry/opentelemetry`), each at its own place in the stack.
            if any(e.namespace == component.namespace and e.order == component.order
                   for e in entries):
                raise ValueError(f"{level.value} component {component.namespace!r} is "
                                 f"already registered at order {component.order}")
            entries.append(component)
            entries.sort(key=lambda e: e.order)

    def remove(self, namespace: str) -> None:
        """Unregister a namespace at every level (tests)."""
        for level in Level:
            self._entries[level] = [e for e in self._entries[level] if e.namespace != namespace]

    @contextmanager
    def registered(self, component: Component[Any]) -> Iterator[None]:
        """A registration that lasts for a ``with`` block."""
        self.add(component)
        try:
            yield
        finally:
            self.remove(component.namespace)

    def components(self, level: Level | None = None) -> tuple[Component[Any], ...]:
        """Registered components (of a level, innermost first)."""
        if level is not None:
            return tuple(self._entries[level])
        seen: dict[str, Component[Any]] = {}
        for lvl in Level:
            for e in self._entries[lvl]:
                seen.setdefault(e.namespace, e)
        return tuple(seen.values())

    def namespaces(self, level: Level) -> tuple[str, ...]:
        """Registered namespaces of a level, innermost first."""
        return tuple(e.namespace for e in self._entries[level])

    def get(self, namespace: str) -> Component[Any] | None:
        """The component registered for `namespace`, if any."""
        for lvl in Level:
            for e in self._entries[lvl]:
                if e.namespace == namespace:
                    return e
        return None

    def assembly(self, service: ServiceConfig, resources: Resources | None = None) -> Assembly:
        """The registry bound to one generation being compiled."""
        return Assembly(self, service, resources if resources is not None else Resources())


async def answered(resp: Response) -> Response:
    """An answer ready now, as the awaitable a stage returns: a stage that usually hands the
    request on returns the next stage's awaitable instead of awaiting it in a coroutine of its
    own, and this when it answers by itself."""
    return resp


def endpoint_scope(endpoint: EndpointConfig) -> str:
    """The state scope of an endpoint: what a user would call the same endpoint after a reload."""
    return f"{endpoint.method} {endpoint.endpoint}"


class Assembly:
    """The registry while one generation compiles: it knows the service, collects the
    generation's resources and names every place by its scope."""

    def __init__(self, registry: Registry, service: ServiceConfig, resources: Resources) -> None:
        self.registry = registry
        self.service = service
        self.resources = resources
        self._owners: dict[int, tuple[EndpointConfig, int]] = {
            id(b): (ep, i) for ep in service.endpoints for i, b in enumerate(ep.backend)}

    def wrap(self, level: Level, stage: Stage, extra_config: Mapping[str, Any], *,
             scope: str = "", endpoint: EndpointConfig | None = None,
             backend: BackendConfig | None = None,
             service_extra_config: Mapping[str, Any] | None = None,
             parts: EndpointParts | None = None) -> Stage:
        """``stage`` wrapped by every registered component the config mentions (compile time).

        Returns ``stage`` itself when none applies, so an unconfigured pipeline pays nothing.
        ``scope`` is accepted for the older call sites and recomputed here.
        """
        entries = self.registry._entries[level]
        if not entries:
            return stage
        base, place = self._place(level, endpoint, backend)
        if backend is not None and endpoint is None:  # a backend's components know its endpoint
            endpoint = self._owners.get(id(backend), (None, 0))[0]
        for comp in entries:
            found_path = (*base, "extra_config", comp.namespace)
            if comp.namespace in extra_config:
                raw = extra_config[comp.namespace]
            elif comp.service_wide and comp.namespace in self.service.extra_config:
                raw = self.service.extra_config[comp.namespace]
                found_path = ("extra_config", comp.namespace)
            else:
                continue
            config = comp.parse(raw, found_path)
            ctx: Build[Any] = Build(comp.namespace, config, level, place, found_path,
                                    self.service, endpoint, backend, self.resources, parts)
            stage = comp.build(ctx, stage)
        return stage

    def applied(self, level: Level, extra_config: Mapping[str, Any]
                ) -> tuple[Component[Any], ...]:
        """The components `wrap` would apply at `level` for this extra_config (a stage that
        relies on what wraps it asks, e.g. to remember a cache hit's rendering)."""
        return tuple(c for c in self.registry._entries[level]
                     if c.namespace in extra_config
                     or (c.service_wide and c.namespace in self.service.extra_config))

    def _place(self, level: Level, endpoint: EndpointConfig | None,
               backend: BackendConfig | None) -> tuple[JsonPath, str]:
        """(JSON path of the owner, state scope) for a level."""
        if backend is not None:
            owner, index = self._owners.get(id(backend), (endpoint, 0))
            scope = f"{endpoint_scope(owner)} #{index}" if owner is not None else "backend"
            return tuple(backend.path), scope
        if endpoint is not None and level is not Level.SERVICE:
            return tuple(endpoint.path), endpoint_scope(endpoint)
        return (), "service"
