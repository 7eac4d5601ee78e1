"""Flexible configuration for the gateway: FC_SETTINGS / FC_PARTIALS / FC_TEMPLATES / FC_OUT.

Behaves like krakend-flexibleconfig, except that a template problem is an error (KrakenD
silently falls back to parsing the raw file, which hides the real cause).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tidegate.errors import TemplateError

from .loader import RenderError, render


@dataclass(frozen=True)
class RenderedConfig:
    """The rendered configuration text and everything it was built from."""

    text: str
    source_name: str
    files: tuple[str, ...]
    watch_dirs: tuple[str, ...]


def _dedupe(items: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return tuple(seen)


def render_flexible_config(config_path: str, env: Mapping[str, str]) -> RenderedConfig:
    """Render `config_path` as KrakenD does when FC_ENABLE is set; raises TemplateError."""
    settings = env.get("FC_SETTINGS", "")
    partials = env.get("FC_PARTIALS", "")
    templates = env.get("FC_TEMPLATES", "")
    out = env.get("FC_OUT", "")
    try:
        result = render(config_path, settings=settings, partials=partials, templates=templates,
                        env=env)
    except RenderError as e:
        raise TemplateError(e.message, file=e.file, line=e.line, col=e.col) from None
    if out:
        try:
            with open(out, "wb") as fh:
                fh.write(result.text.encode("utf-8", "surrogateescape"))
        except OSError as e:
            raise TemplateError(f"writing FC_OUT: {e}", file=out) from None
    dirs = [d for d in (settings, partials, templates) if d]
    dirs.append(os.path.dirname(os.path.abspath(config_path)))
    return RenderedConfig(text=result.text, source_name=config_path,
                          files=_dedupe(result.files), watch_dirs=_dedupe(dirs))
