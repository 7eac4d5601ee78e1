"""Typed errors. Library code raises these; only `tidegate.cli` turns them into exit codes.

A configuration error always says *where*: a file with line:column for syntax errors, a JSON
path (``endpoints[3].backend[0].url_pattern``) for a bad value, or both when the position of
that value in the file is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PathPart = str | int
JsonPath = tuple[PathPart, ...]


def format_path(path: Iterable[PathPart]) -> str:
    """Render a JSON path the way users read it: ``endpoints[3].backend[0].url_pattern``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif not out:
            out.append(part)
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            # Namespaces such as "qos/ratelimit/router" are not identifiers: quote them.
            out.append(f'["{part}"]')
    return "".join(out)


class TidegateError(Exception):
    """Base of every error tidegate raises on purpose."""


class ConfigError(TidegateError):
    """A configuration that cannot be served, with the place it went wrong."""

    kind = "config"
    # Files the configuration names (certificates, keys), known even when it is refused: a
    # watcher follows them, so creating a missing certificate reloads.
    named_files: tuple[str, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        path: Sequence[PathPart] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.path: JsonPath = tuple(path) if path is not None else ()

    @property
    def location(self) -> str:
        """``file:line:col`` (as much of it as is known) followed by the JSON path."""
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
        if self.path:
            where = f"{where}: {format_path(self.path)}" if where else format_path(self.path)
        return where

    def __str__(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form, for `/__health` and machine-readable output."""
        return {
            "kind": self.kind,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": format_path(self.path) if self.path else None,
            "error": str(self),
        }


class ConfigSyntaxError(ConfigError):
    """The file cannot be parsed in its format (JSON, YAML, TOML, HCL, properties)."""

    kind = "syntax"


class ConfigValueError(ConfigError):
    """The file parses, but a value is missing, of the wrong type or inconsistent."""

    kind = "value"


class ConfigIOError(ConfigError):
    """The file (or a file it refers to) cannot be read."""

    kind = "io"


class ConfigBuildError(ConfigError):
    """Building the configuration failed in an unforeseen way, or took longer than allowed.

    Nothing was checked past that point, so it is reported alone, like a syntax error.
    """

    kind = "build"


class TemplateError(ConfigError):
    """Flexible configuration could not be rendered (template parse or execution error)."""

    kind = "template"


class ConfigErrors(ConfigError):
    """Several independent problems found in one pass; reported together, one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, col=first.col,
                         path=first.path)
        self.errors = list(errors)
        self.kind = first.kind

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
