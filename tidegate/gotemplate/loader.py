"""Reads a flexible-config tree (settings, templates, partials) the way KrakenD does and renders it.

Mirrors krakend-flexibleconfig's TemplateParser: every top-level ``*.json`` of the settings dir
becomes a value named by its basename, every top-level ``*.tmpl`` of the templates dir joins the
template set, the base file is parsed under its basename and executed.  Errors carry the kind
used by the engine contract (settings, data, io, parse, exec).
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidegate.files import read_regular
from tidegate.golang import json_values

from .exec import ExecError
from .funcdef import GoFunc
from .funcs import krakend_funcs
from .parse import ParseError
from .template import TemplateSet
from .trace import OutputTrace


@dataclass(frozen=True)
class SettingsProblem:
    """One settings file (or folder) that could not be loaded; `raw` holds a file's bytes when
    they are not a JSON object, so a caller can locate the syntax error."""

    path: str
    message: str
    raw: bytes | None = None


class RenderError(Exception):
    """A failed render: `kind` is settings/data/io/parse/exec, `message` is Go's text.

    A settings error lists its causes one by one in `problems`.
    """

    def __init__(self, kind: str, message: str, file: str | None = None,
                 line: int | None = None, col: int | None = None,
                 problems: tuple[SettingsProblem, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.problems = problems


@dataclass
class RenderResult:
    """The output plus every file and directory the render looked at.

    `trace` says which template text wrote each part of the output; `templates` maps the
    name of each template file in the set (its basename) to its path.
    """

    text: str
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    trace: OutputTrace | None = None
    templates: dict[str, str] = field(default_factory=dict)


def go_errno_text(e: OSError) -> str:
    """syscall.Errno's text (lower-case libc message)."""
    if e.errno is None:
        return str(e)
    msg = os.strerror(e.errno)
    if e.errno == _errno.ENOENT:
        return "no such file or directory"
    return msg[:1].lower() + msg[1:]


def _read_file(path: str) -> bytes:
    """os.ReadFile with Go's error texts."""
    try:
        return read_regular(path)
    except IsADirectoryError as e:
        raise OSError(f"read {path}: {go_errno_text(e)}") from None
    except OSError as e:
        if e.errno is None:
            raise
        raise OSError(f"open {path}: {go_errno_text(e)}") from None


def _read_dir(path: str) -> list[os.DirEntry[str]]:
    """os.ReadDir (sorted by name) with Go's error texts."""
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except NotADirectoryError as e:
        raise OSError(f"readdirent {path}: {go_errno_text(e)}") from None
    except OSError as e:
        raise OSError(f"open {path}: {go_errno_text(e)}") from None
    entries.sort(key=lambda d: d.name.encode("utf-8", "surrogateescape"))
    return entries


def _join(a: str, b: str) -> str:
    return os.path.normpath(os.path.join(a, b)) if a else os.path.normpath(b)


def load_settings(settings: str, templates: str, result: RenderResult
                  ) -> tuple[dict[str, Any], list[str]]:
    """NewTemplateParser: settings values and template file list, or a settings error."""
    values: dict[str, Any] = {}
    tmpls: list[str] = []
    errs: dict[str, SettingsProblem] = {}
    if settings:
        result.dirs.append(settings)
        try:
            entries = _read_dir(settings)
        except OSError as e:
            errs[settings] = SettingsProblem(settings, str(e))
            entries = []
        for ent in entries:
            if not ent.name.endswith(".json"):
                continue
            path = _join(settings, ent.name)
            result.files.append(path)
            try:
                raw = _read_file(path)
            except OSError as e:
                errs[ent.name] = SettingsProblem(path, str(e))
                continue
            try:
                values[ent.name[: -len(".json")]] = json_values.decode_object(raw)
            except json_values.JSONError as e:
                errs[ent.name] = SettingsProblem(path, str(e), raw)
    if templates:
        result.dirs.append(templates)
        try:
            entries = _read_dir(templates)
        except OSError as e:
            errs[templates] = SettingsProblem(templates, str(e))
            entries = []
        for ent in entries:
            if ent.name.endswith(".tmpl"):
                tmpls.append(_join(templates, ent.name))
    if errs:
        keys = sorted(errs, key=lambda s: s.encode())
        lines = [f"\t- {k}: {errs[k].message}" for k in keys]
        raise RenderError("settings", "loading flexible-config settings:\n" + "\n".join(lines),
                          file=settings or templates, problems=tuple(errs[k] for k in keys))
    return values, tmpls


def render(base: str, *, settings: str = "", partials: str = "", templates: str = "",
           data_file: str | None = None, env: Mapping[str, str] | None = None,
           funcs: dict[str, GoFunc] | None = None) -> RenderResult:
    """Render the base template file; raises RenderError."""
    result = RenderResult("")
    values, tmpls = load_settings(settings, templates, result)
    data: Any = values
    if data_file is not None:
        result.files.append(data_file)
        try:
            data = json_values.decode(_read_file(data_file))
        except OSError as e:
            raise RenderError("data", str(e), file=data_file) from None
        except json_values.JSONError as e:
            raise RenderError("data", str(e), file=data_file) from None
    if partials:
        result.dirs.append(partials)
    if funcs is None:
        funcs = krakend_funcs(partials, result.files, env)
    tset = TemplateSet(funcs)
    name = os.path.basename(base)
    for path in [base, *tmpls]:
        result.files.append(path)
        result.templates[os.path.basename(path)] = path
        try:
            text = _read_file(path).decode("utf-8", "surrogateescape")
        except OSError as e:
            raise RenderError("io", str(e), file=path) from None
        try:
            tset.parse(os.path.basename(path), text)
        except ParseError as e:
            raise RenderError("parse", e.message, file=path, line=e.line) from None
    try:
        result.text, result.trace = tset.execute_traced(name, data)
    except ExecError as e:
        where = _file_for(e.name, base, tmpls)
        raise RenderError("exec", e.message, file=where, line=e.line, col=e.col) from None
    except RecursionError:
        raise RenderError("exec", f"template: {name}: exceeded maximum template depth",
                          file=base) from None
    return result


def _file_for(parse_name: str, base: str, tmpls: list[str]) -> str:
    for p in [*tmpls, base]:
        if os.path.basename(p) == parse_name:
            return p
    return base
