"""Reading a component section as Go's ``json.Unmarshal`` reads it into a struct.

Go matches object keys to struct fields case-insensitively (``"N"`` fills the field tagged
``n``) and the last matching key wins; ``null`` leaves the zero value. Where Go would fail to
unmarshal (a string where a bool belongs), KrakenD disables the component at run time (the
JWT signer then answers 401 to everything); tidegate refuses the configuration instead, with
the key's location.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tidegate.errors import ConfigValueError

Path = tuple[str | int, ...]


def go_fields(section: Any, names: Sequence[str], path: Path, what: str
              ) -> dict[str, tuple[Any, Path]]:
    """``{field: (value, JSON path of its key)}`` for the fields present and not null."""
    if not isinstance(section, Mapping):
        raise ConfigValueError(f"{what} must be an object", path=path)
    lowered = {n.lower(): n for n in names}
    out: dict[str, tuple[Any, Path]] = {}
    exact: set[str] = set()
    for key, value in section.items():
        name = key if key in names else lowered.get(str(key).lower())
        if name is None or (name in exact and key != name):
            continue
        if key == name:
            exact.add(name)
        if value is None:
            continue
        out[name] = (value, (*path, key))
    return out


def as_str(field: tuple[Any, Path]) -> str:
    value, path = field
    if not isinstance(value, str):
        raise ConfigValueError(f"must be a string, not {type_name(value)}", path=path)
    return value


def as_bool(field: tuple[Any, Path]) -> bool:
    value, path = field
    if not isinstance(value, bool):
        raise ConfigValueError(f"must be true or false, not {type_name(value)}", path=path)
    return value


def as_str_list(field: tuple[Any, Path]) -> tuple[str, ...]:
    value, path = field
    if not isinstance(value, list):
        raise ConfigValueError(f"must be an array of strings, not {type_name(value)}",
                               path=path)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigValueError(f"must be a string, not {type_name(item)}",
                                   path=(*path, i))
    return tuple(value)


def as_uint(field: tuple[Any, Path], bits: int = 64) -> int:
    value, path = field
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ConfigValueError(f"must be an integer from 0 to {(1 << bits) - 1}, not "
                               f"{value!r}", path=path)
    return int(value)


def as_number(field: tuple[Any, Path]) -> float:
    value, path = field
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigValueError(f"must be a number, not {type_name(value)}", path=path)
    return float(value)


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
