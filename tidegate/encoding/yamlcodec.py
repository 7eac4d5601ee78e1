"""YAML as gin renders it (goccy/go-yaml ``Marshal``) for ``yaml`` and negotiated output.

Block style, two-space indent, map keys sorted, sequences not indented under their key,
strings quoted (Go ``strconv.Quote``) only when YAML would read them as something else.
Numbers: a backend number is a Go ``json.Number``, a string to the YAML encoder, so it comes
out quoted (``"42"``); a float from elsewhere keeps a ``.0`` (``2.0``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from tidegate.golang.floats import format_v
from tidegate.golang.json_wire import GoNumber

__all__ = ["dumps_yaml"]

_RESERVED = frozenset((
    "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
    "on", "On", "ON", "off", "Off", "OFF"))
_QUOTE_FIRST = frozenset("*&[{}],!|>%'\"@ `")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})"
    r"| \d{2}:\d{2}:\d{2})?\Z|\d{1,2}:\d{1,2}\Z")
_DEC = re.compile(r"[0-9]+\Z")
_FLOAT = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
_PREFIXED = {"0x": re.compile(r"[0-9a-fA-F]+\Z"), "0o": re.compile(r"[0-7]+\Z"),
             "0b": re.compile(r"[01]+\Z")}


def _is_number(value: str) -> bool:
    """goccy's token.IsNumber: what its parser would read back as a number."""
    if not value or value.startswith("_") or value.count(".") > 1:
        return False
    text = value[1:] if value[0] in "+-" else value
    text = text.replace("_", "")
    for prefix, pattern in _PREFIXED.items():
        if text.startswith(prefix):
            return bool(pattern.match(text[2:]))
    if text.startswith("0") and len(text) > 1 and "." not in value:
        return bool(re.match(r"[0-7]+\Z", text))
    if "." in value:
        return bool(_FLOAT.match(text)) or text.lower() in ("inf", "infinity", "nan")
    return bool(_DEC.match(text))


def _needs_quote(value: str) -> bool:
    if value == "" or value in _RESERVED or value == "-" or _is_number(value):
        return True
    if value[0] in _QUOTE_FIRST or value[-1] in ": ":
        return True
    if _TIMESTAMP.match(value):
        return True
    return "#" in value or "\\" in value or ": " in value or "- " in value


def _go_quote(value: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code & 0xFF:02x}" if code >= 0xDC80 else "\\ufffd")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _string(value: str, indent: int) -> str:
    if _needs_quote(value):
        return _go_quote(value)
    if "\n" in value or "\r" in value:
        lbc = "\r\n" if "\r\n" in value else ("\r" if "\n" not in value else "\n")
        header = "|+" if value.endswith(lbc * 2) else "|" if value.endswith(lbc) else "|-"
        pad = " " * (indent + 2)
        lines = value.split(lbc)
        if value.endswith(lbc):
            lines = lines[:-1]
        return header + lbc + lbc.join(pad + line if line else "" for line in lines)
    if value[0] in "{[":
        return f"'{value}'"
    return value


def _scalar(value: Any, indent: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, GoNumber):
        return _go_quote(value.literal)
    if isinstance(value, int):
        return _go_quote(str(value))
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = format_v(value)
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, str):
        return _string(value, indent)
    return _string(str(value), indent)


def _key(key: Any) -> str:
    text = str(key)
    return _go_quote(text) if _needs_quote(text) else text


def _emit_map(value: dict[str, Any], indent: int, out: list[str], first_inline: bool) -> None:
    pad = " " * indent
    for i, key in enumerate(sorted(value, key=str)):
        prefix = "" if (i == 0 and first_inline) else pad
        _emit_entry(prefix + _key(key) + ":", value[key], indent, out)


def _emit_entry(head: str, value: Any, indent: int, out: list[str]) -> None:
    if isinstance(value, dict) and value:
        out.append(head + "\n")
        _emit_map(value, indent + 2, out, False)
    elif isinstance(value, list) and value:
        out.append(head + "\n")
        _emit_seq(value, indent, out, False)
    else:
        out.append(head + " " + _inline(value, indent) + "\n")


def _emit_seq(value: list[Any], indent: int, out: list[str], first_inline: bool) -> None:
    pad = " " * indent
    for i, item in enumerate(value):
        prefix = ("" if (i == 0 and first_inline) else pad) + "- "
        if isinstance(item, dict) and item:
            out.append(prefix)
            _emit_map(item, indent + 2, out, True)
        elif isinstance(item, list) and item:
            out.append(prefix)
            _emit_seq(item, indent + 2, out, True)
        else:
            out.append(prefix + _inline(item, indent) + "\n")


def _inline(value: Any, indent: int) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value, indent)


def dumps_yaml(data: Any) -> bytes:
    """goccy/go-yaml Marshal of the response data (a nil map writes ``{}``)."""
    out: list[str] = []
    if isinstance(data, dict) and data:
        _emit_map(data, 0, out, False)
    elif isinstance(data, list) and data:
        _emit_seq(data, 0, out, False)
    else:
        out.append(_inline({} if data is None else data, 0) + "\n")
    return "".join(out).encode("utf-8", "surrogateescape")
