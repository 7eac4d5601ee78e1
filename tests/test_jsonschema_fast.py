"""The compiled JSON Schema checks agree with jsonschema on every (schema, body) pair: a body
is let through by the fast path only when jsonschema finds no error in it."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import orjson
import pytest

from tidegate.components.jsonschema_fast import compile_validator, equal

DRAFTS = [jsonschema.Draft6Validator, jsonschema.Draft7Validator,
          jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]

# Values where Python's and JSON's ideas of equality and type differ.
TRICKY: list[Any] = [0, 1, -1, 1.0, 1.5, 0.0, -0.0, True, False, None, "", "1", "a", "ab",
                     "abcdefghij", "é", [], [1], [True], [1.0], {}, {"a": 1}, {"a": True},
                     2**63, 1e300, -7, [[]], {"b": [1, "x"]}]


def _schema(rng: random.Random, depth: int = 0) -> Any:
    """A random schema from the keywords the compiler knows, and a few it does not."""
    if rng.random() < 0.08:
        return rng.choice([True, False])
    out: dict[str, Any] = {}
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(["type", "type", "properties", "required", "additionalProperties",
                          "items", "minItems", "maxItems", "minLength", "maxLength",
                          "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                          "enum", "const", "pattern", "format", "title", "uniqueItems",
                          "patternProperties", "not"])
        if key == "type":
            names = ["object", "array", "string", "boolean", "null", "number", "integer"]
            out[key] = rng.choice(names) if rng.random() < 0.7 else rng.sample(names, 2)
        elif key in ("properties", "patternProperties") and depth < 3:
            out[key] = {rng.choice("abc"): _schema(rng, depth + 1)
                        for _ in range(rng.randint(0, 3))}
        elif key == "required":
            out[key] = rng.sample(["a", "b", "c"], rng.randint(0, 2))
        elif key in ("additionalProperties", "items", "not") and depth < 3:
            out[key] = _schema(rng, depth + 1)
        elif key in ("minItems", "maxItems", "minLength", "maxLength"):
            out[key] = rng.randint(0, 3)
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            out[key] = rng.choice([0, 1, 1.5, -1, 2])
        elif key == "enum":
            out[key] = rng.sample(TRICKY, rng.randint(1, 4))
        elif key == "const":
            out[key] = rng.choice(TRICKY)
        elif key == "pattern":
            out[key] = rng.choice(["^a", "b$", "[0-9]", "^$"])
        elif key == "format":
            out[key] = rng.choice(["email", "date-time"])
        elif key == "title":
            out[key] = "x"
        elif key == "uniqueItems":
            out[key] = True
    return out


def _value(rng: random.Random, depth: int = 0) -> Any:
    if depth < 3 and rng.random() < 0.35:
        if rng.random() < 0.5:
            return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice("abcd"): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.choice(TRICKY)


def test_fast_path_agrees_with_jsonschema() -> None:
    rng = random.Random(1613)
    compiled = 0
    for _ in range(1500):
        schema = _schema(rng)
        cls = rng.choice(DRAFTS)
        validator = cls(schema)
        valid = compile_validator(validator)
        if valid is None:
            continue
        compiled += 1
        for _ in range(25):
            # through JSON, as bodies arrive (orjson's own types)
            value = orjson.loads(orjson.dumps(_value(rng), option=orjson.OPT_NON_STR_KEYS))
            assert valid(value) == validator.is_valid(value), (cls.__name__, schema, value)
    assert compiled > 600  # most random schemas are compiled, so the comparison means something


@pytest.mark.parametrize(("schema", "body", "ok"), [
    ({"enum": [1, "a"]}, True, False),            # true is not 1 in JSON Schema
    ({"enum": [True]}, 1, False),
    ({"const": 1}, 1.0, True),                    # 1 == 1.0
    ({"const": [1, {"a": False}]}, [1.0, {"a": False}], True),
    ({"const": [1, {"a": False}]}, [1.0, {"a": 0}], False),
    ({"type": "integer"}, 2.0, True),             # draft 6+: integral floats are integers
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
    ({"minimum": 0}, "-1", True),                 # bounds apply to numbers only
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
    ({"additionalProperties": {"type": "string"}, "properties": {"a": {}}},
     {"a": 1, "b": "x"}, True),
    ({"items": {"type": "string"}, "minItems": 2}, ["a"], False),
    ({"pattern": "b"}, "abc", True),              # re.search, not a full match
    # required keys are read without a test: only after the object was checked to have them
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}, {}, False),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
     {"a": 1}, False),
    ({"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}}},
     {"a": "x", "b": None}, True),
    ({"type": "object", "required": [], "properties": {"a": {"minimum": 1}}}, {"a": 0}, False),
    # a required key that `properties` reads is found missing by its read (KeyError), even
    # when its own schema asks nothing, and at any depth
    ({"type": "object", "required": ["a"], "properties": {"a": True}}, {}, False),
    ({"type": "object", "required": ["a"], "properties": {"a": True}}, {"a": None}, True),
    ({"type": "object", "required": ["a", "c"], "properties": {"a": True}}, {"a": 1}, False),
    ({"items": {"type": "object", "required": ["b"], "properties": {"b": {}}}},
     [{"b": 1}, {}], False),
    ({"items": {"type": "object", "required": ["b"], "properties": {"b": {}}}},
     [{"b": 1}, {"b": 2}], True),
    # bounds written into the code as literals: exact for floats and large integers
    ({"minimum": 1.5}, 1.5, True),
    ({"exclusiveMaximum": 0.1}, 0.1, False),
    ({"maximum": 2**63}, 2**63 + 1, False),
    ({"maximum": 2**63}, 2**63, True),
])
def test_edge_cases(schema: dict[str, Any], body: Any, ok: bool) -> None:
    validator = jsonschema.Draft7Validator(schema)
    valid = compile_validator(validator)
    assert valid is not None
    assert valid(body) is ok
    assert validator.is_valid(body) is ok


@pytest.mark.parametrize("schema", [
    {"$ref": "#/definitions/a", "definitions": {"a": {"type": "string"}}},
    {"allOf": [{"type": "string"}]},
    {"items": [{"type": "string"}]},
    {"patternProperties": {"^a": {}}, "additionalProperties": False},
    {"minLength": 1.0},
])
def test_unmirrored_schemas_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_validator(jsonschema.Draft7Validator(schema)) is None


def test_draft4_is_left_to_jsonschema() -> None:
    # its minimum, items and integer type differ from draft 6's
    assert compile_validator(jsonschema.Draft4Validator({"type": "integer"})) is None


def test_equal_mirrors_jsonschema() -> None:
    from jsonschema._utils import equal as reference
    for a in TRICKY:
        for b in TRICKY:
            assert equal(a, b) == reference(a, b), (a, b)
