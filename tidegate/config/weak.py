"""KrakenD's weak typing: the conversions mapstructure makes with ``WeaklyTypedInput``.

KrakenD decodes its configuration into lura's structs with koanf, whose mapstructure decoder
runs weakly typed: ``"port": "8080"``, ``"concurrent_calls": true``, ``"version": "3"``,
``"is_collection": "true"`` or ``"host": "http://h:8081"`` (one string where the struct has a
list) all start a KrakenD. tidegate converts exactly as mapstructure does, for the attributes
lura's structs declare, and refuses what mapstructure refuses; `check -l` still flags every
such value, as KrakenD's schema does. Each function raises `WeakTypeError` with the words the
model reports.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# strconv.ParseBool
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# strconv.ParseInt(s, 0, 64): a sign, then a 0x/0o/0b prefix, a leading 0 (octal) or decimal;
# underscores only between digits (or after a prefix).
_GO_INT = re.compile(r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*"
                     r"|[1-9](_?[0-9])*)")


def describe_value(value: Any) -> str:
    """A value as errors show it: ``string 'x'``, ``number 3``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class WeakTypeError(ValueError):
    """A value mapstructure cannot convert either: KrakenD refuses to start."""


def to_int(value: Any) -> int:
    """decodeInt: numbers (floats truncated), booleans as 1/0, strings as ParseInt(s, 0)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise WeakTypeError(f"expected an integer, got {describe_value(value)}")
        return int(value)
    if isinstance(value, str):
        return parse_go_int(value)
    raise WeakTypeError(f"expected an integer, got {describe_value(value)}")


def parse_go_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64), "" read as 0 (mapstructure's weak rule)."""
    if text == "":
        return 0
    if not _GO_INT.fullmatch(text):
        raise WeakTypeError(f"expected an integer, got {describe_value(text)}")
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-").replace("_", "")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        number = int(digits, 8)
    else:
        number = int(digits, 0)
    number *= sign
    if not INT64_MIN <= number <= INT64_MAX:
        raise WeakTypeError(f"integer {text!r} out of range (64 bits)")
    return number


def to_bool(value: Any) -> bool:
    """decodeBool: numbers are true unless 0, strings as ParseBool ("" is false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE or value == "":
            return False
    raise WeakTypeError(f"expected a boolean, got {describe_value(value)}")


def to_str(value: Any) -> str:
    """decodeString: booleans as "1"/"0", numbers as Go prints them (no exponent)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return format(Decimal(repr(value)).normalize(), "f")  # FormatFloat(f, 'f', -1, 64)
    raise WeakTypeError(f"expected a string, got {describe_value(value)}")


def lift(value: Any) -> list[Any]:
    """decodeSlice: a list as is, an empty object as [], any other value as a list of one."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and not value:
        return []
    return [value]


def to_map(value: Any) -> dict[str, Any]:
    """decodeMap: an object as is, an empty list as {}, a list of objects merged in order."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(item)
        return merged
    raise WeakTypeError(f"expected an object, got {describe_value(value)}")
