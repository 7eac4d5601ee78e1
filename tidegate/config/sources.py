"""Read a KrakenD configuration file, in any format KrakenD accepts, into plain Python data.

The format comes from the file extension, as KrakenD decides it: ``.json``, ``.yaml``/``.yml``,
``.toml``, ``.hcl`` and ``.properties``/``.props``/``.prop``. Every format decodes to the same
JSON-like data (dicts with string keys, lists, str, int, float, bool, None) so the layers above
never care where a value came from.

Positions are needed only to report an error, so they are computed lazily: parsing a large
configuration on every hot reload costs what the format's decoder costs and nothing more.
What :meth:`Document.locate` knows, by format:

* JSON: every value, exactly (a walk along the asked path; see :class:`JsonLocator`);
* YAML: every node, from the composed node tree (merged keys at the place they were written);
* HCL: every attribute, block, label and collection element, from the parse tree;
* TOML: table headers and ``key = value`` lines; values inside inline tables or arrays are
  located at their key (tomllib keeps no positions, a line scanner stands in);
* properties: every key, where its line starts.

Columns count characters, not bytes. The sibling modules ``sources_<format>`` hold the
non-JSON decoders and say where they follow KrakenD's Go decoders.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidegate.errors import ConfigIOError, ConfigSyntaxError, JsonPath, PathPart
from tidegate.files import read_regular
from tidegate.golang.json_values import replace_surrogates

# A position is 1-based (line, column), the column counted in characters.
Position = tuple[int, int]
PositionIndex = dict[JsonPath, Position]
IndexBuilder = Callable[[], PositionIndex]

EXTENSIONS: dict[str, str] = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".hcl": "hcl",
    ".properties": "properties",
    ".props": "properties",
    ".prop": "properties",
}
FORMATS = frozenset(EXTENSIONS.values())


class Locator(Protocol):
    """Where a value was written: its own position, or that of its nearest located ancestor."""

    def find(self, path: JsonPath) -> Position | None: ...


class IndexLocator:
    """Builds a whole position index once, on first use, even when errors come from threads."""

    __slots__ = ("_builder", "_index", "_lock")

    def __init__(self, builder: IndexBuilder | None) -> None:
        self._builder = builder
        self._index: PositionIndex | None = None if builder is not None else {}
        self._lock = threading.Lock()

    def find(self, path: JsonPath) -> Position | None:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None and self._builder is not None:
                    try:
                        self._index = self._builder()
                    except Exception:
                        # Locations are a courtesy for error messages; never fail because of them.
                        self._index = {}
                    self._builder = None  # drop the reference to the source text
                index = self._index or {}
        for end in range(len(path), -1, -1):
            pos = index.get(path[:end])
            if pos is not None:
                return pos
        return None


@dataclass(frozen=True)
class Document:
    """A decoded configuration file, able to say where each value was written."""

    data: Any
    file: str
    fmt: str
    _locator: Locator = field(
        default_factory=lambda: IndexLocator(None), repr=False, compare=False
    )

    def locate(self, path: JsonPath) -> Position | None:
        """1-based (line, col) of the value at this JSON path, or of its nearest located ancestor;
        None if unknown."""
        try:
            return self._locator.find(tuple(path))
        except Exception:
            return None  # a position is a courtesy: an error report must not fail for want of it


def format_for(path: str) -> str:
    """The format KrakenD would parse this file as, from its extension."""
    ext = os.path.splitext(path)[1].lower()
    fmt = EXTENSIONS.get(ext)
    if fmt is None:
        supported = ", ".join(EXTENSIONS)
        shown = f"'{ext}'" if ext else "no extension"
        raise ConfigSyntaxError(
            f"unsupported configuration format ({shown}): use one of {supported}", file=path
        )
    return fmt


def parse_text(text: str, file: str, fmt: str | None = None) -> Document:
    """Decode configuration text; `file` names it in errors and, without `fmt`, picks the format."""
    if fmt is None:
        fmt = format_for(file)
    elif fmt not in FORMATS:
        raise ConfigSyntaxError(
            f"unknown configuration format {fmt!r}: use one of {', '.join(sorted(FORMATS))}",
            file=file,
        )
    if text.startswith("\ufeff"):
        text = text[1:]  # editors on Windows add a BOM; it is not part of the configuration
    locator: Locator
    if fmt == "json":
        data, locator = _parse_json(text, file)
    else:
        # Imported on demand: the HCL grammar alone costs a noticeable start-up time.
        module = importlib.import_module(f"tidegate.config.sources_{fmt}")
        try:
            data, builder = module.parse(text, file)
        except RecursionError:
            raise ConfigSyntaxError(f"the {fmt} nests deeper than {MAX_DEPTH} levels",
                                    file=file) from None
        except ValueError as exc:
            # Python refuses to convert integer literals of more than 4,300 digits.
            reason = ("integer out of range (a literal of thousands of digits)"
                      if "integer string conversion" in str(exc) else str(exc))
            raise ConfigSyntaxError(f"invalid {fmt}: {reason}", file=file) from None
        locator = IndexLocator(builder)
    if not isinstance(data, dict):
        raise ConfigSyntaxError(
            f"the top level of a configuration must be an object, not {describe(data)}",
            file=file, line=1, col=1,
        )
    if _MAY_HOLD_SURROGATES.search(text):
        data = replace_surrogates(data)
    doc = Document(data=data, file=file, fmt=fmt, _locator=locator)
    _check_limits(doc)
    return doc


# A lone surrogate escape ("\ud800") or an undecodable byte of a rendered template (kept as a
# surrogate) cannot be encoded as UTF-8, so no hash or message could carry it; Go's decoders
# read both as U+FFFD.
_MAY_HOLD_SURROGATES = re.compile(r"[\ud800-\udfff]|\\[uU]0*[dD][89a-fA-F]")


def load_file(path: str) -> Document:
    """Read and decode a configuration file; unreadable files raise ConfigIOError."""
    fmt = format_for(path)
    try:
        raw = read_regular(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigIOError(f"cannot read the configuration: {reason}", file=path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start].decode("utf-8", "replace")
        line, col = line_col(head, len(head))
        raise ConfigSyntaxError(
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            file=path, line=line, col=col,
        ) from exc
    return parse_text(text, path, fmt)


# --------------------------------------------------------------------------- limits

# Deeper nesting is refused where the file is read. The configuration travels to the workers
# as JSON inside a message, and orjson (hashes, worker messages) stops at 254 levels; real
# configurations nest about ten deep. 200 leaves room and fails early, with a position.
MAX_DEPTH = 200
# What the configuration's JSON encoder can carry (Go's int64 and uint64 together).
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class _HugeInt(str):
    """A JSON integer literal too long to convert (Python refuses over 4,300 digits)."""


def _json_int(literal: str) -> int | _HugeInt:
    # 20 digits and a sign are enough for anything in range; longer ones are reported by
    # _check_limits with their position, instead of raising from inside the decoder.
    return int(literal) if len(literal) <= 21 else _HugeInt(literal)


def _check_limits(doc: Document) -> None:
    """Refuse, with a position, values no later stage can carry: too deep, too big."""
    found = _first_beyond_limits(doc.data)
    if found is None:
        return
    path, problem = found
    pos = doc.locate(path)
    line, col = pos if pos is not None else (None, None)
    if len(path) > 8:  # a path 200 levels long helps nobody: the position says where
        path = ()
    raise ConfigSyntaxError(problem, file=doc.file, line=line, col=col, path=path)


def _first_beyond_limits(data: Any) -> tuple[JsonPath, str] | None:
    """(path, problem) of the first value nested too deep or out of range; iterative."""
    stack: list[tuple[Any, JsonPath]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            kind = type(child)
            if kind is dict or kind is list or isinstance(child, dict | list):
                if len(path) + 2 > MAX_DEPTH:  # the root is level 1
                    return (*path, key), f"nested deeper than {MAX_DEPTH} levels"
                stack.append((child, (*path, key)))
            elif kind is int:
                if not INT_MIN <= child <= INT_MAX:
                    return (*path, key), f"integer out of range: {_shorten(str(child))}"
            elif kind is _HugeInt:
                return (*path, key), f"integer out of range: {_shorten(child)}"
            elif kind is float and not math.isfinite(child):
                return (*path, key), "number out of range"
    return None


def _shorten(digits: str) -> str:
    return digits if len(digits) <= 40 else f"{digits[:12]}…{digits[-6:]} ({len(digits)} digits)"


# --------------------------------------------------------------------------- shared helpers


def describe(value: Any) -> str:
    """A value's kind as users of JSON name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def line_col(text: str, offset: int) -> Position:
    """1-based (line, column) of a character offset; counting runs in C, fast enough for errors."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def excerpt(text: str, line: int, col: int, width: int = 60) -> str:
    """The offending line around `col`, trimmed, so a message can be read without an editor."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].rstrip("\r")
    start = max(0, min(col - 1 - width // 2, len(src) - width))
    snippet = src[start:start + width].strip()
    if not snippet:
        return ""
    if start > 0:
        snippet = "…" + snippet
    if start + width < len(src):
        snippet += "…"
    return snippet


def syntax_error(message: str, file: str, text: str, line: int, col: int) -> ConfigSyntaxError:
    """A ConfigSyntaxError whose message quotes the offending line."""
    near = excerpt(text, line, col)
    if near:
        message = f"{message}, near `{near}`"
    return ConfigSyntaxError(message, file=file, line=line, col=col)


# --------------------------------------------------------------------------- JSON


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.S)


def _parse_json(text: str, file: str) -> tuple[Any, Locator]:
    """json.loads, with Go's strictness on NaN/Infinity and positioned errors."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_json_int)
    except RecursionError:
        line, col = _json_depth_position(text)
        raise syntax_error(
            f"invalid JSON: nested deeper than {MAX_DEPTH} levels", file, text, line, col
        ) from None
    except json.JSONDecodeError as exc:
        raise syntax_error(
            f"invalid JSON: {exc.msg}", file, text, exc.lineno, exc.colno
        ) from None
    except _NonStandardConstant as exc:
        offset = 0
        for m in _STRING_OR_CONSTANT.finditer(text):
            if m.group(1):
                offset = m.start()
                break
        line, col = line_col(text, offset)
        raise syntax_error(
            f"invalid JSON: {exc.args[0]} is not a JSON value", file, text, line, col
        ) from None
    return data, JsonLocator(text)


_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def _json_depth_position(text: str) -> Position:
    """Where the JSON first opens a container deeper than MAX_DEPTH (only after a failure)."""
    depth = 0
    for m in _BRACKET_OR_STRING.finditer(text):
        char = m.group()
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line_col(text, m.start())
        elif char in "]}":
            depth -= 1
    return 1, 1


_WS = re.compile(r"[ \t\n\r]*")
_KEY = re.compile(r'[ \t\n\r]*"((?:[^"\\]|\\.)*)"[ \t\n\r]*:[ \t\n\r]*', re.S)
_DECODER = json.JSONDecoder(parse_int=_json_int)


class JsonLocator:
    """Finds value offsets in a valid JSON text by walking only along the requested path.

    Sibling values are skipped with the C decoder (``raw_decode``), so a lookup costs about one
    decode of the enclosing containers instead of a Python-level scan of the whole file; the
    children of each container walked are cached for later lookups.
    """

    __slots__ = ("_children", "_root", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._root = _WS.match(text).end()
        self._children: dict[JsonPath, dict[PathPart, int]] = {}

    def find(self, path: JsonPath) -> Position | None:
        offset = self._root
        for depth, part in enumerate(path):
            children = self._children.get(path[:depth])
            if children is None:
                children = self._scan(offset)
                self._children[path[:depth]] = children
            child = children.get(part)
            if child is None:
                break
            offset = child
        return line_col(self._text, offset)

    def _scan(self, offset: int) -> dict[PathPart, int]:
        """Offsets of the direct children of the container starting at `offset` (last key wins)."""
        text = self._text
        opener = text[offset]
        out: dict[PathPart, int] = {}
        if opener not in "{[":
            return out
        pos = _WS.match(text, offset + 1).end()
        closer = "}" if opener == "{" else "]"
        i = 0
        while text[pos] != closer:
            if opener == "{":
                m = _KEY.match(text, pos)
                if m is None:
                    return out
                raw = m.group(1)
                key: PathPart = json.loads(f'"{raw}"') if "\\" in raw else raw
                pos = m.end()
            else:
                key = i
                i += 1
            out[key] = pos
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()
            if text[pos] == ",":
                pos = _WS.match(text, pos + 1).end()
        return out
