"""Every component tidegate implements, in one list (one line per namespace module)."""

from __future__ import annotations

from typing import Any

from tidegate.components.seam import Component

COMPONENTS: list[Component[Any]] = []
