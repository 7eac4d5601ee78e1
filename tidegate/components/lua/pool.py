"""The worker's Lua states (one per flavour) and the helpers every environment gets.

States are created on first use in the process that serves (never in the supervisor's trial
build) and kept across generations: their chunk cache is keyed by source text, so a reload
that keeps a script keeps its compiled chunk, and a changed script compiles once.
"""

from __future__ import annotations

from typing import Any

from tidegate.components.lua.engine import Runtime
from tidegate.components.lua.values import (
    NEED_ARGUMENTS,
    NIL,
    LuaList,
    LuaNil,
    LuaTable,
    ScriptError,
    go_int,
    go_number,
    go_string,
)


class CustomError(Exception):
    """``custom_error(msg [, status [, content_type]])``: krakend-lua's ErrInternal (no
    status) or ErrInternalHTTP (status, optional Content-Type)."""

    def __init__(self, message: str, status: int | None, content_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.content_type = content_type


def custom_error(*args: Any) -> None:
    if not args:
        raise ScriptError(NEED_ARGUMENTS)
    message = go_string(args[0])
    if len(args) == 1:
        raise CustomError(message, None, "")
    status = go_int(args[1])
    if status == -1:
        raise CustomError(message, None, "")
    raise CustomError(message, status, go_string(args[2]) if len(args) > 2 else "")


def _table_new(*args: Any) -> LuaTable:
    return LuaTable({})


def _list_new(*args: Any) -> LuaList:
    return LuaList([])


def _nil_new(*args: Any) -> LuaNil:
    return NIL


def _http_new(*args: Any) -> None:
    raise ScriptError("http_response.new is not supported by tidegate: a blocking HTTP call "
                      "would stall every request of the worker")


def _number_text(n: Any) -> str:
    return go_number(n) if isinstance(n, int | float) else go_string(n)


API = {
    "table_new": _table_new,
    "list_new": _list_new,
    "nil_new": _nil_new,
    "custom_error": custom_error,
    "http_new": _http_new,
    "number_text": _number_text,
}

_RUNTIMES: dict[bool, Runtime] = {}


def runtime(open_libs: bool) -> Runtime:
    """The worker's state of that flavour (created on first use)."""
    rt = _RUNTIMES.get(open_libs)
    if rt is None:
        rt = _RUNTIMES[open_libs] = Runtime(open_libs, API)
    return rt


def discard(open_libs: bool) -> None:
    """Forget a state that ran out of memory: the next request gets a new one."""
    _RUNTIMES.pop(open_libs, None)


def checker() -> Runtime:
    """A throwaway state to compile a section at parse time (parse may run in a thread)."""
    return Runtime(False, API)
