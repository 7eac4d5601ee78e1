"""Go text/template + Sprig 3.2.3 in pure Python: KrakenD's "Flexible Configuration" engine.

Entry points: `loader.render` (a template with settings, partials and templates folders;
the gateway's flexible configuration, `tidegate.config.flexible`, drives it), `cli.main` (the
`tidegate render` engine contract) and `TemplateSet` for direct use.
"""

from __future__ import annotations

from .template import TemplateSet

__all__ = ["TemplateSet"]
