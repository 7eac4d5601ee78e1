"""Sprig dict functions (dict.go) including mergo's merge rules for JSON-like maps."""

from __future__ import annotations

import copy
from typing import Any

from tidegate.golang.types import MISSING, NilMap, StrList, type_name

from ..funcdef import ANY, MAP, STRING, GoError, GoFunc, fn
from .strings import strval

FUNCS: dict[str, GoFunc] = {}


def _nil_map_write() -> None:
    raise GoError("assignment to entry in nil map")


@fn(FUNCS, "get", (MAP, STRING))
def get(d: dict, key: str) -> Any:
    return d.get(key, "")


@fn(FUNCS, "set", (MAP, STRING, ANY), returns=MAP)
def set_(d: dict, key: str, value: Any) -> dict:
    if type(d) is NilMap:
        _nil_map_write()
    d[key] = value
    return d


@fn(FUNCS, "unset", (MAP, STRING), returns=MAP)
def unset(d: dict, key: str) -> dict:
    d.pop(key, None)
    return d


fn(FUNCS, "hasKey", (MAP, STRING), returns="bool")(lambda d, k: k in d)


@fn(FUNCS, "pluck", (STRING,), variadic=MAP, returns="[]interface {}")
def pluck(key: str, *dicts: dict) -> list:
    return [d[key] for d in dicts if key in d]


@fn(FUNCS, "keys", (), variadic=MAP, returns="[]string")
def keys(*dicts: dict) -> StrList:
    out = StrList()
    for d in dicts:
        out.extend(sorted(d))
    return out


@fn(FUNCS, "pick", (MAP,), variadic=STRING, returns=MAP)
def pick(d: dict, *ks: str) -> dict:
    return {k: d[k] for k in ks if k in d}


@fn(FUNCS, "omit", (MAP,), variadic=STRING, returns=MAP)
def omit(d: dict, *ks: str) -> dict:
    drop = set(ks)
    return {k: v for k, v in d.items() if k not in drop}


@fn(FUNCS, "dict", (), variadic=ANY, returns=MAP)
def dict_(*v: Any) -> dict:
    out: dict = {}
    for i in range(0, len(v), 2):
        key = strval(v[i])
        out[key] = v[i + 1] if i + 1 < len(v) else ""
    return out


def _is_empty_value(v: Any) -> bool:
    """mergo's isEmptyValue (looks through interfaces)."""
    if v is None or v is MISSING:
        return True
    if isinstance(v, (str, list, dict)):
        return len(v) == 0
    if isinstance(v, (bool, int, float)):
        return not v
    return False


def merge_into(dst: dict, src: dict, overwrite: bool) -> None:
    """mergo.Merge / MergeWithOverwrite (0.3.12) over map[string]interface{} values."""
    for k, sv in src.items():
        if sv is None:
            if overwrite:
                dst[k] = None
            continue
        dv = dst.get(k, MISSING)
        if isinstance(sv, dict):
            if isinstance(dv, dict):
                merge_into(dv, sv, overwrite)
        elif isinstance(sv, list):
            dslice = [] if dv is MISSING or dv is None else dv
            if src and (overwrite or not dst):
                dslice = sv
            dst[k] = dslice
        if dv is not MISSING and not _is_empty_value(dv) and isinstance(sv, (dict, list)):
            continue
        if overwrite or dv is MISSING or _is_empty_value(dv):
            dst[k] = sv


def _merge(overwrite: bool, must: bool) -> Any:
    def impl(dst: dict, *srcs: dict) -> Any:
        for src in srcs:
            if type(dst) is NilMap and src:
                dst = {}
            merge_into(dst, src, overwrite)
        return dst

    return impl


fn(FUNCS, "merge", (MAP,), variadic=MAP)(_merge(False, False))
fn(FUNCS, "mustMerge", (MAP,), variadic=MAP)(_merge(False, True))
fn(FUNCS, "mergeOverwrite", (MAP,), variadic=MAP)(_merge(True, False))
fn(FUNCS, "mustMergeOverwrite", (MAP,), variadic=MAP)(_merge(True, True))


@fn(FUNCS, "values", (MAP,), returns="[]interface {}")
def values(d: dict) -> list:
    return [d[k] for k in sorted(d)]


def deep_copy(v: Any) -> Any:
    if v is None or v is MISSING:
        # copystructure calls reflect.Value.Type on the zero Value and panics
        raise GoError("reflect: call of reflect.Value.Type on zero Value")
    return copy.deepcopy(v)


fn(FUNCS, "deepCopy", (ANY,))(deep_copy)
fn(FUNCS, "mustDeepCopy", (ANY,))(deep_copy)


def _iface_conv(v: Any, want: str) -> GoError:
    got = "nil" if v is None or v is MISSING else type_name(v)
    return GoError(f"interface conversion: interface {{}} is {got}, not {want}")


@fn(FUNCS, "dig", (), variadic=ANY)
def dig(*ps: Any) -> Any:
    if len(ps) < 3:
        raise GoError("dig needs at least three arguments")
    d = ps[-1]
    if type(d) is not dict and type(d) is not NilMap:
        raise _iface_conv(d, "map[string]interface {}")
    default = ps[-2]
    ks = []
    for k in ps[:-2]:
        if type(k) is not str:
            raise _iface_conv(k, "string")
        ks.append(k)
    while True:
        k, ks = ks[0], ks[1:]
        if k not in d:
            return default
        step = d[k]
        if not ks:
            return step
        if type(step) is not dict:
            raise _iface_conv(step, "map[string]interface {}")
        d = step
