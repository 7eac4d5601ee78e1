"""TOML sources, decoded with the standard library's tomllib.

Dates and times become the ISO 8601 strings Python writes for them (KrakenD has no date-typed
setting; strings are what its weakly typed decoding would accept). tomllib keeps no positions,
so locations come from a line scanner that understands ``[table]`` and ``[[array]]`` headers and
``key = value`` lines (dotted and quoted keys included): values written inside inline tables or
arrays are located at their enclosing key.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from typing import Any

from tidegate.config.sources import IndexBuilder, PositionIndex, syntax_error
from tidegate.errors import ConfigSyntaxError, JsonPath, PathPart

_WHERE = re.compile(r"^(.*) \(at (?:line (\d+), column (\d+)|end of document)\)$", re.S)


def parse(text: str, file: str) -> tuple[Any, IndexBuilder]:
    """Decode TOML; tomllib's message already says what was expected."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(exc), file, text) from None
    return _plain(data), lambda: _positions(text)


def _syntax_error(message: str, file: str, text: str) -> ConfigSyntaxError:
    m = _WHERE.match(message)
    if m is None:
        return ConfigSyntaxError(f"invalid TOML: {message}", file=file)
    what, line, col = m.groups()
    if line is None:  # at end of document: point just past the last character
        lines = text.split("\n")
        line_no, col_no = len(lines), len(lines[-1]) + 1
    else:
        line_no, col_no = int(line), int(col)
    return syntax_error(f"invalid TOML: {what[:1].lower()}{what[1:]}", file, text, line_no, col_no)


def _plain(value: Any) -> Any:
    """Replace date/time values by their ISO strings, leaving everything else as decoded."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- positions

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_KEY_PART = re.compile(rf"\s*({_BARE}|{_BASIC}|{_LITERAL})\s*")
_HEADER = re.compile(r"\s*(\[\[?)")


def _parse_key(line: str, pos: int) -> tuple[list[str], int] | None:
    """A dotted key starting at `pos`: its parts and the offset just after it."""
    parts: list[str] = []
    while True:
        m = _KEY_PART.match(line, pos)
        if m is None:
            return None
        raw = m.group(1)
        if raw[0] == '"':
            try:
                raw = tomllib.loads(f"k = {raw}")["k"]
            except tomllib.TOMLDecodeError:
                return None
        elif raw[0] == "'":
            raw = raw[1:-1]
        parts.append(raw)
        pos = m.end()
        if pos < len(line) and line[pos] == ".":
            pos += 1
            continue
        return parts, pos


def _positions(text: str) -> PositionIndex:
    """Positions of keys and table headers, following array-of-tables indices."""
    index: PositionIndex = {}
    last_element: dict[JsonPath, int] = {}  # array of tables -> index of its current element
    table: JsonPath = ()
    depth = 0  # bracket nesting of a multi-line inline array/table being skipped
    in_multiline: str | None = None

    def resolve(parts: list[str], base: JsonPath = ()) -> JsonPath:
        path: tuple[PathPart, ...] = base
        for part in parts:
            path = (*path, part)
            if path in last_element:
                path = (*path, last_element[path])
        return path

    for number, line in enumerate(text.split("\n"), start=1):
        if in_multiline is not None:  # inside a multi-line string: only look for its end
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        stripped = line.lstrip()
        if not stripped or stripped[0] == "#":
            continue
        col = len(line) - len(stripped) + 1
        header = _HEADER.match(line)
        if header is not None:
            double = header.group(1) == "[["
            key = _parse_key(line, header.end())
            if key is None:
                continue
            parts = key[0]
            if double:
                parent = resolve(parts[:-1])
                array = (*parent, parts[-1])
                last_element[array] = last_element.get(array, -1) + 1
                index.setdefault(array, (number, col))
                table = (*array, last_element[array])
            else:
                table = resolve(parts)
            index[table] = (number, col)
            continue
        key = _parse_key(line, 0)
        if key is None or key[1] >= len(line) or line[key[1]] != "=":
            continue
        path = resolve(key[0], table)
        value_at = len(line) - len(line[key[1] + 1:].lstrip())
        index[path] = (number, value_at + 1)
        rest = line[value_at:]
        for quotes in ('"""', "'''"):
            if rest.startswith(quotes) and rest.count(quotes) == 1:
                in_multiline = quotes
        if in_multiline is None and rest[:1] in "[{":
            depth = max(0, _bracket_balance(rest))
    return index


def _bracket_balance(line: str) -> int:
    """Opened minus closed brackets outside strings and comments (good enough for locating)."""
    line = re.sub(rf"{_BASIC}|{_LITERAL}", "", line).split("#", 1)[0]
    return line.count("[") + line.count("{") - line.count("]") - line.count("}")
