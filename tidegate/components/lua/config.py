"""A ``modifier/lua-*`` section, read and checked before it serves.

The keys are krakend-lua's (``config.go``): ``sources`` (files joined with newlines into one
chunk), ``pre``, ``post``, ``live`` (re-read the sources on every request), ``allow_open_libs``,
``skip_next``, ``md5`` ({file: hex digest}). Two keys are tidegate's: ``max_instructions`` and
``max_time`` (the budget of one script run).

KrakenD logs an unreadable source and then fails every request, and switches the whole
component off on an md5 mismatch. tidegate refuses the configuration instead, located at the
key: a missing or unreadable source, a digest that does not match, a syntax error in a source
(with the file's own line) or in ``pre``/``post``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from tidegate.components.seam import JsonPath
from tidegate.config.durations import parse_duration
from tidegate.errors import ConfigErrors, ConfigValueError
from tidegate.files import read_regular

DEFAULT_MAX_INSTRUCTIONS = 100_000_000
DEFAULT_MAX_TIME = 1.0
SOURCE_LIMIT = 4 << 20


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of ``sources`` as it was read (its name as written, its text)."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class LuaConfig:
    """A parsed, checked Lua section."""

    sources: tuple[SourceFile, ...]
    pre: str
    post: str
    live: bool
    allow_open_libs: bool
    skip_next: bool
    max_instructions: int
    max_time: float


def read_source(name: str) -> str:
    """A source file's text, read relative to the working directory as KrakenD does."""
    data = read_regular(name)  # a FIFO would block the build
    if len(data) > SOURCE_LIMIT:
        raise ValueError(f"larger than {SOURCE_LIMIT >> 20} MiB")
    return data.decode("utf-8", "surrogateescape")


def joined(sources: tuple[SourceFile, ...]) -> str:
    """The sources as krakend-lua runs them: one chunk, joined with newlines."""
    return "\n".join(s.text for s in sources)


def locate_line(sources: tuple[SourceFile, ...], line: int) -> tuple[int, int]:
    """(index of the source, line within it) of a line of the joined chunk."""
    start = 1
    for i, src in enumerate(sources):
        lines = src.text.count("\n") + 1
        if line < start + lines:
            return i, line - start + 1
        start += lines
    return max(len(sources) - 1, 0), line


def _flag(raw: dict[str, Any], key: str, path: JsonPath) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigValueError(f"`{key}` must be true or false", path=(*path, key))
    return value


def _code(raw: dict[str, Any], key: str, path: JsonPath) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise ConfigValueError(f"`{key}` must be a string of Lua code", path=(*path, key))
    return value


def parse(raw: Any, path: JsonPath) -> LuaConfig:
    """The section, its sources read and checked; errors located at the key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    errors: list[ConfigValueError] = []
    names = raw.get("sources", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigValueError("`sources` must be a list of file names", path=(*path, "sources"))
    sources: list[SourceFile] = []
    for i, name in enumerate(names):
        try:
            sources.append(SourceFile(name, read_source(name)))
        except OSError as exc:
            errors.append(ConfigValueError(
                f"lua: unable to load required source {name}: {exc.strerror or exc}",
                path=(*path, "sources", i)))
        except ValueError as exc:
            errors.append(ConfigValueError(f"lua: cannot read source {name}: {exc}",
                                           path=(*path, "sources", i)))
    errors += _check_md5(raw.get("md5"), {s.name: s.text for s in sources}, path)
    if errors:
        raise ConfigErrors(errors) if len(errors) > 1 else errors[0]
    budget = raw.get("max_instructions", DEFAULT_MAX_INSTRUCTIONS)
    if type(budget) is not int or budget <= 0:
        raise ConfigValueError("`max_instructions` must be a positive integer",
                               path=(*path, "max_instructions"))
    max_time = DEFAULT_MAX_TIME
    if "max_time" in raw:
        try:
            max_time = parse_duration(raw["max_time"])
        except (TypeError, ValueError) as exc:
            raise ConfigValueError(f"`max_time`: {exc}", path=(*path, "max_time")) from None
        if max_time <= 0:
            raise ConfigValueError("`max_time` must be positive", path=(*path, "max_time"))
    cfg = LuaConfig(tuple(sources), _code(raw, "pre", path), _code(raw, "post", path),
                    _flag(raw, "live", path), _flag(raw, "allow_open_libs", path),
                    _flag(raw, "skip_next", path), budget, max_time)
    check_syntax(cfg, path)
    return cfg


def _check_md5(raw: Any, texts: dict[str, str], path: JsonPath) -> list[ConfigValueError]:
    """krakend-lua's checksum check: a file named in ``md5`` but not in ``sources`` has empty
    content, as in KrakenD."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [ConfigValueError("`md5` must be an object of file name -> md5 hex digest",
                                 path=(*path, "md5"))]
    errors = []
    for name, want in raw.items():
        if not isinstance(want, str):
            errors.append(ConfigValueError(f"lua: wrong cheksum type for source {name}",
                                           path=(*path, "md5", name)))
            continue
        text = texts.get(name, "")
        have = hashlib.md5(text.encode("utf-8", "surrogateescape"),
                           usedforsecurity=False).hexdigest()
        if have != want:
            errors.append(ConfigValueError(
                f"lua: wrong cheksum for source {name}. have: {have}, want: {want}",
                path=(*path, "md5", name)))
    return errors


def check_syntax(cfg: LuaConfig, path: JsonPath) -> None:
    """Compile the sources, ``pre`` and ``post`` once; a syntax error is located at the
    source (with its own line) or at the key."""
    from tidegate.components.lua.pool import checker

    lua = checker()
    if cfg.sources:
        try:
            lua.compile("sources", joined(cfg.sources))
        except SyntaxError as exc:
            index, msg = describe_source_error(cfg.sources, str(exc))
            raise ConfigValueError(f"Lua syntax error: {msg}",
                                   path=(*path, "sources", index)) from None
    for key in ("pre", "post"):
        code = getattr(cfg, key)
        if code:
            try:
                lua.compile(f"{key}-script", code)
            except SyntaxError as exc:
                raise ConfigValueError(f"Lua syntax error: {exc}", path=(*path, key)) from None


def describe_source_error(sources: tuple[SourceFile, ...], msg: str) -> tuple[int, str]:
    """(source index, message) of an error of the joined chunk: ``sources:12: x`` becomes
    ``file.lua:3: x``."""
    prefix = "sources:"
    if msg.startswith(prefix):
        line_text, _, rest = msg[len(prefix):].partition(":")
        if line_text.isdigit():
            index, line = locate_line(sources, int(line_text))
            return index, f"{sources[index].name}:{line}:{rest}"
    return 0, msg


def source_names(raw: Any) -> list[tuple[JsonPath, str]]:
    """(key path, file name) of every source a section names (what ``--watch`` follows)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        return []
    return [(("sources", i), n) for i, n in enumerate(raw["sources"]) if isinstance(n, str)]


def resolve(name: str) -> str:
    """The absolute path of a source (relative to the working directory)."""
    return os.path.abspath(name)
