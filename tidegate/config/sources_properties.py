"""Java ``.properties`` sources, read as KrakenD's viper-based loader read them.

The syntax is java.util.Properties' (as implemented by magiconair/properties, which viper uses):
``#`` and ``!`` comment lines; the key ends at the first unescaped ``=``, ``:`` or white space;
a line ending in an odd number of backslashes continues on the next one, whose leading white
space is dropped; ``\\t \\n \\r \\f \\uXXXX`` escapes, any other escaped character is itself.
``${key}`` in a value expands to that key's (expanded) value, else to the environment variable of
that name, else to nothing; circular references are errors.

As viper does, a dotted key becomes nested objects (``extra_config.x.y = 1`` is
``{"extra_config": {"x": {"y": "1"}}}``), a later key replaces an earlier value in its way, and
every value is a string: the format has no numbers, booleans or lists, so typed settings rely on
the model's weak conversion, as KrakenD's decoder does. Unlike viper, key case is kept (KrakenD
2.12+ no longer lowercases keys). Every key is located at the line and column where it starts.
"""

from __future__ import annotations

import os
from typing import Any

from tidegate.config.sources import IndexBuilder, Position, PositionIndex, syntax_error

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_WHITE = " \t\f"
_MAX_DEPTH = 64


def parse(text: str, file: str) -> tuple[Any, IndexBuilder]:
    """Decode properties into nested objects of strings, with a position for every key."""
    raw: dict[str, str] = {}  # in the order keys first appear, with the last value written
    where: dict[str, Position] = {}
    for key, value, pos in _entries(text, file):
        raw[key] = value
        where[key] = pos
    data: dict[str, Any] = {}
    index: PositionIndex = {(): (1, 1)}
    for key, value in raw.items():
        pos = where[key]
        try:
            expanded = _expand(value, (key,), raw)
        except ValueError as exc:
            raise syntax_error(f"invalid properties: {exc}", file, text, *pos) from None
        path = key.split(".")
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):  # a value in the way is replaced, as viper does
                child = node[part] = {}
                index.setdefault(tuple(path[: i + 1]), pos)
            node = child
        node[path[-1]] = expanded
        index[tuple(path)] = pos
    return data, lambda: index


def _entries(text: str, file: str) -> list[tuple[str, str, Position]]:
    """Logical lines split into (key, value), unescaped, with the position of each key."""
    out: list[tuple[str, str, Position]] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        line_no = i + 1
        line = lines[i]
        i += 1
        start = len(line) - len(line.lstrip(_WHITE))
        if start == len(line) or line[start] in "#!":
            continue
        logical = line[start:]
        while _continues(logical) and i < len(lines):
            logical = logical[:-1] + lines[i].lstrip(_WHITE)
            i += 1
        if _continues(logical):  # a continuation at the end of the file continues into nothing
            logical = logical[:-1]
        key_end = _key_end(logical)
        rest = logical[key_end:].lstrip(_WHITE)
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(_WHITE)
        pos = (line_no, start + 1)
        try:
            key = _unescape(logical[:key_end])
            value = _unescape(rest)
        except ValueError as exc:
            raise syntax_error(f"invalid properties: {exc}", file, text, *pos) from None
        out.append((key, value, pos))
    return out


def _continues(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _key_end(line: str) -> int:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=:" or ch in _WHITE:
            return i
        i += 1
    return len(line)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"invalid unicode escape \\u{digits}")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _expand(value: str, keys: tuple[str, ...], raw: dict[str, str]) -> str:
    """magiconair/properties' ``${key}`` expansion: keys, then the environment, then empty."""
    if len(keys) > _MAX_DEPTH:
        raise ValueError("expansion too deep")
    out: list[str] = []
    pos = 0
    while True:
        start = value.find("${", pos)
        if start == -1:
            out.append(value[pos:])
            return "".join(out)
        end = value.find("}", start + 2)
        if end == -1:
            raise ValueError(f"malformed expression {value[start:]!r}: missing '}}'")
        name = value[start + 2 : end]
        if name in keys:
            raise ValueError(f"circular reference: {' -> '.join((*keys, name))}")
        replacement = raw.get(name)
        if replacement is None:
            replacement = os.environ.get(name, "")
        out.append(value[pos:start])
        out.append(_expand(replacement, (*keys, name), raw))
        pos = end + 1
