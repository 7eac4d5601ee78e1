"""Sprig list functions (list.go) with Go's reflect-based type rules and panic texts."""

from __future__ import annotations

import math
from typing import Any

from tidegate.golang.types import I64, LIST_TYPES, MISSING, ListList, kind

from ..funcdef import ANY, INT, GoError, GoFunc, fn

FUNCS: dict[str, GoFunc] = {}

NIL_DEREF = "runtime error: invalid memory address or nil pointer dereference"


def _kind_of(v: Any) -> str:
    if v is None or v is MISSING:
        raise GoError(NIL_DEREF)
    k = kind(v)
    return "ptr" if k == "ptr" else k


def deep_equal(a: Any, b: Any) -> bool:
    """reflect.DeepEqual over our Go values (types must match exactly)."""
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and deep_equal(v, b[k]) for k, v in a.items())
    if hasattr(a, "go_equal"):
        return a.go_equal(b)
    return a == b


def _must(name: str, v: Any, what: str) -> list:
    k = _kind_of(v)
    if not isinstance(v, LIST_TYPES):
        # Sprig words this one message differently from all the others.
        sep = " " if what == "chunk" else " on "
        raise GoError(f"Cannot {what}{sep}type {k}")
    return list(v)


def _pair(name: str, what: str, impl: Any, params: tuple[str, ...] = (ANY,),
          variadic: str | None = None) -> None:
    fn(FUNCS, name, params, variadic)(impl)
    fn(FUNCS, "must" + name[0].upper() + name[1:], params, variadic)(impl)


fn(FUNCS, "list", (), variadic=ANY, returns="[]interface {}")(lambda *a: list(a))
fn(FUNCS, "tuple", (), variadic=ANY, returns="[]interface {}")(lambda *a: list(a))


def _push(lst: Any, v: Any) -> list:
    return [*_must("push", lst, "push"), v]


for _n in ("push", "append"):
    fn(FUNCS, _n, (ANY, ANY))(_push)
    fn(FUNCS, "must" + _n.capitalize(), (ANY, ANY))(_push)
_pair("prepend", "prepend", lambda lst, v: [v, *_must("prepend", lst, "prepend")], (ANY, ANY))


def _chunk(size: int, lst: Any) -> ListList:
    items = _must("chunk", lst, "chunk")
    n = len(items)
    if size == 0:
        raise GoError("runtime error: makeslice: len out of range")
    cs = int(math.floor((n - 1) / size) + 1)
    out = ListList()
    for i in range(cs):
        clen = size
        if i == cs - 1:
            clen = int(math.fmod(n, size))
            if clen == 0:
                clen = size
        out.append(items[i * size:i * size + clen])
    return out


_pair("chunk", "chunk", _chunk, (INT, ANY))


def _last(lst: Any) -> Any:
    items = _must("last", lst, "find last")
    return items[-1] if items else None


def _first(lst: Any) -> Any:
    items = _must("first", lst, "find first")
    return items[0] if items else None


_pair("last", "", _last)
_pair("first", "", _first)
_pair("rest", "", lambda lst: _must("rest", lst, "find rest")[1:])
_pair("initial", "", lambda lst: _must("initial", lst, "find initial")[:-1])
_pair("reverse", "", lambda lst: _must("reverse", lst, "find reverse")[::-1])


def _compact(lst: Any) -> list:
    from .misc import empty

    return [x for x in _must("compact", lst, "compact") if not empty(x)]


_pair("compact", "", _compact)


def _uniq(lst: Any) -> list:
    out: list = []
    for x in _must("uniq", lst, "find uniq"):
        if not any(deep_equal(x, y) for y in out):
            out.append(x)
    return out


_pair("uniq", "", _uniq)


def _without(lst: Any, *omit: Any) -> list:
    return [x for x in _must("without", lst, "find without")
            if not any(deep_equal(x, o) for o in omit)]


_pair("without", "", _without, (ANY,), ANY)


def _has(needle: Any, haystack: Any) -> bool:
    if haystack is None or haystack is MISSING:
        return False
    k = _kind_of(haystack)
    if not isinstance(haystack, LIST_TYPES):
        raise GoError(f"Cannot find has on type {k}")
    return any(deep_equal(needle, x) for x in haystack)


_pair("has", "", _has, (ANY, ANY))


def _slice(lst: Any, *indices: Any) -> Any:
    from .math import to_int

    k = _kind_of(lst)
    if not isinstance(lst, LIST_TYPES):
        raise GoError(f"list should be type of slice or array but {k}")
    n = len(lst)
    if n == 0:
        return None
    start = to_int(indices[0]) if indices else 0
    end = n if len(indices) < 2 else to_int(indices[1])
    if not (0 <= start <= end <= n):
        raise GoError("reflect.Value.Slice: slice index out of bounds")
    return type(lst)(lst[start:end])


_pair("slice", "", _slice, (ANY,), ANY)


@fn(FUNCS, "concat", (), variadic=ANY)
def _concat(*lists: Any) -> Any:
    res: list = []
    for lst in lists:
        k = _kind_of(lst)
        if not isinstance(lst, LIST_TYPES):
            raise GoError(f"Cannot concat type {k} as list")
        res.extend(lst)
    return res


__all__ = ["FUNCS", "I64", "deep_equal"]
