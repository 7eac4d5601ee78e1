"""Go literal syntax: strconv.Unquote, UnquoteChar and the number rules of parse.newNumber."""

from __future__ import annotations

import re

_SIMPLE_ESC = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


class LiteralError(ValueError):
    """Go's strconv error text (``invalid syntax``) or the parser's own message."""


def unquote_char(s: str, i: int, quote: str) -> tuple[bytes, int]:
    """strconv.UnquoteChar at s[i]: the bytes of one (possibly escaped) char and the next index."""
    c = s[i]
    if c == quote and quote in "'\"":
        raise LiteralError("invalid syntax")
    if c != "\\":
        return c.encode("utf-8", "surrogateescape"), i + 1
    if i + 1 >= len(s):
        raise LiteralError("invalid syntax")
    c = s[i + 1]
    i += 2
    if c in _SIMPLE_ESC:
        return bytes([_SIMPLE_ESC[c]]), i
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        h = s[i:i + n]
        if len(h) < n or not all(ch in "0123456789abcdefABCDEF" for ch in h):
            raise LiteralError("invalid syntax")
        v = int(h, 16)
        i += n
        if c == "x":
            return bytes([v]), i
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise LiteralError("invalid syntax")
        return chr(v).encode("utf-8"), i
    if c in "01234567":
        o = s[i - 1:i + 2]
        if len(o) < 3 or not all(ch in "01234567" for ch in o):
            raise LiteralError("invalid syntax")
        v = int(o, 8)
        if v > 255:
            raise LiteralError("invalid syntax")
        return bytes([v]), i + 2
    if c in "'\"":
        if c != quote:
            raise LiteralError("invalid syntax")
        return c.encode(), i
    raise LiteralError("invalid syntax")


def unquote(s: str) -> str:
    """strconv.Unquote of a "..." or `...` literal; the result holds Go bytes."""
    if len(s) < 2 or s[0] != s[-1]:
        raise LiteralError("invalid syntax")
    q = s[0]
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise LiteralError("invalid syntax")
        return body.replace("\r", "")
    if q != '"':
        raise LiteralError("invalid syntax")
    if "\\" not in body and '"' not in body and "\n" not in body:
        return body
    if "\n" in body:
        raise LiteralError("invalid syntax")
    out = bytearray()
    i = 0
    while i < len(body):
        b, i = unquote_char(body, i, '"')
        out += b
    return out.decode("utf-8", "surrogateescape")


def char_value(text: str) -> int:
    """The rune of a character constant like 'a' or '\\n' (UnquoteChar + tail check)."""
    b, i = unquote_char(text, 1, "'")
    if text[i:] != "'":
        raise LiteralError(f"malformed character constant: {text}")
    if len(b) == 1:
        return b[0]
    return ord(b.decode("utf-8", "surrogateescape"))


def _underscore_ok(s: str) -> bool:
    saw = "^"
    i = 0
    if s and s[0] in "+-":
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


_INT_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)\Z")


def parse_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64) without the range check (None if invalid)."""
    if not _INT_RE.match(text):
        return None
    if "_" in text and not _underscore_ok(text):
        return None
    sign = 1
    t = text
    if t[0] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    t = t.replace("_", "")
    if len(t) > 1 and t[0] == "0" and t[1] in "xX":
        v = int(t[2:], 16)
    elif len(t) > 1 and t[0] == "0" and t[1] in "oO":
        v = int(t[2:], 8)
    elif len(t) > 1 and t[0] == "0" and t[1] in "bB":
        v = int(t[2:], 2)
    elif len(t) > 1 and t[0] == "0":
        v = int(t[1:], 8)
    else:
        v = int(t)
    return sign * v


_DEC_FLOAT_RE = re.compile(r"[+-]?(\d[\d_]*\.?[\d_]*|\.[\d_]+)([eE][+-]?[\d_]+)?\Z")
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX]([0-9a-fA-F_]*\.?[0-9a-fA-F_]*)([pP][+-]?[\d_]+)\Z")


def parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64); None on syntax or range error."""
    if "_" in text and not _underscore_ok(text):
        return None
    t = text.replace("_", "")
    if _DEC_FLOAT_RE.match(t):
        try:
            f = float(t)
        except ValueError:
            return None
    elif _HEX_FLOAT_RE.match(t):
        try:
            f = float.fromhex(t)
        except (ValueError, OverflowError):
            return None
    else:
        low = t.lower().lstrip("+-")
        if low in ("inf", "infinity", "nan"):
            return float(t)
        return None
    if f in (float("inf"), float("-inf")):
        return None
    return f
