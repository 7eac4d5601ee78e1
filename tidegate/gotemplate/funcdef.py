"""How template functions are declared: Go parameter types drive argument checking.

text/template checks every argument against the Go signature of the function (``wrong type
for value; expected string; got int``, ``expected integer; found "x"``), so each Python
implementation carries the Go signature it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# parameter type specs (Go type strings); "rv" is reflect.Value (builtins)
ANY = "interface {}"
RV = "reflect.Value"
STRING = "string"
INT = "int"
INT64 = "int64"
UINT32 = "uint32"
FLOAT64 = "float64"
BOOL = "bool"
LIST = "[]interface {}"
MAP = "map[string]interface {}"
STRLIST = "[]string"
TIME = "time.Time"


class GoError(Exception):
    """An error value returned by a Go function (shown as ``error calling f: <text>``)."""


class GoFunc:
    """A template function: implementation plus Go signature."""

    __slots__ = ("builtin", "impl", "name", "params", "returns", "variadic")

    def __init__(self, name: str, impl: Callable[..., Any], params: tuple[str, ...] = (),
                 variadic: str | None = None, returns: str = ANY, builtin: bool = False) -> None:
        self.name = name
        self.impl = impl
        self.params = params
        self.variadic = variadic
        self.returns = returns
        self.builtin = builtin


def fn(table: dict[str, GoFunc], name: str, params: tuple[str, ...] = (),
       variadic: str | None = None, returns: str = ANY) -> Callable[[Callable[..., Any]],
                                                                   Callable[..., Any]]:
    """Decorator registering `impl` under `name` in `table`."""

    def deco(impl: Callable[..., Any]) -> Callable[..., Any]:
        table[name] = GoFunc(name, impl, params, variadic, returns)
        return impl

    return deco


def alias(table: dict[str, GoFunc], new: str, old: str) -> None:
    """Register `old` under another name too (``tuple`` = ``list``)."""
    f = table[old]
    table[new] = GoFunc(new, f.impl, f.params, f.variadic, f.returns)
