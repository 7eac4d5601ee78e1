"""Go text/template + Sprig 3.2.3 in pure Python: KrakenD's "Flexible Configuration" engine.

Entry points: `render_flexible_config` (the gateway, driven by FC_* variables), `cli.main`
(the `tidegate render` engine contract) and `TemplateSet` for direct use.
"""

from __future__ import annotations

from .flexible import RenderedConfig, render_flexible_config
from .template import TemplateSet

__all__ = ["RenderedConfig", "TemplateSet", "render_flexible_config"]
