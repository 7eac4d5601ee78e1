"""fmt's ``%v`` (``fmt.Sprint``) of decoded values, as KrakenD prints them into parameters,
descriptions and map keys.

What a number prints as depends on how Go decoded it, so there is one function per decoding:
`sprint` for Go's own types (an int prints as an int, a float64 with ``%v``'s layout),
`sprint_float64` for ``json.Unmarshal`` into ``interface{}`` (every number is a float64:
``1000000`` prints ``1e+06``), `sprint_json_numbers` for a ``json.Decoder`` with
``UseNumber`` (every number prints as its literal). Maps print sorted as ``map[k:v]``, lists
as ``[a b]``, nil as ``<nil>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tidegate.golang.floats import format_json, format_v
from tidegate.golang.json_wire import GoNumber

__all__ = ["sprint", "sprint_float64", "sprint_json_numbers"]


def _sprint(value: Any, number: Callable[[Any], str]) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(_sprint(v, number) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_sprint(value[k], number)}" for k in sorted(value)) + "]"
    return str(value)


def _go_number(value: int | float) -> str:
    if isinstance(value, GoNumber):
        return value.literal
    if isinstance(value, float):
        return format_v(value)
    return str(int(value))


def _float64(value: int | float) -> str:
    return format_v(float(value))


def _json_number(value: int | float) -> str:
    # json_wire keeps a number as a GoNumber unless its literal is what format_json writes
    if isinstance(value, GoNumber):
        return value.literal
    if isinstance(value, float):
        return format_json(value)
    return str(int(value))


def sprint(value: Any) -> str:
    """``%v`` of a value of Go's own types (yaml.v3's keys: an int, a float64, a bool...)."""
    return _sprint(value, _go_number)


def sprint_float64(value: Any) -> str:
    """``%v`` of a value ``json.Unmarshal`` decoded into ``interface{}`` (KrakenD's config):
    every number is a float64."""
    return _sprint(value, _float64)


def sprint_json_numbers(value: Any) -> str:
    """``%v`` of a value a ``json.Decoder`` with ``UseNumber`` decoded (a backend's body): every
    number prints as its literal."""
    if isinstance(value, str):  # the common case, first
        return value
    return _sprint(value, _json_number)
