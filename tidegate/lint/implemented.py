"""Which namespaces tidegate acts on: the table's core ones plus what components registered.

The namespace table lives with the model (`tidegate.config.namespaces`); the component registry
sits above it, so the question that needs both is answered here, in lint.
"""

from __future__ import annotations

from tidegate.config.aliases import current_name
from tidegate.config.namespaces import NAMESPACES


def registered_components() -> frozenset[str]:
    """Namespaces a component module registered in the pipeline's registry: implemented, even
    when the table has no schema for them yet (their content is then not checked)."""
    from tidegate.components import DEFAULT_REGISTRY, Level

    return frozenset(ns for level in Level for ns in DEFAULT_REGISTRY.namespaces(level))


def implemented(name: str, registered: frozenset[str] | None = None) -> bool:
    """Whether tidegate acts on this namespace (False for unknown names too)."""
    ns = NAMESPACES.get(name)
    if ns is None:
        return False
    if registered is None:
        registered = registered_components()
    return ns.supported or current_name(name) in registered
