"""What a schema leaves open, learned from the bodies it accepts, as msgspec types.

The one-pass decode (`jsonschema_onepass`) skips what the schema does not name: members of an
open object and values of an untyped schema. It skips them without checking their numbers
(or their UTF-8), so a body with anything skipped must be scanned whole (~13,000 instructions
for 1 KiB, more than half of the decode). Clients send the same shape again and again: the
members the schema leaves open are learned from valid bodies (their names, and the kinds of
their values: string, number, boolean, null, array, object), and a second decoder types them
as well, with every object closed over its names. A body that decodes into those types has
nothing skipped: everything was read and checked as `reads_all` reads a closed schema's body,
so no scan is needed. Anything else (a new member, another kind of value) goes the first way
and may be learned. What is learned only widens what the second decoder reads in full; what
it accepts is still only what the schema accepts, so learning never changes a verdict.

Bounded: at most `MEMBERS` names per object, `NODES` shapes in all, `DEPTH` levels; past
them nothing more is learned.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

SAFE_INT = 2**53
MEMBERS = 32
NODES = 256
DEPTH = 8
# A number read in full: integers within ±2**53 (Go's decoder makes them floats, exactly),
# else a float, which msgspec refuses exactly where Go's decoder overflows.
NUMBER: Any = Annotated[int, msgspec.Meta(ge=-SAFE_INT, le=SAFE_INT)] | float
# The value of a shape never seen: only `[]`, a value any schema position here accepts.
NOTHING: Any = Annotated[list[bool], msgspec.Meta(max_length=0)]
Path = tuple[str | None, ...]  # member names; None for an array's items
# What msgspec refuses in a field's name (`rename`): such a member is not learned, else the
# learned decoder could not be built at all
_UNNAMEABLE = re.compile(r'["\\\x00-\x1f]')


class Shape:
    """The kinds of value seen at one place of a body."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()  # "string", "number", "boolean", "null"
        self.items: Shape | None = None  # an array's elements, once an array was seen
        self.members: dict[str, Shape] | None = None  # an object's, once one was seen


class Learned:
    """The shapes seen where a schema leaves a body open, by the place's path."""

    def __init__(self) -> None:
        self.values: dict[Path, Shape] = {}  # untyped schema positions
        self.extra: dict[Path, dict[str, Shape]] = {}  # members an open object does not name
        self.nodes = 0
        self.full = False  # a bound was reached: nothing more is learned

    def value(self, path: Path, value: Any) -> bool:
        """Learn `value` at an untyped position; whether anything new was learned."""
        shape = self.values.get(path)
        if shape is None:
            shape = self.values[path] = self._shape()
        return self._add(shape, value, len(path))

    def member(self, path: Path, name: str, value: Any) -> bool:
        """Learn member `name` of the open object at `path`."""
        members = self.extra.setdefault(path, {})
        shape = members.get(name)
        if shape is None:
            if _UNNAMEABLE.search(name) is not None:
                return False
            if len(members) >= MEMBERS:
                self.full = True
                return False
            shape = members[name] = self._shape()
        return self._add(shape, value, len(path))

    def _shape(self) -> Shape:
        self.nodes += 1
        if self.nodes > NODES:
            self.full = True
        return Shape()

    def _add(self, shape: Shape, value: Any, depth: int) -> bool:
        if self.full or depth > DEPTH:
            self.full = True
            return False
        kind = type(value)
        if kind is str:
            return _kind(shape, "string")
        if kind is bool:
            return _kind(shape, "boolean")
        if kind is int or kind is float:
            return _kind(shape, "number")
        if value is None:
            return _kind(shape, "null")
        new = False
        if kind is list:
            if shape.items is None:
                shape.items, new = self._shape(), True
            for item in value:
                new = self._add(shape.items, item, depth + 1) or new
            return new
        if kind is dict:
            if shape.members is None:
                shape.members, new = {}, True
            for name, member in value.items():
                sub = shape.members.get(name)
                if sub is None:
                    if _UNNAMEABLE.search(name) is not None:
                        continue  # not learned: a body with it is not read by the types
                    if len(shape.members) >= MEMBERS:
                        self.full = True
                        return False
                    sub = shape.members[name] = self._shape()
                    new = True
                new = self._add(sub, member, depth + 1) or new
            return new
        self.full = True  # not a JSON value: learn nothing more
        return False


def _kind(shape: Shape, kind: str) -> bool:
    if kind in shape.kinds:
        return False
    shape.kinds.add(kind)
    return True


class Typer:
    """msgspec types for learned shapes; objects are closed structs named `Learned<n>`."""

    def __init__(self) -> None:
        self._structs = 0

    def of(self, shape: Shape | None) -> Any:
        if shape is None:
            return NOTHING
        parts: list[Any] = []
        if "string" in shape.kinds:
            parts.append(str)
        if "number" in shape.kinds:
            parts.append(NUMBER)
        if "boolean" in shape.kinds:
            parts.append(bool)
        if shape.items is not None:
            parts.append(self.array(shape.items))
        if shape.members is not None:
            parts.append(self.struct(shape.members))
        if "null" in shape.kinds:
            parts.append(None)
        if not parts:
            return NOTHING
        union = parts[0]
        for part in parts[1:]:
            union = union | part
        return union

    def array(self, items: Shape) -> Any:
        if not items.kinds and items.items is None and items.members is None:
            return NOTHING  # only empty arrays were seen
        return list[self.of(items)]  # type: ignore[misc]

    def struct(self, members: dict[str, Shape]) -> Any:
        fields = [(f"f{i}", self.of(shape) | msgspec.UnsetType, msgspec.UNSET)
                  for i, shape in enumerate(members.values())]
        rename = {f"f{i}": name for i, name in enumerate(members)}
        self._structs += 1
        return msgspec.defstruct(f"Learned{self._structs}", fields, kw_only=True,
                                 rename=rename, forbid_unknown_fields=True, gc=False)
