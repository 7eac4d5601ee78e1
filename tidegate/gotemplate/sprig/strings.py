"""Sprig string functions (strings.go, goutils, xstrings), byte-based like Go."""

from __future__ import annotations

import random
import string as _string
import unicodedata
from typing import Any

from tidegate.golang.fmt import Printer, quote, sprintf
from tidegate.golang.types import MISSING, GoObject, StrList, StrMap, from_bytes, go_bytes

from ..funcdef import ANY, INT, STRING, GoFunc, alias, fn

FUNCS: dict[str, GoFunc] = {}


def strval(v: Any) -> str:
    """Sprig's strval: strings as is, Stringers via String(), else %v."""
    if type(v) is str:
        return v
    if isinstance(v, GoObject):
        s = v.go_string()
        if s is not None:
            return s
    if v is MISSING:
        v = None
    return sprintf("%v", [v])


def strslice(v: Any) -> StrList:
    """Sprig's strslice: a []string from a list (nils dropped) or one value."""
    if type(v) is StrList:
        return v
    if isinstance(v, list):
        return StrList(strval(s) for s in v if s is not None)
    if v is None or v is MISSING:
        return StrList()
    return StrList([strval(v)])


def _is_space(c: str) -> bool:
    return c in " \t\n\v\f\r\x85\xa0" or (c > "\xff" and c.isspace())


def go_trim_space(s: str) -> str:
    """strings.TrimSpace (unicode.IsSpace)."""
    i, j = 0, len(s)
    while i < j and _is_space(s[i]):
        i += 1
    while j > i and _is_space(s[j - 1]):
        j -= 1
    return s[i:j]


def _title_rune(c: str) -> str:
    t = c.title()
    return t if len(t) == 1 else c.upper() if len(c.upper()) == 1 else c


def _upper(c: str) -> str:
    u = c.upper()
    return u if len(u) == 1 else c


def _lower(c: str) -> str:
    u = c.lower()
    return u if len(u) == 1 else c


fn(FUNCS, "hello", (), returns=STRING)(lambda: "Hello!")
fn(FUNCS, "upper", (STRING,), returns=STRING)(lambda s: "".join(_upper(c) for c in s))
fn(FUNCS, "lower", (STRING,), returns=STRING)(lambda s: "".join(_lower(c) for c in s))
fn(FUNCS, "trim", (STRING,), returns=STRING)(go_trim_space)


@fn(FUNCS, "title", (STRING,), returns=STRING)
def title(s: str) -> str:
    """strings.Title: upper-case letters that follow a separator."""
    out = []
    prev = " "
    for c in s:
        if _is_sep(prev):
            out.append(_title_rune(c))
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _is_sep(c: str) -> bool:
    if c < "\x80":
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return _is_space(c)


@fn(FUNCS, "untitle", (STRING,), returns=STRING)
def untitle(s: str) -> str:
    out = []
    nxt = True
    for c in s:
        if _is_space(c):
            nxt = True
            out.append(c)
        elif nxt:
            out.append(_lower(c))
            nxt = False
        else:
            out.append(c)
    return "".join(out)


@fn(FUNCS, "trunc", (INT, STRING), returns=STRING)
def trunc(c: int, s: str) -> str:
    b = go_bytes(s)
    if c < 0 and len(b) + c > 0:
        return from_bytes(b[len(b) + c:])
    if c >= 0 and len(b) > c:
        return from_bytes(b[:c])
    return s


@fn(FUNCS, "substr", (INT, INT, STRING), returns=STRING)
def substr(start: int, end: int, s: str) -> str:
    b = go_bytes(s)
    if start < 0:
        if end < 0 or end > len(b):
            raise ValueError(f"runtime error: slice bounds out of range [:{end}] with length "
                             f"{len(b)}")
        return from_bytes(b[:end])
    if end < 0 or end > len(b):
        if start > len(b):
            raise ValueError(f"runtime error: slice bounds out of range [{start}:{len(b)}]")
        return from_bytes(b[start:])
    if start > end:
        raise ValueError(f"runtime error: slice bounds out of range [{start}:{end}]")
    return from_bytes(b[start:end])


def _abbrev_full(s: str, offset: int, max_width: int) -> str:
    b = go_bytes(s)
    if not b:
        return ""
    if max_width < 4:
        return ""
    if len(b) <= max_width:
        return s
    offset = min(offset, len(b))
    if len(b) - offset < max_width - 3:
        offset = len(b) - (max_width - 3)
    if offset <= 4:
        return from_bytes(b[: max_width - 3]) + "..."
    if max_width < 7:
        return ""
    if offset + max_width - 3 < len(b):
        return "..." + _abbrev_full(from_bytes(b[offset:]), 0, max_width - 3)
    return "..." + from_bytes(b[len(b) - (max_width - 3):])


@fn(FUNCS, "abbrev", (INT, STRING), returns=STRING)
def abbrev(width: int, s: str) -> str:
    if width < 4:
        return s
    return _abbrev_full(s, 0, width)


@fn(FUNCS, "abbrevboth", (INT, INT, STRING), returns=STRING)
def abbrevboth(left: int, right: int, s: str) -> str:
    if right < 4 or (left > 0 and right < 7):
        return s
    return _abbrev_full(s, left, right)


@fn(FUNCS, "repeat", (INT, STRING), returns=STRING)
def repeat(count: int, s: str) -> str:
    if count < 0:
        raise ValueError("strings: negative Repeat count")
    return s * count


def _go_trim(s: str, cutset: str) -> str:
    if not s or not cutset:
        return s
    return s.strip(cutset)


fn(FUNCS, "trimAll", (STRING, STRING), returns=STRING)(lambda a, b: _go_trim(b, a))
alias(FUNCS, "trimall", "trimAll")
fn(FUNCS, "trimSuffix", (STRING, STRING), returns=STRING)(
    lambda a, b: b[: len(b) - len(a)] if a and b.endswith(a) else b)
fn(FUNCS, "trimPrefix", (STRING, STRING), returns=STRING)(
    lambda a, b: b[len(a):] if b.startswith(a) else b)


@fn(FUNCS, "nospace", (STRING,), returns=STRING)
def nospace(s: str) -> str:
    b = go_bytes(s)
    kept = [c for c in b if chr(c) not in " \t\n\v\f\r\x85\xa0"]
    if len(kept) == len(b):
        return s
    return "".join(chr(c) for c in kept)


@fn(FUNCS, "initials", (STRING,), returns=STRING)
def initials(s: str) -> str:
    out = []
    gap = True
    for c in go_bytes(s):
        ch = chr(c)
        if ch in " \t\n\v\f\r\x85\xa0":
            gap = True
        elif gap:
            out.append(ch)
            gap = False
    return "".join(out)


def _rand(chars: str, count: int) -> str:
    if count < 0:
        raise ValueError(f"Requested random string length {count} is less than 0.")
    rng = random.SystemRandom()
    return "".join(rng.choice(chars) for _ in range(count))


fn(FUNCS, "randAlphaNum", (INT,), returns=STRING)(
    lambda n: _rand(_string.ascii_letters + _string.digits, n))
fn(FUNCS, "randAlpha", (INT,), returns=STRING)(lambda n: _rand(_string.ascii_letters, n))
fn(FUNCS, "randAscii", (INT,), returns=STRING)(
    lambda n: _rand("".join(chr(i) for i in range(32, 127)), n))
fn(FUNCS, "randNumeric", (INT,), returns=STRING)(lambda n: _rand(_string.digits, n))


@fn(FUNCS, "swapcase", (STRING,), returns=STRING)
def swapcase(s: str) -> str:
    out = []
    ws = True
    for c in s:
        cat = unicodedata.category(c)
        if cat == "Lu" or cat == "Lt":
            out.append(_lower(c))
            ws = False
        elif cat == "Ll":
            out.append(_title_rune(c) if ws else _upper(c))
            ws = False
        else:
            out.append(c)
            ws = _is_space(c)
    return "".join(out)


@fn(FUNCS, "shuffle", (STRING,), returns=STRING)
def shuffle(s: str) -> str:
    chars = list(s)
    random.shuffle(chars)
    return "".join(chars)


def _is_connector(c: str) -> bool:
    return c == "-" or c == "_" or _is_space(c)


@fn(FUNCS, "camelcase", (STRING,), returns=STRING)
def camelcase(s: str) -> str:
    if not s:
        return ""
    out: list[str] = []
    i = 0
    r0 = ""
    while i < len(s):
        r0 = s[i]
        i += 1
        if not _is_connector(r0):
            r0 = _upper(r0)
            break
        out.append(r0)
    if i >= len(s):
        out.append(r0)
        return "".join(out)
    while i < len(s):
        r1 = r0
        r0 = s[i]
        i += 1
        if _is_connector(r0) and _is_connector(r1):
            out.append(r1)
            continue
        if _is_connector(r1):
            r0 = _upper(r0)
        else:
            r0 = _lower(r0)
            out.append(r1)
    out.append(r0)
    return "".join(out)


# word types for snake/kebab case
_INVALID, _NUMBER, _UPPER, _ALPHA, _CONN, _PUNCT, _OTHER = range(7)


def _is_alpha(c: str) -> bool:
    return c.isalpha()


def _is_punct(c: str) -> bool:
    return unicodedata.category(c).startswith("P")


def _is_number(c: str) -> bool:
    return unicodedata.category(c).startswith("N")


def _next_word(s: str) -> tuple[int, str, str]:
    if not s:
        return _INVALID, "", ""
    r = s[0]
    n = 1
    if _is_connector(r):
        wt = _CONN
        while n < len(s) and _is_connector(s[n]):
            n += 1
    elif _is_punct(r):
        wt = _PUNCT
        while n < len(s) and _is_punct(s[n]):
            n += 1
    elif r.isupper():
        wt = _UPPER
        if n < len(s):
            if s[n].isupper():
                n += 1
                while n < len(s) and s[n].isupper():
                    n += 1
                if n < len(s) and _is_alpha(s[n]):
                    n -= 1
            elif _is_alpha(s[n]):
                n += 1
                while n < len(s) and _is_alpha(s[n]) and not s[n].isupper():
                    n += 1
    elif _is_alpha(r):
        wt = _ALPHA
        while n < len(s) and _is_alpha(s[n]) and not s[n].isupper():
            n += 1
    elif _is_number(r):
        wt = _NUMBER
        while n < len(s) and _is_number(s[n]):
            n += 1
    else:
        wt = _OTHER
        while n < len(s) and not (_is_connector(s[n]) or _is_alpha(s[n]) or _is_number(s[n])
                                  or _is_punct(s[n])):
            n += 1
    return wt, s[:n], s[n:]


def _to_lower(out: list[str], wt: int, word: str, conn: str) -> None:
    if wt != _UPPER and wt != _CONN:
        out.append(word)
        return
    for c in word:
        if _is_connector(c):
            out.append(conn)
        elif c.isupper():
            out.append(_lower(c))
        else:
            out.append(c)


def _camel_to_lower(s: str, conn: str) -> str:
    if not s:
        return ""
    out: list[str] = []
    wt, word, rem = _next_word(s)
    while rem:
        if wt != _CONN:
            _to_lower(out, wt, word, conn)
        prev, last = wt, word
        wt, word, rem = _next_word(rem)
        if prev == _NUMBER:
            while wt in (_ALPHA, _NUMBER):
                _to_lower(out, wt, word, conn)
                wt, word, rem = _next_word(rem)
            if wt not in (_INVALID, _PUNCT, _CONN):
                out.append(conn)
        elif prev == _CONN:
            _to_lower(out, prev, last, conn)
        elif prev == _PUNCT:
            pass
        else:
            if wt != _NUMBER:
                if wt not in (_CONN, _PUNCT):
                    out.append(conn)
                continue
            if not rem:
                continue
            last = word
            wt, word, rem = _next_word(rem)
            if wt != _ALPHA:
                _to_lower(out, _NUMBER, last, conn)
                if wt not in (_CONN, _PUNCT):
                    out.append(conn)
                continue
            out.append(conn)
            _to_lower(out, _NUMBER, last, conn)
            while wt in (_ALPHA, _NUMBER):
                _to_lower(out, wt, word, conn)
                wt, word, rem = _next_word(rem)
            if wt not in (_INVALID, _CONN, _PUNCT):
                out.append(conn)
    _to_lower(out, wt, word, conn)
    return "".join(out)


fn(FUNCS, "snakecase", (STRING,), returns=STRING)(lambda s: _camel_to_lower(s, "_"))
fn(FUNCS, "kebabcase", (STRING,), returns=STRING)(lambda s: _camel_to_lower(s, "-"))


def wrap_custom(s: str, width: int, nl: str, long_words: bool) -> str:
    b = go_bytes(s)
    if not b:
        return ""
    nlb = go_bytes(nl or "\n")
    width = max(width, 1)
    n = len(b)
    off = 0
    out = bytearray()
    while n - off > width:
        if b[off] == 32:
            off += 1
            continue
        end = width + off + 1
        sp = b.rfind(b" ", off, end)
        if sp >= off:
            out += b[off:sp] + nlb
            off = sp + 1
        elif long_words:
            out += b[off:off + width] + nlb
            off += width
        else:
            idx = b.find(b" ", width + off)
            if idx < 0:
                out += b[off:]
                off = n
            else:
                out += b[off:idx] + nlb
                off = idx + 1
    out += b[off:]
    return from_bytes(bytes(out))


fn(FUNCS, "wrap", (INT, STRING), returns=STRING)(lambda w, s: wrap_custom(s, w, "\n", False))
fn(FUNCS, "wrapWith", (INT, STRING, STRING), returns=STRING)(
    lambda w, sep, s: wrap_custom(s, w, sep, True))
fn(FUNCS, "contains", (STRING, STRING), returns="bool")(lambda sub, s: sub in s)
fn(FUNCS, "hasPrefix", (STRING, STRING), returns="bool")(lambda p, s: s.startswith(p))
fn(FUNCS, "hasSuffix", (STRING, STRING), returns="bool")(lambda p, s: s.endswith(p))


@fn(FUNCS, "quote", (), variadic=ANY, returns=STRING)
def quote_(*args: Any) -> str:
    return " ".join(quote(strval(a)) for a in args if a is not None)


@fn(FUNCS, "squote", (), variadic=ANY, returns=STRING)
def squote(*args: Any) -> str:
    return " ".join("'" + sprintf("%v", [a]) + "'" for a in args if a is not None)


@fn(FUNCS, "cat", (), variadic=ANY, returns=STRING)
def cat(*args: Any) -> str:
    vals = [a for a in args if a is not None]
    return sprintf(" ".join(["%v"] * len(vals)), vals)


def _indent(n: int, s: str) -> str:
    pad = " " * max(n, 0)
    return pad + s.replace("\n", "\n" + pad)


fn(FUNCS, "indent", (INT, STRING), returns=STRING)(_indent)
fn(FUNCS, "nindent", (INT, STRING), returns=STRING)(lambda n, s: "\n" + _indent(n, s))
fn(FUNCS, "replace", (STRING, STRING, STRING), returns=STRING)(
    lambda old, new, src: go_replace(src, old, new))
fn(FUNCS, "plural", (STRING, STRING, INT), returns=STRING)(
    lambda one, many, n: one if n == 1 else many)
fn(FUNCS, "toString", (ANY,), returns=STRING)(strval)


def go_replace(src: str, old: str, new: str) -> str:
    """strings.Replace(src, old, new, -1) (an empty `old` inserts between runes)."""
    if old == "":
        chars = list(src)
        return new + new.join(chars) + new if chars else new
    return src.replace(old, new)


def go_split(s: str, sep: str, n: int = -1) -> list[str]:
    """strings.SplitN (n < 0: all)."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if n > 0 and len(chars) > n:
            chars = [*chars[:n - 1], "".join(chars[n - 1:])]
        return chars
    if n < 0:
        return s.split(sep)
    return s.split(sep, n - 1)


@fn(FUNCS, "split", (STRING, STRING), returns="map[string]string")
def split(sep: str, orig: str) -> StrMap:
    return StrMap((f"_{i}", v) for i, v in enumerate(go_split(orig, sep)))


@fn(FUNCS, "splitn", (STRING, INT, STRING), returns="map[string]string")
def splitn(sep: str, n: int, orig: str) -> StrMap:
    return StrMap((f"_{i}", v) for i, v in enumerate(go_split(orig, sep, n)))


fn(FUNCS, "splitList", (STRING, STRING), returns="[]string")(
    lambda sep, orig: StrList(go_split(orig, sep)))
fn(FUNCS, "toStrings", (ANY,), returns="[]string")(strslice)
fn(FUNCS, "join", (STRING, ANY), returns=STRING)(lambda sep, v: sep.join(strslice(v)))


@fn(FUNCS, "sortAlpha", (ANY,), returns="[]string")
def sort_alpha(v: Any) -> StrList:
    if isinstance(v, list):
        return StrList(sorted(strslice(v), key=lambda s: go_bytes(s)))
    return StrList([strval(v)])


__all__ = ["FUNCS", "Printer", "go_trim_space", "strslice", "strval"]
