"""Python stand-ins for the Go types a template can see.

Go's text/template is driven by reflection, and many observable results (``%T``, error texts,
``eq`` rules, JSON numbers being float64) depend on the *Go type* of a value.  Plain Python
values map to the common Go types; small subclasses mark the rarer ones:

=================  ==========================
Python             Go
=================  ==========================
None               nil (untyped / nil interface)
bool               bool
int                int
I64                int64
float              float64
complex            complex128
str                string (bytes kept via ``surrogateescape``)
list               []interface {}
StrList / IntList  []string / []int
ListList           [][]interface {}
dict               map[string]interface {}
StrMap             map[string]string
NilMap             nil map[string]interface {} (a ``null`` settings file)
GoObject           structs / pointers with methods (time.Time, semver...)
=================  ==========================

``MISSING`` is Go's invalid ``reflect.Value`` (a missing map key, the result of a nil pipeline):
it prints ``<no value>``, unlike a nil interface which prints ``<nil>`` inside containers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _Missing:
    """Go's zero ``reflect.Value``: no value at all."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class I64(int):
    """Go int64 (results of Sprig's integer math)."""

    __slots__ = ()


class StrList(list):
    """Go []string."""

    __slots__ = ()


class IntList(list):
    """Go []int."""

    __slots__ = ()


class ListList(list):
    """Go [][]interface {} (Sprig's chunk)."""

    __slots__ = ()


class StrMap(dict):
    """Go map[string]string (Sprig's split)."""

    __slots__ = ()


class NilMap(dict):
    """A nil map[string]interface {}: behaves as empty, marshals to null."""

    __slots__ = ()


class GoObject:
    """Base of Go structs/pointers exposed to templates; subclasses declare their Go type.

    ``go_methods`` names the zero-argument methods reachable as ``.Name``; ``go_fields`` the
    exported struct fields, in declaration order (for ``%v`` printing).
    """

    go_type = "struct {}"
    go_kind = "struct"
    go_methods: frozenset[str] = frozenset()
    go_results: dict[str, int] = {}  # methods with several results
    go_fields: tuple[str, ...] = ()

    def go_string(self) -> str | None:
        """The String() method result, or None if the type is not a fmt.Stringer."""
        return None

    def call_method(self, name: str, args: list[Any]) -> Any:
        return getattr(self, "m_" + name)(*args)

    def method_impl(self, name: str, errorf: Callable[[str], Any]) -> Callable[..., Any]:
        """The callable behind a method; Go refuses to call methods with several results."""
        n = self.go_results.get(name)
        if n:
            return lambda *a: errorf(f'can\'t call method/function "{name}" with {n} results')
        return lambda *a: self.call_method(name, list(a))

    def method_arity(self, name: str) -> tuple[list[str], bool]:
        """Parameter Go types of a method (all methods here take no arguments)."""
        return [], False


_SIMPLE_TYPES: dict[type, str] = {
    bool: "bool",
    int: "int",
    I64: "int64",
    float: "float64",
    complex: "complex128",
    str: "string",
    list: "[]interface {}",
    StrList: "[]string",
    IntList: "[]int",
    ListList: "[][]interface {}",
    dict: "map[string]interface {}",
    StrMap: "map[string]string",
    NilMap: "map[string]interface {}",
}

_KINDS: dict[type, str] = {
    bool: "bool",
    int: "int",
    I64: "int64",
    float: "float64",
    complex: "complex128",
    str: "string",
    list: "slice",
    StrList: "slice",
    IntList: "slice",
    ListList: "slice",
    dict: "map",
    StrMap: "map",
    NilMap: "map",
}

LIST_TYPES = (list, StrList, IntList, ListList)
MAP_TYPES = (dict, StrMap, NilMap)
INT_TYPES = (int, I64)


def type_name(v: Any) -> str:
    """Go's reflect.Type.String() of a value (``<nil>`` for nil)."""
    if v is None or v is MISSING:
        return "<nil>"
    t = _SIMPLE_TYPES.get(type(v))
    if t is not None:
        return t
    if isinstance(v, GoObject):
        return v.go_type
    return type(v).__name__


def kind(v: Any) -> str:
    """Go's reflect.Kind name (``invalid`` for nil)."""
    if v is None or v is MISSING:
        return "invalid"
    k = _KINDS.get(type(v))
    if k is not None:
        return k
    if isinstance(v, GoObject):
        return v.go_kind
    return "invalid"


def elem_is_iface(container: Any) -> bool:
    """True when a container's elements are interface{} (so their static type is interface)."""
    t = type(container)
    return t is list or t is dict or t is NilMap or t is ListList


def elem_type_name(container: Any) -> str:
    """The Go element type of a list or map."""
    t = type(container)
    if t is StrList or t is StrMap:
        return "string"
    if t is IntList:
        return "int"
    if t is ListList:
        return "[]interface {}"
    return "interface {}"


def is_int(v: Any) -> bool:
    """Go integer kinds (bool is not one)."""
    t = type(v)
    return t is int or t is I64


def go_bytes(s: str) -> bytes:
    """The Go byte string behind a Python str."""
    return s.encode("utf-8", "surrogateescape")


def from_bytes(b: bytes) -> str:
    """A Python str holding Go bytes (invalid UTF-8 kept as lone surrogates)."""
    return b.decode("utf-8", "surrogateescape")


def byte_len(s: str) -> int:
    """len() of a Go string: its byte count."""
    if s.isascii():
        return len(s)
    return len(go_bytes(s))


def valid_utf8_text(s: str) -> str:
    """Replace undecodable bytes by U+FFFD, like Go's range-over-string / JSON encoding."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return go_bytes(s).decode("utf-8", "replace")
