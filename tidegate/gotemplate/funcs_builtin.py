"""text/template's builtin functions (and, or, not, len, index, print*, html, js, urlquery, eq...).

Most take reflect.Value arguments in Go, so they see "no value" (MISSING) and a nil interface
(None) as distinct inputs, which shows in their error messages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from tidegate.golang.fmt import decode_rune, format_plain, is_print, sprint, sprintf, sprintln
from tidegate.golang.types import (
    I64,
    LIST_TYPES,
    MAP_TYPES,
    MISSING,
    GoObject,
    NilMap,
    StrMap,
    byte_len,
    go_bytes,
    kind,
    type_name,
)

from .funcdef import ANY, RV, STRING, GoError, GoFunc

BUILTINS: dict[str, GoFunc] = {}


def _reg(name: str, impl: Any, params: tuple[str, ...], variadic: str | None = None) -> None:
    BUILTINS[name] = GoFunc(name, impl, params, variadic, builtin=True)


def _truth(v: Any) -> bool:
    from .exec import is_true

    return is_true(v)[0]


def _and(*args: Any) -> Any:  # handled specially by the executor
    return args[-1]


_reg("and", _and, (RV,), RV)
_reg("or", _and, (RV,), RV)
_reg("not", lambda v: not _truth(v), (RV,))


def _len(item: Any) -> int:
    if item is None:
        raise GoError("len of nil pointer")
    if item is MISSING:
        raise GoError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return byte_len(item)
    if isinstance(item, (list, dict)):
        return len(item)
    raise GoError(f"len of type {type_name(item)}")


_reg("len", _len, (RV,))


def _index_arg(index: Any, cap: int) -> int:
    if index is MISSING or index is None:
        raise GoError("cannot index slice/array with nil")
    if type(index) not in (int, I64):
        raise GoError(f"cannot index slice/array with type {type_name(index)}")
    x = int(index)
    if x < 0 or x > cap:
        raise GoError(f"index out of range: {x}")
    return x


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise GoError("index of untyped nil")
    for index in indexes:
        if index is None:
            index = MISSING
        if item is None:
            raise GoError("index of nil pointer")
        if isinstance(item, str):
            x = _index_arg(index, byte_len(item))
            b = go_bytes(item)
            if x >= len(b):
                raise GoError("reflect: string index out of range")
            item = b[x]
        elif isinstance(item, LIST_TYPES):
            x = _index_arg(index, len(item))
            if x >= len(item):
                raise GoError("reflect: slice index out of range")
            item = item[x]
        elif isinstance(item, MAP_TYPES):
            if index is MISSING:
                raise GoError("value is nil; should be of type string")
            if type(index) is not str:
                raise GoError(f"value has type {type_name(index)}; should be string")
            item = item[index] if index in item else "" if type(item) is StrMap else None
        else:
            raise GoError(f"can't index item of type {type_name(item)}")
    return item


_reg("index", _index, (RV,), RV)


def _call(fn: Any, *args: Any) -> Any:
    if fn is MISSING or fn is None:
        raise GoError("call of nil")
    raise GoError(f"non-function of type {type_name(fn)}")


_reg("call", _call, (RV,), RV)


def _print(*args: Any) -> str:
    return sprint([None if a is MISSING else a for a in args])


def _println(*args: Any) -> str:
    return sprintln([None if a is MISSING else a for a in args])


def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, [None if a is MISSING else a for a in args])


_reg("print", _print, (), ANY)
_reg("println", _println, (), ANY)
_reg("printf", _printf, (STRING,), ANY)


def eval_args(args: tuple[Any, ...]) -> str:
    """template.evalArgs: a lone string as is, else Sprint with nil shown as <no value>."""
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    vals = ["<no value>" if a is None or a is MISSING else a for a in args]
    return sprint(vals)


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def html_escape(s: str) -> str:
    if not any(c in s for c in "'\"&<>\0"):
        return s
    return "".join(_HTML.get(c, c) for c in s)


_reg("html", lambda *a: html_escape(eval_args(a)), (), ANY)

_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def js_escape(s: str) -> str:
    if all(" " <= c < "\x80" and c not in _JS for c in s):
        return s
    b = go_bytes(s)
    out: list[str] = []
    i = 0
    while i < len(b):
        c = b[i]
        if c < 0x80:
            ch = chr(c)
            if ch in _JS:
                out.append(_JS[ch])
            elif c < 0x20:
                out.append(f"\\u00{c:02X}")
            else:
                out.append(ch)
            i += 1
            continue
        r, size = decode_rune(b, i)
        if is_print(r):
            out.append(b[i:i + size].decode("utf-8", "surrogateescape"))
        else:
            out.append(f"\\u{r:04X}")
        i += size
    return "".join(out)


_reg("js", lambda *a: js_escape(eval_args(a)), (), ANY)


def query_escape(s: str) -> str:
    """url.QueryEscape."""
    return quote_plus(go_bytes(s), safe="-_.~")


_reg("urlquery", lambda *a: query_escape(eval_args(a)), (), ANY)

# ---------------------------------------------------------------- comparisons
_BAD_TYPE = "invalid type for comparison"
_BAD_CMP = "incompatible types for comparison"


def _basic_kind(v: Any) -> str | None:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int or t is I64:
        return "int"
    if t is float:
        return "float"
    if t is complex:
        return "complex"
    if t is str:
        return "string"
    return None


def _is_nil(v: Any) -> bool:
    return v is MISSING or v is None or type(v) is NilMap


def _iface(v: Any) -> Any:
    return MISSING if v is None else v


def eq(arg1: Any, *arg2: Any) -> bool:
    arg1 = _iface(arg1)
    if not arg2:
        raise GoError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        arg = _iface(arg)
        k2 = _basic_kind(arg)
        truth = False
        if k1 != k2:
            if arg1 is not MISSING and arg is not MISSING:
                raise GoError(_BAD_CMP)
        elif k1 is not None:
            truth = arg1 == arg
        else:
            ka, kb = kind(arg1), kind(arg)
            if ka != kb and "invalid" not in (ka, kb):
                raise GoError(f"non-comparable types {sprintf('%s', [arg1])}: "
                              f"{type_name(arg1)}, {type_name(arg)}: {format_plain(arg)}")
            if _is_nil(arg1) or _is_nil(arg):
                truth = _is_nil(arg) == _is_nil(arg1)
            else:
                if isinstance(arg, (list, dict)):
                    raise GoError(f"non-comparable type {sprintf('%s', [arg])}: "
                                  f"{type_name(arg)}")
                truth = _obj_eq(arg1, arg)
        if truth:
            return True
    return False


def _obj_eq(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, GoObject) and hasattr(a, "go_equal"):
        return a.go_equal(b)
    return a is b


def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def lt(a: Any, b: Any) -> bool:
    a = _iface(a)
    b = _iface(b)
    k1 = _basic_kind(a)
    if k1 is None:
        raise GoError(_BAD_TYPE)
    k2 = _basic_kind(b)
    if k2 is None:
        raise GoError(_BAD_TYPE)
    if k1 != k2:
        raise GoError(_BAD_CMP)
    if k1 in ("bool", "complex"):
        raise GoError(_BAD_TYPE)
    if k1 == "string" and not (a.isascii() and b.isascii()):
        return go_bytes(a) < go_bytes(b)
    return a < b


def le(a: Any, b: Any) -> bool:
    if lt(a, b):
        return True
    return eq(a, b)


def gt(a: Any, b: Any) -> bool:
    return not le(a, b)


def ge(a: Any, b: Any) -> bool:
    return not lt(a, b)


_reg("eq", eq, (RV,), RV)
_reg("ne", ne, (RV, RV))
_reg("lt", lt, (RV, RV))
_reg("le", le, (RV, RV))
_reg("gt", gt, (RV, RV))
_reg("ge", ge, (RV, RV))
