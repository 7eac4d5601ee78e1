"""Reading one component's raw ``extra_config`` section into typed values, errors at the key.

KrakenD's getters skip a value of the wrong type silently (a string where a list is expected
leaves the option at its default); tidegate refuses it with the path of the key, so a typo in
a protection never weakens it unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.errors import ConfigValueError, JsonPath


class Section:
    """A raw section (must be a JSON object) and its path."""

    __slots__ = ("path", "raw")

    def __init__(self, raw: Any, path: JsonPath, namespace: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigValueError(f"{namespace} must be an object", path=path)
        self.raw: Mapping[str, Any] = raw
        self.path = path

    def error(self, message: str, *key: str | int) -> ConfigValueError:
        """A config error located at the section's ``key``."""
        return ConfigValueError(message, path=(*self.path, *key))

    def bool(self, key: str, default: bool = False) -> bool:
        """A JSON boolean."""
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{key} must be true or false", key)
        return value

    def string(self, key: str, default: str = "") -> str:
        """A JSON string."""
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise self.error(f"{key} must be a string", key)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A JSON array of strings (absent: empty)."""
        value = self.raw.get(key, [])
        if not isinstance(value, list):
            raise self.error(f"{key} must be a list of strings", key)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}] must be a string", key, i)
        return tuple(value)

    def integer(self, key: str, default: int = 0, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        """A JSON number with no fractional part (KrakenD reads numbers as float64)."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise self.error(f"{key} must be an integer", key)
        value = int(value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None \
                else f"at least {minimum}"
            raise self.error(f"{key} must be {bounds} (got {value})", key)
        return value

    def string_map(self, key: str) -> tuple[tuple[str, str], ...]:
        """A JSON object of strings, as (key, value) pairs in file order."""
        value = self.raw.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(f"{key} must be an object of strings", key)
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"{key}.{k} must be a string", key, k)
        return tuple(value.items())
