"""A JSON Schema compiled to plain Python checks, for the common keywords: the fast "is it
valid?" in front of jsonschema.

jsonschema's ``iter_errors`` walks a schema through its referencing and descend machinery:
about 200 µs for a 1 KiB body against a schema of a dozen keywords, four times the cost of the
whole proxied request. Most bodies are valid, and only an invalid one needs jsonschema's error
texts. So a schema made only of the keywords below is compiled once into nested closures that
answer valid or not; "not valid" (or a schema with any other keyword) goes to jsonschema as
before, which then words the errors. The checks mirror jsonschema's own keyword functions, and
they are used only where the validator class uses exactly those functions and the draft 6+
type checker (checked by identity at compile time): a draft or a keyword whose meaning differs
is never compiled. tests/test_jsonschema_fast.py compares the two over many schemas and bodies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import jsonschema._keywords as _kw
import jsonschema._legacy_keywords as _legacy
import jsonschema._types as _types

Check = Callable[[Any], bool]


class Unsupported(Exception):
    """The schema uses something this compiler does not mirror: jsonschema alone decides."""


def _is_number(x: Any) -> bool:
    return type(x) is int or type(x) is float  # type(True) is bool: not a number


_TRUE_KEY, _FALSE_KEY = object(), object()


def _unbool(x: Any) -> Any:
    if x is True:
        return _TRUE_KEY
    if x is False:
        return _FALSE_KEY
    return x


def equal(one: Any, two: Any) -> bool:
    """jsonschema's ``_utils.equal`` on JSON values: bools are not numbers, 1 == 1.0."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(equal(one[k], two[k]) for k in one)
    if isinstance(one, list | dict) or isinstance(two, list | dict):
        return False
    return bool(_unbool(one) == _unbool(two))


# keyword → the jsonschema function whose meaning the compiled check mirrors
MIRRORED: dict[str, tuple[Any, ...]] = {
    "type": (_kw.type,), "properties": (_kw.properties,), "required": (_kw.required,),
    "additionalProperties": (_kw.additionalProperties,),
    "items": (_kw.items, _legacy.items_draft6_draft7_draft201909),
    "minItems": (_kw.minItems,), "maxItems": (_kw.maxItems,),
    "minLength": (_kw.minLength,), "maxLength": (_kw.maxLength,),
    "minimum": (_kw.minimum,), "maximum": (_kw.maximum,),
    "exclusiveMinimum": (_kw.exclusiveMinimum,), "exclusiveMaximum": (_kw.exclusiveMaximum,),
    "enum": (_kw.enum,), "const": (_kw.const,), "pattern": (_kw.pattern,),
    "format": (_kw.format,),  # an annotation only: the validator has no format checker
}


def mirrorable(validator: jsonschema.protocols.Validator) -> bool:
    """Whether a fast path may stand for `validator`: the draft's own type checker (which
    the mirrors' type tests copy) and no format checker (formats stay annotations)."""
    return (type(validator).TYPE_CHECKER is _types.draft6_type_checker
            and validator.format_checker is None)


def compile_validator(validator: jsonschema.protocols.Validator) -> Check | None:
    """``valid(instance)`` for `validator`'s schema, or None when it cannot be mirrored."""
    if not mirrorable(validator):
        return None
    gen = _Generator(type(validator).VALIDATORS)
    try:
        gen.schema(validator.schema, "x", 2)
        # The builtins as arguments' defaults: read as locals. A required key is read without
        # a test: its absence is the KeyError (try costs nothing until something raises).
        text = (f"def valid(x, {_LOCALS}):\n    try:\n" + "\n".join(gen.lines)
                + "\n        return True\n    except KeyError:\n        return False\n")
        namespace: dict[str, Any] = {"equal": equal, **gen.constants}
        exec(compile(text, "<json-schema>", "exec"), namespace)
    except (Unsupported, SyntaxError, RecursionError, MemoryError):
        return None  # also a schema nested deeper than Python's block limit
    return namespace["valid"]  # type: ignore[no-any-return]


_LOCALS = "type=type, len=len, dict=dict, list=list, str=str, int=int, float=float, bool=bool"
# one type() per test; type(True) is bool: not a number
_NUMBER = "((_t := type({v})) is int or _t is float)"
_TYPE_TESTS = {
    "object": "type({v}) is dict", "array": "type({v}) is list", "string": "type({v}) is str",
    "boolean": "type({v}) is bool", "null": "{v} is None", "number": _NUMBER,
    # draft 6+: a float with no fractional part is an integer too
    "integer": "((_t := type({v})) is int or (_t is float and {v}.is_integer()))",
}
# what the other keywords may assume after a passed single "type"
_KNOWN = {"object": "dict", "array": "list", "string": "str", "number": "number",
          "integer": "number", "boolean": "bool", "null": "null"}


class _Generator:
    """One Python function, the checks inlined (a call per keyword would cost more than the
    checks): each schema's code tests variable ``v`` and returns False on a violation."""

    def __init__(self, keywords: dict[str, Any]) -> None:
        self.keywords = keywords
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.known: dict[str, str] = {}  # variable -> its type, checked before ("dict", ...)
        self.present: dict[str, frozenset[str]] = {}  # variable -> keys it was checked to have
        self._names = 0

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def const(self, value: Any) -> str:
        name = self.name("_c")
        self.constants[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def fail_if(self, depth: int, condition: str) -> None:
        self.emit(depth, f"if {condition}: return False")

    def schema(self, schema: Any, v: str, depth: int) -> None:
        if schema is True:
            return
        if schema is False:
            self.emit(depth, "return False")
            return
        if type(schema) is not dict:
            raise Unsupported("not a schema")
        keys = [k for k in schema if k in self.keywords]  # others: annotations, as jsonschema
        for key in keys:
            if self.keywords[key] not in MIRRORED.get(key, ()):
                raise Unsupported(key)
        # One type first: the other keywords then know it (the checks only answer together,
        # so their order is free).
        single = schema.get("type") if "type" in keys else None
        if type(single) is str and single in _KNOWN:
            self.k_type(single, schema, v, depth)
            self.known[v] = _KNOWN[single]
            keys.remove("type")
            required = schema.get("required")
            if single == "object" and "required" in keys and type(required) is list:
                # an object with these keys: `properties` reads them without a test (a
                # missing one raises KeyError, which answers False); the others are tested
                if not all(type(n) is str for n in required):
                    raise Unsupported("required")
                properties = schema.get("properties") if "properties" in keys else None
                read = frozenset(properties) if type(properties) is dict else frozenset()
                self.k_required([n for n in required if n not in read], schema, v, depth)
                self.present[v] = frozenset(required)
                keys.remove("required")
        for key in keys:
            if key != "format":
                getattr(self, "k_" + key)(schema[key], schema, v, depth)

    def guard(self, v: str, kind: str) -> str | None:
        """The test that `v` is of `kind` (dict, list, str, number) before a keyword of that
        kind: "" when its type is known to be so, None when known not to be (the keyword
        never applies)."""
        known = self.known.get(v)
        if known is None:
            return (_NUMBER if kind == "number" else f"type({{v}}) is {kind}").format(v=v)
        return "" if known == kind else None

    def fail_unless_kind(self, depth: int, v: str, kind: str, condition: str) -> None:
        """Fail if `v` is of `kind` and `condition` holds."""
        test = self.guard(v, kind)
        if test is not None:
            self.fail_if(depth, f"{test} and ({condition})" if test else condition)

    # -- keywords (each mirrors jsonschema._keywords.<name>) ---------------------------------

    def k_type(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        names = value if type(value) is list else [value]
        if not names or not all(type(n) is str and n in _TYPE_TESTS for n in names):
            raise Unsupported("type")
        self.fail_if(depth, "not (" + " or ".join(_TYPE_TESTS[n].format(v=v) for n in names)
                     + ")")

    def k_properties(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        if type(value) is not dict:
            raise Unsupported("properties")
        test = self.guard(v, "dict")
        if test is None:  # never applies; still compiled: an unsupported one is not mirrored
            mark = len(self.lines)
            for sub in value.values():
                self.schema(sub, self.name("v"), depth)
            del self.lines[mark:]
            return
        if test:
            self.emit(depth, f"if {test}:")
            depth += 1
        mark = len(self.lines)
        present = self.present.get(v, frozenset())
        for prop, sub in value.items():
            inner = self.name("v")
            if prop in present:
                self.emit(depth, f"{inner} = {v}[{prop!r}]")
                self.schema(sub, inner, depth)
                continue
            self.emit(depth, f"if {prop!r} in {v}:")
            self.emit(depth + 1, f"{inner} = {v}[{prop!r}]")
            self.schema(sub, inner, depth + 1)
        if len(self.lines) == mark:
            self.emit(depth, "pass")

    def k_required(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        if type(value) is not list or not all(type(n) is str for n in value):
            raise Unsupported("required")
        if value:
            missing = " or ".join(f"{n!r} not in {v}" for n in value)
            self.fail_unless_kind(depth, v, "dict", missing)

    def k_additionalProperties(self, value: Any, schema: dict[str, Any], v: str, depth: int
                               ) -> None:
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        known = schema.get("properties", {})
        if type(known) is not dict:
            raise Unsupported("properties")
        names = self.const(frozenset(known))
        if value is False:
            self.fail_unless_kind(depth, v, "dict", f"not {names}.issuperset({v})")
            return
        key, item = self.name("k"), self.name("v")
        test = self.guard(v, "dict")
        if test:
            self.emit(depth, f"if {test}:")
            depth += 1
        self.emit(depth, f"for {key}, {item} in {v}.items():")
        self.emit(depth + 1, f"if {key} not in {names}:")
        mark = len(self.lines)
        self.schema(value, item, depth + 2)
        if len(self.lines) == mark:
            self.emit(depth + 2, "pass")
        if test is None:  # never applies: the code only had to compile
            del self.lines[mark - 2:]

    def k_items(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        if (type(value) is not dict and type(value) is not bool) or "prefixItems" in schema:
            raise Unsupported("items")  # the tuple forms
        item = self.name("v")
        test = self.guard(v, "list")
        start = len(self.lines)
        if test:
            self.emit(depth, f"if {test}:")
            depth += 1
        self.emit(depth, f"for {item} in {v}:")
        mark = len(self.lines)
        self.schema(value, item, depth + 1)
        if len(self.lines) == mark:
            self.emit(depth + 1, "pass")
        if test is None:  # never applies: the code only had to compile
            del self.lines[start:]

    @staticmethod
    def _count(value: Any, name: str) -> int:
        if type(value) is not int:
            raise Unsupported(name)
        return int(value)

    def k_minItems(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self.fail_unless_kind(depth, v, "list", f"len({v}) < {self._count(value, 'n')}")

    def k_maxItems(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self.fail_unless_kind(depth, v, "list", f"len({v}) > {self._count(value, 'n')}")

    def k_minLength(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self.fail_unless_kind(depth, v, "str", f"len({v}) < {self._count(value, 'n')}")

    def k_maxLength(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self.fail_unless_kind(depth, v, "str", f"len({v}) > {self._count(value, 'n')}")

    def _bound(self, value: Any, v: str, depth: int, op: str) -> None:
        if not _is_number(value):
            raise Unsupported("bound")
        literal = repr(value) if type(value) is int or math.isfinite(value) else self.const(value)
        self.fail_unless_kind(depth, v, "number", f"{v} {op} {literal}")

    def k_minimum(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self._bound(value, v, depth, "<")

    def k_maximum(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self._bound(value, v, depth, ">")

    def k_exclusiveMinimum(self, value: Any, schema: dict[str, Any], v: str, depth: int
                           ) -> None:
        self._bound(value, v, depth, "<=")

    def k_exclusiveMaximum(self, value: Any, schema: dict[str, Any], v: str, depth: int
                           ) -> None:
        self._bound(value, v, depth, ">=")

    def k_enum(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        if type(value) is not list:
            raise Unsupported("enum")
        if value and all(type(m) is str for m in value):
            # equal() of a string is ==, and only to another string
            self.fail_if(depth, f"not (type({v}) is str and {v} in "
                                f"{self.const(frozenset(value))})")
            return
        members = self.const(tuple(value))
        self.fail_if(depth, f"not any(equal(m, {v}) for m in {members})")

    def k_const(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        self.fail_if(depth, f"not equal({v}, {self.const(value)})")

    def k_pattern(self, value: Any, schema: dict[str, Any], v: str, depth: int) -> None:
        if type(value) is not str:
            raise Unsupported("pattern")
        try:
            search = re.compile(value).search  # jsonschema: re.search(pattern, instance)
        except re.error:
            raise Unsupported("pattern") from None
        self.fail_unless_kind(depth, v, "str", f"{self.const(search)}({v}) is None")
