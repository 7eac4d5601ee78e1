"""Whether an endpoint's proxy is nothing but its one backend's call, asked by the telemetry
components that let the backend's stage stand for the proxy's (decisions 77 and 79).

Backends are compiled before their endpoint, so a backend stage leaves what it prepared for the
proxy layer here (`leave`), and the endpoint's PROXY level takes it back (`take`) only when the
proxy would see the backend's answer as it is: one backend, called once, no static data, no
endpoint timeout around the call, no component below at the PROXY level and none at the
BACKEND/CLIENT levels that awaits more than its next stage. The SERVICE level, built last,
forgets what is left (`clear`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tidegate.components.seam import Build, Level

if TYPE_CHECKING:
    from tidegate.config.model import BackendConfig, EndpointConfig

T = TypeVar("T")
_KEPT = 4096  # a bound on what one generation's backends leave (the SERVICE level clears)


class LoneBackends(Generic[T]):
    """What backend stages left for their endpoint's PROXY level, by their configuration."""

    __slots__ = ("_left",)

    def __init__(self) -> None:
        self._left: dict[int, tuple[BackendConfig, T]] = {}

    def leave(self, backend: BackendConfig, value: T) -> None:
        if len(self._left) >= _KEPT:
            self._left.clear()
        self._left[id(backend)] = (backend, value)

    def clear(self) -> None:
        self._left.clear()

    def take(self, ctx: Build[Any], ep: EndpointConfig, *, own: Collection[str],
             proxy_order: int, backend_order: int | None = None) -> T | None:
        """What the endpoint's one backend left, if the proxy at `proxy_order` would cover
        nothing but that backend's call: components of the namespaces in `own` aside, none
        at the PROXY level below `proxy_order`, none at the BACKEND/CLIENT levels that is not
        `bounded` and, with `backend_order`, none at the BACKEND level above it."""
        if len(ep.backend) != 1 or ep.proxy.static is not None:
            return None
        backend = ep.backend[0]
        if backend.concurrent_calls > 1 or backend.timeout > ep.timeout:
            return None
        found = self._left.pop(id(backend), None)
        if found is None or found[0] is not backend:
            return None
        from tidegate.components.catalog import DECLARED  # the catalog loads the callers

        service = ctx.service.extra_config
        for d in DECLARED:
            if d.namespace in own:
                continue
            if Level.PROXY in d.levels and d.order < proxy_order and (
                    d.namespace in ep.extra_config
                    or (d.service_wide and d.namespace in service)):
                return None
            if d.levels & {Level.BACKEND, Level.CLIENT} and (
                    d.namespace in backend.extra_config
                    or (d.service_wide and d.namespace in service)) and (
                    not d.bounded or (backend_order is not None and Level.BACKEND in d.levels
                                      and d.order > backend_order)):
                return None
        return found[1]
