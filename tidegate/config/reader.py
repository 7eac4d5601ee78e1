"""Typed reads out of plain decoded data, errors collected with the JSON path of the key.

The first tool of two-stage parsing (`tidegate.config.model`, `tidegate.config.sections`): a
value of the wrong type is reported where it is written, never turned into a default silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.config.aliases import normalize_extra_config
from tidegate.config.durations import DurationError, parse_duration
from tidegate.config.weak import (
    WeakTypeError,
    describe_value,
    lift,
    to_bool,
    to_int,
    to_map,
    to_str,
)
from tidegate.errors import ConfigValueError, JsonPath

_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", list: "a list",
               dict: "an object"}

__all__ = ["Reader", "describe_value"]

_WEAK = {int: to_int, bool: to_bool, str: to_str}


class Reader:
    """Reads typed values out of one mapping, collecting errors with their JSON paths.

    ``weak=True`` reads as KrakenD decodes lura's structs (`tidegate.config.weak`): a value
    mapstructure would convert is converted, what it refuses is an error.
    """

    def __init__(self, data: Mapping[str, Any], path: JsonPath, errors: list[ConfigValueError],
                 *, weak: bool = False):
        self.data = data
        self.path = path
        self.errors = errors
        self.weak = weak

    def fail(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else (*self.path, key)
        self.errors.append(ConfigValueError(message, path=path))

    def get(self, key: str, kind: type, default: Any) -> Any:
        value = self.data.get(key, default)
        if key not in self.data or value is default:
            return default
        if self.weak and kind in _WEAK:
            try:
                return _WEAK[kind](value)
            except WeakTypeError as exc:
                self.fail(key, str(exc))
                return default
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()
            ):
                self.fail(key, f"expected an integer, got {describe_value(value)}")
                return default
            return int(value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(key, f"expected a number, got {describe_value(value)}")
                return default
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, "
                           f"got {describe_value(value)}")
            return default
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if self.weak and not isinstance(value, str):
            # time.Duration is an int64 to mapstructure: numbers (truncated) and booleans
            # are nanoseconds.
            try:
                value = to_int(value)
            except WeakTypeError:
                self.fail(key, 'expected a duration string such as "2s", got '
                               f"{describe_value(value)}")
                return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.fail(key, f'expected a duration string such as "2s", got {describe_value(value)}')
            return default
        if isinstance(value, int):
            # KrakenD (viper) reads a bare number as nanoseconds (a Go int64).
            if value < 0:
                self.fail(key, f"a negative duration is not allowed: {value}")
                return default
            if value >= 1 << 63:
                self.fail(key, f"duration {value} ns overflows Go's time.Duration (int64)")
                return default
            return value / 1e9
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            self.fail(key, f'{exc} (expected a duration such as "1m30s", "150ms", "2h")')
            return default
        if seconds < 0:
            self.fail(key, f"a negative duration is not allowed: {value!r}")
            return default
        return seconds

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if self.weak:
            value = lift(value)  # one string where lura's struct has a list: a list of one
        if not isinstance(value, list):
            self.fail(key, f"expected a list of strings, got {describe_value(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            if self.weak:
                try:
                    out.append(to_str(item))
                except WeakTypeError as exc:
                    self.errors.append(ConfigValueError(str(exc), path=(*self.path, key, i)))
            elif not isinstance(item, str):
                self.errors.append(ConfigValueError(
                    f"expected a string, got {describe_value(item)}", path=(*self.path, key, i)))
            else:
                out.append(item)
        return tuple(out)

    def extra_config(self) -> tuple[Mapping[str, Any], dict[str, Any]]:
        """The ``extra_config`` of this level as written, and with legacy namespace names
        renamed to current ones (what every later stage reads)."""
        raw = self.mapping("extra_config")
        return raw, normalize_extra_config(raw)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if self.weak:
            try:
                value = to_map(value)
            except WeakTypeError as exc:
                self.fail(key, str(exc))
                return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected an object, got {describe_value(value)}")
            return {}
        return value

    def choice(self, key: str, allowed: frozenset[str], default: str) -> str:
        value = self.get(key, str, default)
        if value == "":
            return default
        if value not in allowed:
            self.fail(key, f"unknown {key} {value!r}: expected one of {', '.join(sorted(allowed))}")
            return default
        return value
