"""Go ``encoding/json`` on the wire: what KrakenD writes and how it reads backend bodies.

KrakenD renders responses with ``json.Marshal`` (sorted keys, ``<>&`` and U+2028/U+2029
escaped, invalid UTF-8 as ``\\ufffd``, floats in Go's shortest form) and decodes backend
bodies with ``json.Decoder`` + ``UseNumber`` (every number keeps its literal text, only the
first JSON value of the body is read). Both sit on the hot path, so orjson does the work and
cheap byte-level fix-ups run only when a quick scan says they are needed.

Numbers: backend numbers whose literal Go would echo differently from our float output
(``1.0``, ``1e3``, ``-0``, 20-digit integers...) are decoded as :class:`GoNumber`, a float
that remembers its literal; every other number is a plain int or float.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any, Final

import orjson

from tidegate.golang.floats import format_json, format_v
from tidegate.golang.numbers import GoNumber

__all__ = [
    "GoNumber",
    "JSONError",
    "decode_first",
    "dumps",
    "loads",
]


class JSONError(ValueError):
    """What Go's encoding/json refuses (a body it cannot decode, a value it cannot encode);
    the message reads like Go's."""


def json_float(value: float) -> str:
    """A float64 as json.Marshal writes it; NaN and infinities are refused as Go refuses them."""
    if value != value or value in (math.inf, -math.inf):
        raise JSONError(f"json: unsupported value: {format_v(value)}")
    return format_json(value)


# ---------------------------------------------------------------------------------------------
# Encoding

_OPTS = orjson.OPT_SORT_KEYS
_orjson_dumps = orjson.dumps
# Characters orjson leaves raw that Go escapes. They only ever occur inside strings, so plain
# byte replacement is safe; single-byte membership tests (memchr) keep the common case cheap.
_HTML_RE = re.compile(rb"[<>&]|\xe2\x80[\xa8\xa9]")
_HTML_MAP = {b"<": b"\\u003c", b">": b"\\u003e", b"&": b"\\u0026",
             b"\xe2\x80\xa8": b"\\u2028", b"\xe2\x80\xa9": b"\\u2029"}
# orjson float text that Go writes differently: "100.0" (Go: 100), 1e+16..1e+20 and 1e-6
# (Go: plain decimals). Each pattern starts with a literal so the regex engine scans fast; a
# hit inside a string only costs the exact pass.
_INTEGRAL_FLOAT = re.compile(rb"\.0(?:[,\]}]|\Z)")
_BIG_EXPONENT = re.compile(rb"e\+(?:1[6-9]|20)(?![0-9])")
_SMALL_EXPONENT = re.compile(rb"e-6(?![0-9])")
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*')


# Single bytes are looked for as ints (`_DOT in out`): that is one memchr. `b"." in out` first
# tries the operand as an integer and builds (then drops) a TypeError, ~2,000 instructions per
# test, and `out.find(b".")` is a method call with argument parsing: both cost more than the
# scan itself on a small body.
_DOT: Final = 0x2E  # .
_PLUS: Final = 0x2B  # +
_MINUS: Final = 0x2D  # -
_LOWER_E: Final = 0x65  # e
_LT: Final = 0x3C  # <
_GT: Final = 0x3E  # >
_AMP: Final = 0x26  # &
_E2: Final = 0xE2  # first byte of U+2028 and U+2029 in UTF-8


def _has_odd_float(out: bytes) -> bool:
    return bool(_INTEGRAL_FLOAT.search(out)
                or (_PLUS in out and _BIG_EXPONENT.search(out))
                or _SMALL_EXPONENT.search(out))


def _has_html(out: bytes) -> bool:
    return _LT in out or _GT in out or _AMP in out or (
        _E2 in out and (out.find(b"\xe2\x80\xa8") >= 0 or out.find(b"\xe2\x80\xa9") >= 0))


def _html_sub(m: re.Match[bytes]) -> bytes:
    return _HTML_MAP[m.group()]


def _float_sub(m: re.Match[bytes]) -> bytes:
    tok = m.group()
    if tok[0] == 34 or (b"." not in tok and b"e" not in tok):  # a string or an int
        return tok
    return json_float(float(tok)).encode()


# How many GoNumber literals orjson has written: the float rewrite below must not touch them.
_literals_written = [0]


def _default(obj: Any) -> Any:
    if isinstance(obj, GoNumber):
        _literals_written[0] += 1
        return orjson.Fragment(obj.literal.encode())
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError


def dumps(value: Any) -> bytes:
    """``json.Marshal(value)`` for decoded-JSON-shaped data (dict/list/str/int/float/bool/None)."""
    seen = _literals_written[0]
    try:
        out = _orjson_dumps(value, default=_default, option=_OPTS)
    except TypeError:  # ints beyond 64 bits, lone surrogates, non-str keys, odd types
        return _slow_dumps(value)
    if (_DOT in out or _LOWER_E in out) and _has_odd_float(out):
        if _literals_written[0] != seen:  # literals mixed in: only the exact encoder can tell
            return _slow_dumps(value)
        out = _TOKENS.sub(_float_sub, out)
    if _has_html(out):
        out = _HTML_RE.sub(_html_sub, out)
    return out


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
            "\u2028": "\\u2028", "\u2029": "\\u2029"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    esc = _ESCAPES.get(ch)
    if esc is not None:
        return esc
    if "\ud800" <= ch <= "\udfff":  # undecodable byte or lone surrogate: Go writes \ufffd
        return "\\ufffd"
    return f"\\u{ord(ch):04x}"


def _quote(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_quote(value))
    elif isinstance(value, GoNumber):
        out.append(value.literal)
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(json_float(value))
    elif isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(_quote(k))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise JSONError(f"json: unsupported type: {type(value).__name__}")


def _slow_dumps(value: Any) -> bytes:
    """The exact (pure Python) encoder for what orjson refuses."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------
# Decoding

_orjson_loads = orjson.loads
# Number literals that orjson would not give back as Go echoes them (json.Number keeps the
# text): a fraction ending in 0 or a tiny one (1.50, 0.0000001), an exponent (1e3), "-0", and
# long digit runs (orjson turns integers past 64 bits into floats; 16+ digits may not survive
# a float). Each pattern starts with a literal so the scan is fast; a hit inside a string only
# sends the body to the exact path.
_ODD_FRACTION = re.compile(rb"\.(?:[0-9]*0(?:[ \t\r\n,\]}]|\Z)|000000)")
_ODD_EXP_LOWER = re.compile(rb"e[-+]?[0-9]+(?:[ \t\r\n,\]}]|\Z)")
_ODD_EXP_UPPER = re.compile(rb"E[-+]?[0-9]+(?:[ \t\r\n,\]}]|\Z)")
_NEGATIVE_ZERO = re.compile(rb"-0(?![0-9.eE])")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 16


def _needs_exact(body: bytes) -> bool:
    """Whether the body may hold a number literal that only the exact decoder keeps."""
    if (_DOT in body and _ODD_FRACTION.search(body)) or (
            _MINUS in body and _NEGATIVE_ZERO.search(body)):
        return True
    digits = body.translate(_DIGITS_AS_ZERO)
    # An exponent follows a digit: looked for in `digits` first, since the letter e alone is in
    # nearly every JSON text (the regex scanning each one cost more than orjson's decode).
    return bool(digits.find(_LONG_RUN) >= 0
                or (digits.find(b"0e") >= 0 and _ODD_EXP_LOWER.search(body))
                or (digits.find(b"0E") >= 0 and _ODD_EXP_UPPER.search(body)))


_WS = " \t\r\n"


def _per_byte_replace(err: UnicodeError) -> tuple[str, int]:
    """Go decodes each undecodable byte of a JSON string to one U+FFFD."""
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error("tidegate-go-fffd", _per_byte_replace)


def _parse_float(literal: str) -> Any:
    """A float, or a GoNumber when Go would echo the literal differently. (Declared ``Any``:
    compiled by mypyc, a function returning ``float`` hands back a bare C double, which would
    drop the literal a GoNumber carries.)"""
    f = float(literal)
    if "e" not in literal and "E" not in literal and not literal.endswith(".0") \
            and repr(f) == literal:
        return f
    return GoNumber(literal)


def _parse_int(literal: str) -> int | float:
    if literal == "-0":
        return GoNumber(literal)
    return int(literal)


def _reject_constant(name: str) -> Any:
    raise JSONError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int,
                            parse_constant=_reject_constant)
_LONE_SURROGATE_ESC = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _fix_surrogates(value: Any) -> Any:
    """Go turns lone ``\\ud800``-style escapes into U+FFFD; Python keeps them."""
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {_fix_surrogates(k): _fix_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_surrogates(v) for v in value]
    return value


def _go_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'" if ch.isprintable() else repr(ch)


def _syntax_error(text: str, exc: json.JSONDecodeError) -> JSONError:
    pos = exc.pos
    if pos >= len(text.rstrip(_WS)) or exc.msg.startswith("Unterminated string"):
        return JSONError("unexpected EOF")
    ch = text[pos]
    if exc.msg == "Expecting value":
        return JSONError(f"invalid character {_go_char(ch)} looking for beginning of value")
    if exc.msg.startswith("Invalid control character"):
        return JSONError(f"invalid character {_go_char(ch)} in string literal")
    if exc.msg.startswith("Expecting property name"):
        return JSONError(
            f"invalid character {_go_char(ch)} looking for beginning of object key string")
    if exc.msg.startswith("Expecting ':'"):
        return JSONError(f"invalid character {_go_char(ch)} after object key")
    if exc.msg.startswith("Expecting ','"):
        where = "object key:value pair" if exc.doc.rfind("{", 0, pos) > exc.doc.rfind(
            "[", 0, pos) else "array element"
        return JSONError(f"invalid character {_go_char(ch)} after {where}")
    return JSONError(f"invalid character {_go_char(ch)} in JSON ({exc.msg})")


def _slow_first(body: bytes, whole: bool) -> Any:
    text = body.decode("utf-8", "tidegate-go-fffd")
    start = len(text) - len(text.lstrip(_WS))
    if start == len(text):
        raise JSONError("unexpected end of JSON input" if whole else "EOF")
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise _syntax_error(text, exc) from None
    rest = text[end:]
    if rest and (whole or not isinstance(value, (dict, list))):
        stripped = rest.lstrip(_WS)
        if stripped and (whole or len(stripped) == len(rest)):
            raise JSONError(f"invalid character {_go_char(stripped[0])} after top-level value")
    if _LONE_SURROGATE_ESC.search(text, start, end):
        value = _fix_surrogates(value)
    return value


def decode_first(body: bytes) -> Any:
    """``json.NewDecoder(body).Decode(&v)`` with UseNumber: the first JSON value of the body.

    After an object or array anything may follow (Go never reads it); a top-level scalar must
    be followed by whitespace or the end. Raises :class:`JSONError` with Go's message.
    """
    if not _needs_exact(body):
        try:
            return _orjson_loads(body)
        except orjson.JSONDecodeError:
            pass
    return _slow_first(body, whole=False)


def loads(body: bytes | str) -> Any:
    """``json.Unmarshal`` with UseNumber: the whole body must be exactly one JSON value."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not _needs_exact(body):
        try:
            return _orjson_loads(body)
        except orjson.JSONDecodeError:
            pass
    return _slow_first(body, whole=True)
