"""A JSON Schema as msgspec types: a body that decodes into them is valid, found in one pass.

orjson's decode builds every value of a body as Python objects (~36,000 instructions for a
1 KiB order, compiled gateway) and the generated check (`jsonschema_fast`) then walks them
(~24,000). msgspec decodes into typed structures instead: the checks happen while the bytes
are read, members the schema does not name are skipped without building anything (~24,000
for both, plus ~13,000 for the scan below). It is used only to say "valid": a body it
refuses goes the usual way (orjson, the generated check, jsonschema's messages), so only
acceptance has to be right, and it must imply what the usual way decides. What makes that
hold:

* the types mirror jsonschema's keywords for one `type` each, with the same draft-6+ type
  checker and keyword functions as `jsonschema_fast` (checked by identity); anything else
  (several types, a keyword without a type, `$ref`, combinators...) is not compiled;
* integers are bounded to ±2**53 (a float of that size is exact: Go's decoder, which
  decides where orjson refuses a body, makes every number a float), and bounds must be too;
* msgspec skips what the schema does not name without checking it as orjson does: numbers
  that overflow a float and bytes that are not UTF-8. So only ASCII bodies are taken, and
  none where a digit is followed by an exponent or 309 digits follow one another (the only
  JSON numbers that can overflow): those go the usual way. One `translate` marks digits and
  exponents (~7 instructions a byte compiled, the floor of a C-level pass here: `re` and
  RE2 cost more) and one search finds a digit before an exponent; a run of 309 digits covers one
  index in 309, so only when one of those is a digit is the run searched for.

The scan is paid only until what the schema leaves open is learned (`jsonschema_shapes`): a
second decoder types those places as valid bodies had them and closes every object, so a body
of a known shape is read in full, nothing skipped, and needs no scan (decision 81).

`tests/test_jsonschema_onepass.py` compares acceptance with jsonschema on random schemas and
bodies, malformed and overflowing ones included; `tests/test_jsonschema_learned.py` does so
after learning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import jsonschema
import msgspec

from tidegate.components.jsonschema_fast import MIRRORED, Unsupported, mirrorable
from tidegate.components.jsonschema_shapes import Learned, Path, Typer

SAFE_INT = 2**53  # integers up to this size are the same as floats (Go's decoder)
# A number can overflow a float only with an exponent or with more than 308 digits. Digits
# become "0", exponents "e", every other byte 0: the search below skips over those.
_SIGNALS = bytes(48 if 48 <= c <= 57 else 101 if c in b"eE" else 0 for c in range(256))
_EXPONENT = b"0e"
_RUN = 309
_LONG_RUN = b"0" * _RUN

Accepts = Callable[[bytes], bool]


def compile_accepts(validator: jsonschema.protocols.Validator) -> Accepts | None:
    """``accepts(body)``: True only for a body the usual way finds valid; None when the
    schema is not mirrored."""
    if not mirrorable(validator):
        return None
    types = _Types(type(validator).VALIDATORS)
    try:
        decode = msgspec.json.Decoder(types.of(validator.schema)).decode
    except (Unsupported, TypeError, ValueError, RecursionError):
        return None
    failed = (msgspec.DecodeError, RecursionError)  # ValidationError is a DecodeError

    if not types.skips:
        # Every member is named and typed (`additionalProperties: false` throughout, no
        # untyped value): msgspec reads all of it as orjson would, nothing to scan.
        def reads_all(body: bytes) -> bool:
            try:
                decode(body)
            except failed:
                return False
            return True

        return reads_all

    learning = _Learning(validator)

    def accepts(body: bytes) -> bool:
        # What the schema leaves open, typed as learned (`jsonschema_shapes`): nothing skipped
        read_all = learning.decode
        if read_all is not None:
            try:
                read_all(body)
            except failed:
                pass
            else:
                return True
        # ASCII first (a vectorised test): any other body goes the usual way at once
        if not body.isascii():
            return False
        try:
            decode(body)
        except failed:
            return False
        if not no_overflow(body):
            return False
        learning.learn(body)
        return True

    return accepts


REBUILDS = 16  # the learned decoder is built again at most so often per generation
MISSES = 64  # valid bodies it misses, once nothing more is learned, before it is dropped
LEARN_LIMIT = 64 << 10  # larger bodies are not walked to learn from (one is read in full)


class _Learning:
    """A decoder that reads all of a body, the schema's open parts typed by what valid bodies
    had there (`jsonschema_shapes`); bounded, and dropped when it stops paying."""

    def __init__(self, validator: jsonschema.protocols.Validator) -> None:
        self.schema = validator.schema
        self.keywords: dict[str, Any] = type(validator).VALIDATORS
        self.learned = Learned()
        self.decode: Callable[[bytes], Any] | None = None
        self.rebuilds = 0
        self.misses = 0
        self.done = False

    def learn(self, body: bytes) -> None:
        """`body`, valid by the one-pass decode and missed by `decode`: learn its open parts
        and build `decode` again, or count the miss."""
        if self.done or len(body) > LEARN_LIMIT:
            return
        new = False
        if not self.learned.full and self.rebuilds < REBUILDS:
            try:
                new = _Walk(self.keywords, self.learned).walk(self.schema,
                                                               msgspec.json.decode(body), ())
            except (msgspec.DecodeError, RecursionError):
                new = False
        if new and not self.learned.full:
            self.rebuilds += 1
            types = _Types(self.keywords, self.learned)
            try:
                self.decode = msgspec.json.Decoder(types.of(self.schema)).decode
            except (Unsupported, TypeError, ValueError, RecursionError):
                self.decode, self.done = None, True
            return
        self.misses += 1
        if self.misses >= MISSES:
            # it would only cost a failed decode more on each such body (past a bound, nothing
            # more is learned, but one odd body does not drop what the others taught)
            self.decode, self.done = None, True


def no_overflow(body: bytes) -> bool:
    """Whether no number in `body` (ASCII) can overflow a float: none has an exponent, none
    has 309 digits in a row (inside strings too: those go the usual way for nothing)."""
    # `find`, not `in`: bytes' `in` first tries its operand as an integer, and the TypeError
    # it raises and clears costs more than the search
    signals = body.translate(_SIGNALS)
    if signals.find(_EXPONENT) >= 0:
        return False
    for i in range(_RUN - 1, len(signals), _RUN):
        if signals[i] == 48:  # a digit where a run of 309 would have one: look for it
            return signals.find(_LONG_RUN) < 0
    return True


def _bound(value: Any) -> int | float:
    """A numeric bound jsonschema compares exactly as msgspec does (a double)."""
    if type(value) is int and -SAFE_INT <= value <= SAFE_INT:
        return value
    if type(value) is float and math.isfinite(value):
        return value
    raise Unsupported("bound")


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise Unsupported("count")
    return value


class _Types:
    """msgspec types for schemas: `of(schema)`."""

    def __init__(self, keywords: dict[str, Any], learned: Learned | None = None) -> None:
        self.keywords = keywords
        self._structs = 0
        self.skips = False  # whether msgspec skips any part of a body unread (`Raw`, members)
        # with `learned`: open parts typed by their learned shapes, every object closed
        self.learned = learned
        self._typer = Typer()

    def of(self, schema: Any, path: Path = ()) -> Any:
        kw = keywords_of(schema, self.keywords)
        if kw is None:
            if self.learned is not None:
                return self._typer.of(self.learned.values.get(path))
            self.skips = True
            return msgspec.Raw
        kind = kw.get("type")
        if "enum" in kw or "const" in kw:
            return self._strings(kw)
        if type(kind) is not str:
            raise Unsupported("type")
        if kind == "string":
            return Annotated[str, msgspec.Meta(**self._string_meta(kw))]
        if kind == "integer":
            return Annotated[int, msgspec.Meta(**self._int_meta(kw))]
        if kind == "number":
            floats: dict[str, Any] = {name: _bound(kw[key]) for key, name in _FLOAT_BOUNDS
                                      if key in kw}
            return Annotated[int, msgspec.Meta(**self._int_meta(kw))] | \
                Annotated[float, msgspec.Meta(**floats)]
        if kind == "boolean":
            return bool
        if kind == "null":
            return None
        if kind == "array":
            return self._array(kw, path)
        if kind == "object":
            return self._object(kw, path)
        raise Unsupported("type")

    @staticmethod
    def _string_meta(kw: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if "minLength" in kw:
            meta["min_length"] = _count(kw["minLength"])
        if "maxLength" in kw:
            meta["max_length"] = _count(kw["maxLength"])
        if "pattern" in kw:
            pattern = kw["pattern"]
            if type(pattern) is not str:
                raise Unsupported("pattern")
            try:
                re.compile(pattern)
            except re.error:
                raise Unsupported("pattern") from None
            meta["pattern"] = pattern  # msgspec: re.search, as jsonschema
        return meta

    def _strings(self, kw: dict[str, Any]) -> Any:
        """`enum`/`const` of strings: the members that also pass the string keywords."""
        if kw.get("type", "string") != "string":
            raise Unsupported("enum")
        members = kw["enum"] if "enum" in kw else [kw["const"]]
        if "enum" in kw and "const" in kw:
            members = [m for m in members if m == kw["const"]]
        if type(members) is not list or not all(type(m) is str for m in members):
            raise Unsupported("enum")
        meta = self._string_meta(kw)
        search = re.compile(meta["pattern"]).search if "pattern" in meta else None
        kept = tuple(dict.fromkeys(
            m for m in members
            if len(m) >= meta.get("min_length", 0)
            and len(m) <= meta.get("max_length", len(m))
            and (search is None or search(m) is not None)))
        if not kept:
            raise Unsupported("enum")
        return Literal[kept]

    @staticmethod
    def _int_meta(kw: dict[str, Any]) -> dict[str, Any]:
        """Bounds of an integer, as integers, within ±2**53."""
        low, high = -SAFE_INT, SAFE_INT
        if "minimum" in kw:
            low = max(low, math.ceil(_bound(kw["minimum"])))
        if "exclusiveMinimum" in kw:
            low = max(low, math.floor(_bound(kw["exclusiveMinimum"])) + 1)
        if "maximum" in kw:
            high = min(high, math.floor(_bound(kw["maximum"])))
        if "exclusiveMaximum" in kw:
            high = min(high, math.ceil(_bound(kw["exclusiveMaximum"])) - 1)
        if low > high:
            raise Unsupported("bounds")
        return {"ge": low, "le": high}

    def _array(self, kw: dict[str, Any], path: Path) -> Any:
        items = kw.get("items", True)
        if type(items) is not dict and items is not True:
            raise Unsupported("items")
        meta: dict[str, Any] = {}
        if "minItems" in kw:
            meta["min_length"] = _count(kw["minItems"])
        if "maxItems" in kw:
            meta["max_length"] = _count(kw["maxItems"])
        item = self.of(items, (*path, None))
        return Annotated[list[item], msgspec.Meta(**meta)]  # type: ignore[valid-type]

    def _object(self, kw: dict[str, Any], path: Path) -> Any:
        properties, required, extra = object_keywords(kw)
        if not extra and any(name not in properties for name in required):
            # such a member is both required and refused (no object is valid): a struct would
            # take it as any other required member
            raise Unsupported("required")
        names = list(properties) + [n for n in dict.fromkeys(required) if n not in properties]
        fields: list[Any] = []
        rename: dict[str, str] = {}
        for i, name in enumerate(names):
            field = f"f{i}"
            rename[field] = name
            typ = self.of(properties.get(name, True), (*path, name))
            if name in required:
                fields.append((field, typ))
            else:
                fields.append((field, typ | msgspec.UnsetType, msgspec.UNSET))
        self._structs += 1
        if self.learned is not None:  # the members learned, and no others
            learned = self.learned.extra.get(path, {}) if extra else {}
            for name, shape in learned.items():
                field = f"f{len(fields)}"
                rename[field] = name
                fields.append((field, self._typer.of(shape) | msgspec.UnsetType,
                               msgspec.UNSET))
            extra = False
        self.skips = self.skips or extra
        return msgspec.defstruct(f"Schema{self._structs}", fields, kw_only=True, rename=rename,
                                 forbid_unknown_fields=not extra, gc=False)


def keywords_of(schema: Any, keywords: dict[str, Any]) -> dict[str, Any] | None:
    """The mirrored keywords of `schema`, None for an untyped one (`true`, `{}`)."""
    if schema is True:
        return None
    if type(schema) is not dict:
        raise Unsupported("schema")
    keys = [k for k in schema if k in keywords and k != "format"]
    for key in keys:
        if keywords[key] not in MIRRORED.get(key, ()):
            raise Unsupported(key)
    return {k: schema[k] for k in keys} or None


def object_keywords(kw: dict[str, Any]) -> tuple[dict[str, Any], list[str], bool]:
    """(properties, required, additionalProperties) of an object schema."""
    properties = kw.get("properties", {})
    required = kw.get("required", [])
    extra = kw.get("additionalProperties", True)
    if type(properties) is not dict or type(required) is not list \
            or not all(type(n) is str for n in required) or type(extra) is not bool:
        raise Unsupported("object")
    return properties, required, extra


class _Walk:
    """A valid body's values along its schema, as `_Types.of` reads them: the open parts are
    learned."""

    def __init__(self, keywords: dict[str, Any], learned: Learned) -> None:
        self.keywords = keywords
        self.learned = learned

    def walk(self, schema: Any, value: Any, path: Path) -> bool:
        """Whether anything new was learned under `path`."""
        kw = keywords_of(schema, self.keywords)
        if kw is None:
            return self.learned.value(path, value)
        kind = kw.get("type")
        new = False
        if kind == "array" and "enum" not in kw and "const" not in kw and type(value) is list:
            items = kw.get("items", True)
            for item in value:
                new = self.walk(items, item, (*path, None)) or new
        elif kind == "object" and "enum" not in kw and "const" not in kw \
                and type(value) is dict:
            properties, required, extra = object_keywords(kw)
            for name, member in value.items():
                if name in properties or name in required:
                    new = self.walk(properties.get(name, True), member, (*path, name)) or new
                elif extra:
                    new = self.learned.member(path, name, member) or new
        return new


_FLOAT_BOUNDS = (("minimum", "ge"), ("exclusiveMinimum", "gt"), ("maximum", "le"),
                 ("exclusiveMaximum", "lt"))
