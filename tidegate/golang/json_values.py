"""encoding/json as Go's json.Unmarshal into interface{} and json.Marshal(Indent) do it, for
templates and settings files: float64 numbers, Go's error texts, Go's escaping on output.

Decoding takes Python's fast parser for valid input and falls back to a Go-style scanner only to
produce Go's exact syntax error message.  Encoding is hand-written because Go formats float64
differently from Python (``1000000`` not ``1000000.0``) and escapes ``<``, ``>``, ``&``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tidegate.golang.json_wire import JSONError, json_float
from tidegate.golang.strconv import quote
from tidegate.golang.types import MISSING, GoObject, NilMap

# ---------------------------------------------------------------- decoding


def _raise_const(name: str) -> Any:
    raise ValueError(name)


def _check_float(s: str) -> float:
    f = float(s)
    if math.isinf(f):
        raise JSONError(f"json: cannot unmarshal number {s} into Go value of type float64")
    return f


_SURR_ESC = re.compile(r"\\u[dD][89a-fA-F]")
_SURR = re.compile("[\ud800-\udfff]")


def replace_surrogates(v: Any) -> Any:
    """`v` with every lone surrogate in its strings and keys (a `\\ud800` escape, or an
    undecodable byte kept as a surrogate) replaced by U+FFFD, as Go's decoders read them."""
    if isinstance(v, str):
        return _SURR.sub("\ufffd", v)
    if isinstance(v, list):
        return [replace_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {replace_surrogates(k): replace_surrogates(x) for k, x in v.items()}
    return v


def decode(raw: bytes) -> Any:
    """json.Unmarshal into interface{}: numbers become float, Go error texts on failure."""
    text = raw.decode("utf-8", "surrogateescape")
    try:
        v = json.loads(text, parse_int=_check_float, parse_float=_check_float,
                       parse_constant=_raise_const)
    except JSONError:
        _GoScanner(text).check()
        raise
    except (ValueError, RecursionError):
        # Go's scanner feeds one ' ' at EOF before giving up, so e.g. "nul" fails on ' '
        try:
            _GoScanner(text + " ").check()
        except RecursionError:  # Go nests 10,000 levels; Python's stack ends before
            raise JSONError("invalid JSON: nested too deeply to be decoded") from None
        raise JSONError("invalid JSON") from None
    if _SURR_ESC.search(text) or _SURR.search(text):
        v = replace_surrogates(v)
    return v


def decode_object(raw: bytes) -> dict | NilMap:
    """json.Unmarshal into map[string]interface{} (a settings file)."""
    v = decode(raw)
    if v is None:
        return NilMap()
    if isinstance(v, dict):
        return v
    kind = {list: "array", str: "string", bool: "bool", float: "number"}.get(type(v), "value")
    raise JSONError(f"json: cannot unmarshal {kind} into Go value of type "
                    "map[string]interface {}")


def _quote_char(c: str) -> str:
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    q = quote(c)
    return "'" + q[1:-1] + "'"


class _GoScanner:
    """Just enough of encoding/json's scanner to reproduce its syntax error messages."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def err(self, c: str, context: str) -> None:
        if c >= "\x80":  # Go reports the offending byte, not the rune
            c = chr(c.encode("utf-8", "surrogateescape")[0])
        raise JSONError(f"invalid character {_quote_char(c)} {context}")

    def eof(self) -> None:
        raise JSONError("unexpected end of JSON input")

    def ws(self) -> None:
        s = self.s
        while self.i < len(s) and s[self.i] in " \t\r\n":
            self.i += 1

    def check(self) -> None:
        self.ws()
        self.value("looking for beginning of value")
        self.ws()
        if self.i < len(self.s):
            self.err(self.s[self.i], "after top-level value")

    def value(self, context: str) -> None:
        s = self.s
        if self.i >= len(s):
            self.eof()
        c = s[self.i]
        if c == "{":
            self.i += 1
            self.ws()
            if self.i >= len(s):
                self.eof()
            if s[self.i] == "}":
                self.i += 1
                return
            while True:
                self.ws()
                if self.i >= len(s):
                    self.eof()
                if s[self.i] != '"':
                    self.err(s[self.i], "looking for beginning of object key string")
                self.string()
                self.ws()
                if self.i >= len(s):
                    self.eof()
                if s[self.i] != ":":
                    self.err(s[self.i], "after object key")
                self.i += 1
                self.ws()
                self.value("looking for beginning of value")
                self.ws()
                if self.i >= len(s):
                    self.eof()
                if s[self.i] == ",":
                    self.i += 1
                    continue
                if s[self.i] == "}":
                    self.i += 1
                    return
                self.err(s[self.i], "after object key:value pair")
        if c == "[":
            self.i += 1
            self.ws()
            if self.i >= len(s):
                self.eof()
            if s[self.i] == "]":
                self.i += 1
                return
            while True:
                self.ws()
                self.value("looking for beginning of value")
                self.ws()
                if self.i >= len(s):
                    self.eof()
                if s[self.i] == ",":
                    self.i += 1
                    continue
                if s[self.i] == "]":
                    self.i += 1
                    return
                self.err(s[self.i], "after array element")
        if c == '"':
            self.string()
            return
        if c == "-" or "0" <= c <= "9":
            self.number()
            return
        for lit in ("true", "false", "null"):
            if c == lit[0]:
                for j, want in enumerate(lit):
                    if self.i + j >= len(s):
                        self.eof()
                    if s[self.i + j] != want:
                        self.err(s[self.i + j], f"in literal {lit} (expecting {_quote_char(want)})")
                self.i += len(lit)
                return
        self.err(c, context)

    def string(self) -> None:
        s = self.s
        self.i += 1
        while True:
            if self.i >= len(s):
                self.eof()
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                self.i += 1
                if self.i >= len(s):
                    self.eof()
                e = s[self.i]
                if e in "\"\\/bfnrt":
                    self.i += 1
                    continue
                if e == "u":
                    self.i += 1
                    for _ in range(4):
                        if self.i >= len(s):
                            self.eof()
                        if s[self.i] not in "0123456789abcdefABCDEF":
                            self.err(s[self.i], "in \\u hexadecimal character escape")
                        self.i += 1
                    continue
                self.err(e, "in string escape code")
            if c < " ":
                self.err(c, "in string literal")
            self.i += 1

    def number(self) -> None:
        s = self.s
        n = len(s)
        if s[self.i] == "-":
            self.i += 1
            if self.i >= n:
                self.eof()
            if not ("0" <= s[self.i] <= "9"):
                self.err(s[self.i], "in numeric literal")
        if s[self.i] == "0":
            self.i += 1
        else:
            while self.i < n and "0" <= s[self.i] <= "9":
                self.i += 1
        if self.i < n and s[self.i] == ".":
            self.i += 1
            if self.i >= n:
                self.eof()
            if not ("0" <= s[self.i] <= "9"):
                self.err(s[self.i], "after decimal point in numeric literal")
            while self.i < n and "0" <= s[self.i] <= "9":
                self.i += 1
        if self.i < n and s[self.i] in "eE":
            self.i += 1
            if self.i < n and s[self.i] in "+-":
                self.i += 1
            if self.i >= n:
                self.eof()
            if not ("0" <= s[self.i] <= "9"):
                self.err(s[self.i], "in exponent of numeric literal")
            while self.i < n and "0" <= s[self.i] <= "9":
                self.i += 1


# ---------------------------------------------------------------- encoding

_ESC_RE = re.compile(r'[\x00-\x1f"\\<>&\u2028\u2029\udc80-\udcff]')
_ESC_RAW_RE = re.compile(r'[\x00-\x1f"\\\u2028\u2029\udc80-\udcff]')
_ESC_MAP = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\b": "\\b", "\f": "\\f",  # Go 1.22+, as json_wire
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
            "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _esc(m: re.Match[str]) -> str:
    c = m.group(0)
    r = _ESC_MAP.get(c)
    if r is not None:
        return r
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:
        return "\\ufffd"
    return f"\\u{o:04x}"


def encode_string(s: str, escape_html: bool = True) -> str:
    """A Go JSON string literal."""
    rx = _ESC_RE if escape_html else _ESC_RAW_RE
    return '"' + rx.sub(_esc, s) + '"'


class UnsupportedError(JSONError):
    pass


def encode(v: Any, escape_html: bool = True, indent: str | None = None) -> str:
    """json.Marshal (or MarshalIndent with prefix "" when `indent` is set)."""
    out: list[str] = []
    _enc(v, out, escape_html, indent, "")
    return "".join(out)


def _enc(v: Any, out: list[str], html: bool, indent: str | None, cur: str) -> None:
    t = type(v)
    if t is str:
        out.append(encode_string(v, html))
    elif t is float:
        out.append(json_float(v))
    elif t is bool:
        out.append("true" if v else "false")
    elif v is None or v is MISSING or t is NilMap:
        out.append("null")
    elif isinstance(v, int):
        out.append(str(int(v)))
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        keys = sorted(v, key=lambda k: k.encode("utf-8", "surrogateescape"))
        out.append("{")
        inner = cur + indent if indent is not None else ""
        for i, k in enumerate(keys):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + inner)
            out.append(encode_string(k, html))
            out.append(": " if indent is not None else ":")
            _enc(v[k], out, html, indent, inner)
        if indent is not None:
            out.append("\n" + cur)
        out.append("}")
    elif isinstance(v, list):
        if not v:
            out.append("[]")
            return
        out.append("[")
        inner = cur + indent if indent is not None else ""
        for i, e in enumerate(v):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + inner)
            _enc(e, out, html, indent, inner)
        if indent is not None:
            out.append("\n" + cur)
        out.append("]")
    elif isinstance(v, GoObject):
        j = v.to_json_value() if hasattr(v, "to_json_value") else None
        if j is None:
            raise UnsupportedError(f"json: unsupported type: {v.go_type}")
        _enc(j, out, html, indent, cur)
    elif t is complex:
        raise UnsupportedError("json: unsupported type: complex128")
    else:
        raise UnsupportedError(f"json: unsupported type: {t.__name__}")
