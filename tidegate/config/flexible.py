"""Flexible configuration for the gateway: FC_ENABLE / FC_SETTINGS / FC_PARTIALS /
FC_TEMPLATES / FC_OUT, read here (`FlexibleEnv`) and nowhere else.

Behaves like krakend-flexibleconfig, except that a template problem is an error (KrakenD
silently falls back to parsing the raw file, which hides the real cause). Like KrakenD, the
rendered text is written to FC_OUT before it is parsed, so a parse error can be read there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tidegate.errors import ConfigError, ConfigErrors, TemplateError

if TYPE_CHECKING:  # the template engine is imported only when a configuration needs it
    from tidegate.gotemplate.loader import RenderError
    from tidegate.gotemplate.trace import Origin, OutputTrace

# Given a settings file's path and bytes that Go's decoder rejected, the located JSON syntax
# error (the config layer owns JSON positions), or None when it has no position to offer.
JsonErrorLocator = Callable[[str, bytes], ConfigError | None]


@dataclass(frozen=True)
class FlexibleEnv:
    """The FC_* variables of an environment."""

    enabled: bool
    settings: str = ""
    partials: str = ""
    templates: str = ""
    out: str = ""

    @classmethod
    def read(cls, env: Mapping[str, str]) -> FlexibleEnv:
        # KrakenD documents that any value of FC_ENABLE, even "0", enables flexible config.
        return cls("FC_ENABLE" in env, env.get("FC_SETTINGS", ""), env.get("FC_PARTIALS", ""),
                   env.get("FC_TEMPLATES", ""), env.get("FC_OUT", ""))

    @property
    def folders(self) -> tuple[str, ...]:
        """The settings, partials and templates folders that are set."""
        return tuple(d for d in (self.settings, self.partials, self.templates) if d)


@dataclass(frozen=True)
class SourcePosition:
    """Where a part of the rendered text was written from: a template or partial file."""

    file: str
    line: int
    col: int
    action: str | None = None  # ``{{.port}}`` when the text is that action's output
    included_at: SourcePosition | None = None  # the ``include`` that wrote a partial

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class RenderedConfig:
    """The rendered configuration text and everything it was built from."""

    text: str
    source_name: str
    files: tuple[str, ...]
    watch_dirs: tuple[str, ...]
    out_path: str = ""  # FC_OUT, where the text was written
    trace: OutputTrace | None = None
    template_paths: tuple[tuple[str, str], ...] = ()  # (name in the set, file path)
    partials: str = ""

    def source_of(self, offset: int) -> SourcePosition | None:
        """The template or partial position that wrote the character at `offset` of `text`."""
        origin = self.trace.origin(offset) if self.trace is not None else None
        return self._position(origin) if origin is not None else None

    def _position(self, origin: Origin) -> SourcePosition:
        if origin.partial:
            from tidegate.gotemplate.sprig.misc import go_join

            via = self._position(origin.via) if origin.via is not None else None
            return SourcePosition(go_join(self.partials, origin.name), origin.line, origin.col,
                                  included_at=via)
        path = dict(self.template_paths).get(origin.name, origin.name)
        return SourcePosition(path, origin.line, origin.col, origin.action)


def _dedupe(items: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return tuple(seen)


def render_flexible_config(config_path: str, env: Mapping[str, str], *,
                           locate_json: JsonErrorLocator | None = None) -> RenderedConfig:
    """Render `config_path` as KrakenD does when FC_ENABLE is set; raises ConfigError.

    Template problems raise TemplateError; a settings file that is not JSON raises the error
    `locate_json` gives for it (file:line:col), or a TemplateError naming the file.
    """
    from tidegate.gotemplate.loader import RenderError, render

    fc = FlexibleEnv.read(env)
    settings, partials, templates, out = fc.settings, fc.partials, fc.templates, fc.out
    try:
        result = render(config_path, settings=settings, partials=partials, templates=templates,
                        env=env)
    except RenderError as e:
        raise _config_error(e, locate_json) from None
    if out:
        try:
            with open(out, "wb") as fh:
                fh.write(result.text.encode("utf-8", "surrogateescape"))
        except OSError as e:
            raise TemplateError(f"writing FC_OUT: {e}", file=out) from None
    dirs = list(fc.folders)
    dirs.append(os.path.dirname(os.path.abspath(config_path)))
    return RenderedConfig(text=result.text, source_name=config_path,
                          files=_dedupe(result.files), watch_dirs=_dedupe(dirs), out_path=out,
                          trace=result.trace, template_paths=tuple(result.templates.items()),
                          partials=partials)


def _config_error(e: RenderError, locate_json: JsonErrorLocator | None) -> ConfigError:
    """A settings error becomes one error per file, JSON ones with their line:col."""
    if e.kind != "settings" or locate_json is None or not e.problems:
        return TemplateError(e.message, file=e.file, line=e.line, col=e.col)
    errors: list[ConfigError] = []
    for problem in e.problems:
        located = locate_json(problem.path, problem.raw) if problem.raw is not None else None
        if located is None:
            located = TemplateError(problem.message, file=problem.path)
        located.message = f"loading flexible-config settings: {located.message}"
        errors.append(located)
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)
