"""The seam for KrakenD components: ``extra_config`` namespace → factory, at three levels.

KrakenD CE stacks its components at three places (``handler_factory.go``,
``proxy_factory.go``, ``backend_factory.go`` in krakend-ce); tidegate keeps the same three:

* ``ROUTER``: wraps an endpoint's HTTP handler, ``(Request, route params) → Response``
  (JWT validation, rate limits, bot detector, router-level Lua...). Sees what the client sent
  and answers instead of the pipeline when it rejects.
* ``PROXY``: wraps the endpoint's proxy, ``ProxyRequest → (ProxyResponse | None, error)``,
  outside lura's merge/flatmap/static stages (CEL, Lua proxy, JSON schema...).
* ``BACKEND``: wraps one backend's HTTP exchange, after the request builder and before the
  wire: it receives the ``ProxyRequest`` with the backend's method, path (url_pattern filled)
  and filtered headers and query, and returns the decoded, manipulated ``ProxyResponse`` or
  raises a ``BackendFailure`` (Lua backend, martian, circuit breaker, backend rate limit...).

One factory signature per level: ``factory(ctx, next) -> wrapped`` (the stage types are
``EndpointHandler``, ``Proxy`` and ``BackendProxy`` of `tidegate.messages`), called once when a
generation is compiled; nothing is looked up per request. A factory may raise ``ValueError``
for a configuration it cannot serve (the generation is then rejected with the location).

The stacking order is decided here, by each registration's ``order`` (smaller is closer to the
core, as the first ``f = X(f)`` line of krakend-ce's factories). Namespaces nobody registered
are ignored at run time. The registry holds code, never configuration: two generations
compiled from it share nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from tidegate.config.model import BackendConfig, EndpointConfig

__all__ = [
    "DEFAULT_REGISTRY",
    "ComponentContext",
    "Level",
    "Registry",
]

Stage = TypeVar("Stage")


class Level(Enum):
    """Where a component wraps the pipeline (krakend-ce's three factories)."""

    ROUTER = "router"
    PROXY = "proxy"
    BACKEND = "backend"


@dataclass(frozen=True, slots=True)
class ComponentContext:
    """What a factory gets besides the stage it wraps.

    ``config`` is the value under the component's namespace; ``scope`` says where it was found
    (``"service"``, ``"endpoint"`` or ``"backend"``).
    """

    namespace: str
    config: Any
    scope: str
    endpoint: EndpointConfig | None = None
    backend: BackendConfig | None = None


Factory = Callable[[ComponentContext, Stage], Stage]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[Stage]):
    namespace: str
    level: Level
    factory: Factory[Any]
    order: int
    service_wide: bool


class Registry:
    """Registered component factories, by level, kept sorted by their stacking order."""

    def __init__(self) -> None:
        self._entries: dict[Level, list[_Entry[Any]]] = {lvl: [] for lvl in Level}

    def register(self, namespace: str, level: Level, factory: Factory[Any], *,
                 order: int = 100, service_wide: bool = False) -> None:
        """Add a factory. ``service_wide`` (router level only) also applies a root-level
        ``extra_config`` entry to every endpoint that has none of its own."""
        if service_wide and level is not Level.ROUTER:
            raise ValueError("only router-level components can be configured service-wide")
        entries = self._entries[level]
        if any(e.namespace == namespace for e in entries):
            raise ValueError(f"{level.value} component {namespace!r} is already registered")
        entries.append(_Entry(namespace, level, factory, order, service_wide))
        entries.sort(key=lambda e: e.order)

    def unregister(self, namespace: str, level: Level) -> None:
        """Remove a factory (tests, plugins unloading)."""
        self._entries[level] = [e for e in self._entries[level] if e.namespace != namespace]

    @contextmanager
    def registered(self, namespace: str, level: Level, factory: Factory[Any], *,
                   order: int = 100, service_wide: bool = False) -> Iterator[None]:
        """A registration that lasts for a ``with`` block."""
        self.register(namespace, level, factory, order=order, service_wide=service_wide)
        try:
            yield
        finally:
            self.unregister(namespace, level)

    def wrap(self, level: Level, stage: Stage, extra_config: Mapping[str, Any], *,
             scope: str, endpoint: EndpointConfig | None = None,
             backend: BackendConfig | None = None,
             service_extra_config: Mapping[str, Any] | None = None) -> Stage:
        """``stage`` wrapped by every registered component the config mentions (compile time).

        Returns ``stage`` itself when none applies, so an unconfigured pipeline pays nothing.
        """
        for entry in self._entries[level]:
            found_scope = scope
            if entry.namespace in extra_config:
                cfg = extra_config[entry.namespace]
            elif entry.service_wide and service_extra_config \
                    and entry.namespace in service_extra_config:
                cfg, found_scope = service_extra_config[entry.namespace], "service"
            else:
                continue
            ctx = ComponentContext(entry.namespace, cfg, found_scope, endpoint, backend)
            stage = entry.factory(ctx, stage)
        return stage

    def namespaces(self, level: Level) -> tuple[str, ...]:
        """Registered namespaces of a level, innermost first."""
        return tuple(e.namespace for e in self._entries[level])


# The registry tidegate's pipeline uses; component modules register into it on import.
DEFAULT_REGISTRY = Registry()
