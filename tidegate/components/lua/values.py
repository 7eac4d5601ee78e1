"""The values a Lua script handles: krakend-lua's ``luaTable``, ``luaList`` and ``luaNil``.

They wrap the request's own Python data (a response's ``data`` dict, a header list), so a
script's ``set`` changes what the gateway answers, as krakend-lua's ``*lua.Table`` does. The
conversions are krakend-lua's (``types.go``): a native Lua table stored with ``set`` becomes an
object with stringified keys, nested tables whose keys are all integers become arrays, whole
numbers become integers, ``nil`` stores nothing.

Lua sees these objects as userdata and may call only the methods listed in ``METHODS`` (the
runtime's attribute filter refuses every other attribute of every Python object). A method
called with Lua's colon syntax (``t:get(k)``) gets only ``k``: lupa drops the object itself.
"""

from __future__ import annotations

import math
from typing import Any

from tidegate.golang.floats import format_v


class ScriptError(Exception):
    """An error a helper raises into the script (krakend-lua's Go errors: "need arguments")."""


NEED_ARGUMENTS = "need arguments"
RESPONSE_EXPECTED = "response expected"


def go_number(n: float) -> str:
    """gopher-lua's ``LNumber.String``: whole numbers as int64, the rest as Go's ``%v``."""
    if isinstance(n, int):
        return str(n)
    if n.is_integer() and -2**63 <= n < 2**63:
        return str(int(n))
    return format_v(n)


def go_string(v: Any) -> str:
    """``LValue.String()`` of a script's argument (what krakend-lua's ``c.Arg(n).String()``
    reads)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return go_number(v)
    if v is None:
        return "nil"
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def go_int(v: Any) -> int:
    """``int(c.Arg(n).Number())``: a string that is a number counts, anything else is 0."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) else 0
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return 0
        return int(f) if math.isfinite(f) else 0
    return 0


class LuaNil:
    """``luaNil``: JSON null inside a table (truthy in Lua, as a userdata is)."""

    __slots__ = ()


NIL = LuaNil()


class LuaTable:
    """``luaTable``: a view on a JSON object (a Python dict shared with the gateway)."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, *args: Any) -> Any:
        if len(args) != 1:
            raise ScriptError(NEED_ARGUMENTS)
        key = go_string(args[0])
        if key not in self.data:
            return None
        return to_lua(self.data[key])

    def set(self, *args: Any) -> None:
        if len(args) != 2:
            raise ScriptError(NEED_ARGUMENTS)
        value, ok = from_lua_top(args[1])
        if ok:
            self.data[go_string(args[0])] = value

    def len(self, *args: Any) -> int:
        return len(self.data)

    def del_(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(NEED_ARGUMENTS)
        self.data.pop(go_string(args[0]), None)

    def keys(self, *args: Any) -> LuaList:
        return LuaList(sorted(self.data))

    def keyExists(self, *args: Any) -> bool:
        if len(args) != 1:
            raise ScriptError(NEED_ARGUMENTS)
        return go_string(args[0]) in self.data


class LuaList:
    """``luaList``: a view on a JSON array (indexes start at 0, as krakend-lua's)."""

    __slots__ = ("data",)

    def __init__(self, data: list[Any]) -> None:
        self.data = data

    def get(self, *args: Any) -> Any:
        if len(args) != 1:
            raise ScriptError(NEED_ARGUMENTS)
        index = go_int(args[0])
        if index < 0 or index >= len(self.data):
            return None
        return to_lua(self.data[index])

    def set(self, *args: Any) -> None:
        if len(args) != 2:
            raise ScriptError(NEED_ARGUMENTS)
        index = go_int(args[0])
        if index < 0:
            return
        if index >= len(self.data):
            self.data.extend([None] * (index + 1 - len(self.data)))
        value, ok = from_lua_top(args[1])
        if ok:
            self.data[index] = value

    def len(self, *args: Any) -> int:
        return len(self.data)

    def del_(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptError(NEED_ARGUMENTS)
        index = go_int(args[0])
        if 0 <= index < len(self.data):
            del self.data[index]


# Lua calls ``t:del(k)``: "del" is no Python keyword issue, but `del_` keeps the class readable.
METHODS: dict[type, frozenset[str]] = {
    LuaTable: frozenset({"get", "set", "len", "del", "keys", "keyExists"}),
    LuaList: frozenset({"get", "set", "len", "del"}),
    LuaNil: frozenset(),
}
RENAMED = {"del": "del_"}


def to_lua(value: Any) -> Any:
    """A JSON value as krakend-lua pushes it: scalars native, containers wrapped."""
    if isinstance(value, dict):
        return LuaTable(value)
    if isinstance(value, list):
        return LuaList(value)
    if value is None:
        return NIL
    return value


def _number(v: int | float) -> int | float:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return int(v)
    return v


def from_lua_top(value: Any) -> tuple[Any, bool]:
    """What ``set`` stores (krakend-lua's tableSet): (value, whether anything is stored)."""
    if isinstance(value, bool | str):
        return value, True
    if isinstance(value, int | float):
        return _number(value), True
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace"), True
    if isinstance(value, LuaTable | LuaList):
        return value.data, True
    if isinstance(value, LuaNil):
        return None, True
    if _is_lua_table(value):
        return _table_to_map(value), True
    return None, False


def _is_lua_table(value: Any) -> bool:
    return type(value).__name__ == "_LuaTable"


def _table_to_map(table: Any) -> dict[str, Any]:
    """krakend-lua's ParseToTable over every pair: keys stringified, values converted."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = go_string(k)
        if isinstance(v, bool | str):
            out[key] = v
        elif isinstance(v, int | float):
            out[key] = _number(v)
        elif isinstance(v, bytes):
            out[key] = v.decode("utf-8", "replace")
        elif isinstance(v, LuaTable | LuaList):
            out[key] = v.data
        elif isinstance(v, LuaNil):
            out[key] = None
        elif _is_lua_table(v):
            out[key] = _maybe_list(_table_to_map(v))
    return out


def _maybe_list(m: dict[str, Any]) -> Any:
    """A nested map whose keys are all integers is an array, in key order (an empty one is
    Go's nil slice: JSON null)."""
    keys: list[tuple[int, str]] = []
    for k in m:
        try:
            keys.append((int(k), k))
        except ValueError:
            return m
    if not keys:
        return None
    return [m[k] for _, k in sorted(keys)]
