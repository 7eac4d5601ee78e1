"""KrakenD's components: the seam (`seam`), one module per namespace, and the default registry.

`catalog.COMPONENTS` lists every implemented component; importing this package registers them
in `DEFAULT_REGISTRY`, which the pipeline compiles generations with and the fail-closed rule
reads (a namespace is protected by tidegate only once it is registered here).
"""

from __future__ import annotations

from tidegate.components.seam import (
    Assembly,
    Build,
    Component,
    EndpointParts,
    Lease,
    Level,
    Registry,
    Resources,
    endpoint_scope,
)

__all__ = [
    "DEFAULT_REGISTRY",
    "Assembly",
    "Build",
    "Component",
    "EndpointParts",
    "Lease",
    "Level",
    "Registry",
    "Resources",
    "endpoint_scope",
]

DEFAULT_REGISTRY = Registry()


def _register_catalog() -> None:
    from tidegate.components.catalog import COMPONENTS

    for component in COMPONENTS:
        DEFAULT_REGISTRY.add(component)


_register_catalog()
