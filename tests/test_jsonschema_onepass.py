"""The one-pass msgspec decode accepts a body only when the usual way (orjson, else Go's
decoder, then jsonschema) finds it valid: on random typed schemas and bodies, numbers at the
edges of the bounds and of a float's range, malformed JSON, bytes that are not UTF-8, and
numbers that overflow where the schema does not look."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from tidegate.components.jsonschema_onepass import SAFE_INT, compile_accepts, no_overflow
from tidegate.golang import json_values
from tidegate.golang.json_wire import JSONError

DRAFTS = [jsonschema.Draft6Validator, jsonschema.Draft7Validator,
          jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]
NAMES = ["a", "b", "c", "", "é"]


def usual(validator: jsonschema.protocols.Validator, body: bytes) -> bool:
    """What `validation/json-schema` decided before the one-pass decode."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            data = json_values.decode(body)
        except JSONError:
            return False
    return bool(validator.is_valid(data))


def _bound(rng: random.Random) -> Any:
    return rng.choice([0, 1, -1, 1.5, -2.5, 0.1, 2, 10, SAFE_INT, -SAFE_INT, 1e300, 2**60])


def _schema(rng: random.Random, depth: int = 0) -> Any:
    """A typed schema the compiler mostly takes, with a few keywords it does not."""
    r = rng.random()
    if r < 0.05:
        return rng.choice([True, {}, {"title": "x"}])
    kind = rng.choice(["object", "object", "array", "string", "integer", "number", "boolean",
                       "null"] if depth < 3 else ["string", "integer", "number", "boolean"])
    out: dict[str, Any] = {"type": kind}
    if rng.random() < 0.04:
        out["type"] = [kind, "null"]
    if kind == "object":
        props = {rng.choice(NAMES): _schema(rng, depth + 1) for _ in range(rng.randint(0, 3))}
        if props or rng.random() < 0.5:
            out["properties"] = props
        if rng.random() < 0.6:
            out["required"] = rng.sample(NAMES, rng.randint(0, 2))
        if rng.random() < 0.3:
            out["additionalProperties"] = rng.choice([False, True, {"type": "string"}])
    elif kind == "array":
        if rng.random() < 0.8:
            out["items"] = _schema(rng, depth + 1)
        for key in ("minItems", "maxItems"):
            if rng.random() < 0.3:
                out[key] = rng.randint(0, 3)
    elif kind == "string":
        for key in ("minLength", "maxLength"):
            if rng.random() < 0.3:
                out[key] = rng.randint(0, 3)
        if rng.random() < 0.2:
            out["pattern"] = rng.choice(["^a", "b$", "[0-9]", "^$", "é"])
        if rng.random() < 0.25:
            out["enum"] = rng.sample(["a", "ab", "b", "é", "", "1"], rng.randint(1, 3))
        if rng.random() < 0.05:
            out["const"] = rng.choice(["a", 1])
    elif kind in ("integer", "number"):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if rng.random() < 0.25:
                out[key] = _bound(rng)
    if rng.random() < 0.05:
        out[rng.choice(["uniqueItems", "minProperties", "not"])] = True if rng.random() < .5 \
            else 1
    if rng.random() < 0.05:
        out["format"] = "email"
    return out


CLOSED = {"type": "object", "additionalProperties": False, "required": ["a"],
          "properties": {"a": {"type": "string"},
                         "b": {"type": "array", "items": {"type": "number"}}}}

_NUMBERS = ["0", "-0", "1", "-1", "1.0", "1.5", "2.5", "1e2", "1E2", "0.1", "9007199254740992",
            "9007199254740993", "-9007199254740993", "18446744073709551616", "1e400", "-1E400",
            "1e-400", "1" + "0" * 400, "2" * 320, "0.5e1", "1.7976931348623159e308", "10"]
_STRINGS = ['"a"', '"ab"', '"b"', '""', '"\\u00e9"', '"é"', '"1"', '"abc"', '"\\ud83d\\ude00"',
            '"\\ud800"', '"a\\nb"', '"x\xff"']


def _value(rng: random.Random, schema: Any, depth: int = 0) -> str:
    """JSON text near `schema`: usually its shape, sometimes anything."""
    if rng.random() < 0.15 or type(schema) is not dict or depth > 4:
        return _any(rng, depth)
    kind = schema.get("type")
    if kind == "object":
        members = []
        for name, sub in (schema.get("properties") or {}).items():
            if rng.random() < 0.85:
                members.append((name, _value(rng, sub, depth + 1)))
        for name in schema.get("required") or []:
            if rng.random() < 0.3:
                members.append((name, _any(rng, depth + 1)))
        for _ in range(rng.randint(0, 2)):  # members the schema does not name
            members.append((rng.choice(["x", "y", "a", "z\xff"]), _any(rng, depth + 1)))
        rng.shuffle(members)
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=rng.random() < 0.8)}:{v}"
                              for k, v in members) + "}"
    if kind == "array":
        return "[" + ",".join(_value(rng, schema.get("items", True), depth + 1)
                              for _ in range(rng.randint(0, 4))) + "]"
    if kind in ("integer", "number"):
        return rng.choice(_NUMBERS)
    if kind == "string":
        return rng.choice(_STRINGS + [json.dumps(m) for m in schema.get("enum", [])])
    return _any(rng, depth)


def _any(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if r < 0.3:
        return rng.choice(_NUMBERS)
    if r < 0.55:
        return rng.choice(_STRINGS)
    if r < 0.7:
        return rng.choice(["true", "false", "null"])
    if r < 0.85 and depth < 4:
        return "[" + ",".join(_any(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if depth < 4:
        return "{" + ",".join(f'"{rng.choice("abxy")}":{_any(rng, depth + 1)}'
                              for _ in range(rng.randint(0, 3))) + "}"
    return "1"


def _mutate(rng: random.Random, body: bytes) -> bytes:
    """Malformed JSON now and then: cut, doubled, a byte changed, trailing garbage."""
    r = rng.random()
    if r < 0.04 and body:
        return body[:rng.randrange(len(body))]
    if r < 0.06:
        return body + rng.choice([b" x", b",", b"\x00", b" "])
    if r < 0.1 and body:
        i = rng.randrange(len(body))
        return body[:i] + bytes([rng.choice(b'{}[],:"\\0e-.a \xff')]) + body[i + 1:]
    return body


def _closed(schema: Any) -> Any:
    """`schema` with every member named and typed: msgspec then reads all of a body."""
    if type(schema) is not dict or not schema.get("type"):
        return {"type": "string"}
    out = dict(schema)
    if out["type"] == "object":
        props = {k: _closed(v) for k, v in (out.get("properties") or {}).items()}
        out["properties"] = props
        out["required"] = [n for n in out.get("required", []) if n in props]
        out["additionalProperties"] = False
    elif out["type"] == "array":
        out["items"] = _closed(out.get("items"))
    return out


@pytest.mark.parametrize("closed", [False, True])
def test_one_pass_acceptance_implies_the_usual_verdict(closed: bool) -> None:
    rng = random.Random(1616 + closed)
    compiled = accepted = valid_total = 0
    for _ in range(1200):
        schema = _closed(_schema(rng)) if closed else _schema(rng)
        validator = rng.choice(DRAFTS)(schema)
        accepts = compile_accepts(validator)
        if accepts is None:
            continue
        compiled += 1
        for _ in range(30):
            body = _mutate(rng, _value(rng, schema).encode("utf-8", "surrogateescape"))
            verdict = usual(validator, body)
            valid_total += verdict
            if accepts(body):
                accepted += 1
                assert verdict, (schema, body)
    assert compiled > 700  # the comparison means something
    assert accepted > valid_total * 0.5  # and most valid bodies are taken in one pass


@pytest.mark.parametrize(("schema", "body", "taken"), [
    # integers: exact within ±2**53, anything larger goes the usual way
    ({"type": "integer", "maximum": 10}, b"10", True),
    ({"type": "integer", "maximum": 10}, b"11", False),
    ({"type": "integer"}, b"9007199254740993", False),
    ({"type": "integer"}, b"1.0", False),             # valid, but left to the usual way
    ({"type": "integer", "minimum": 1.5}, b"2", True),
    ({"type": "integer", "exclusiveMaximum": 2}, b"2", False),
    ({"type": "number", "exclusiveMinimum": 0.1}, b"0.1", False),
    ({"type": "number", "maximum": 0.1}, b"0.1", True),
    ({"type": "number", "minimum": 0}, b"-0", True),
    # strings: lengths in code points, pattern searched, enum members that pass the rest
    ({"type": "string", "maxLength": 1}, b'"\\ud83d\\ude00"', True),
    ({"type": "string", "pattern": "b"}, b'"abc"', True),
    ({"type": "string", "enum": ["a", "abc"], "maxLength": 2}, b'"abc"', False),
    ({"type": "string", "enum": ["a", "abc"], "maxLength": 2}, b'"a"', True),
    # what msgspec skips without checking: overflowing numbers, bytes that are not UTF-8
    ({"type": "object"}, b'{"x":1e400}', False),
    ({"type": "object"}, b'{"x":' + b"9" * 400 + b"}", False),
    ({"type": "object"}, b'{"x":"\xff"}', False),
    ({"type": "object", "properties": {"a": {}}}, b'{"a":-1E999}', False),
    ({"type": "object"}, b'{"x":1.5e3}', False),       # valid, left to the usual way
    ({"type": "object"}, b'{"x":"1e5"}', False),       # the same, inside a string
    ({"type": "object"}, b'{"x":12,"y":"e"}', True),
    ({"type": "object"}, b'{"x":' + b"9" * 308 + b"}", True),  # 1e308 > it: a float
    ({"type": "object"}, b'{"x":' + b"9" * 309 + b"}", False),
    ({"type": "object"}, b'{"x":[' + b"1," * 300 + b"2E5]}", False),
    # objects: required, unknown members, duplicates (the last one is what orjson keeps)
    ({"type": "object", "required": ["a"]}, b'{"b":1}', False),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, b'{"a":1,"a":"x"}', False),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, b'{"a":"y","a":"x"}', True),
    ({"type": "object", "additionalProperties": False, "properties": {"a": {}}},
     b'{"a":1,"b":2}', False),
    ({"type": "object", "properties": {"\u00e9": {"type": "integer"}}}, b'{"\\u00e9":"x"}',
     False),
    # every member named and typed: nothing is skipped, so no scan and no ASCII test
    (CLOSED, '{"a":"é","b":[1.5e3,2]}'.encode(), True),
    (CLOSED, b'{"a":"x","b":[1e400]}', False),
    (CLOSED, b'{"a":"\xff"}', False),
    (CLOSED, b'{"a":"\xc0\xaf"}', False),
    (CLOSED, b'{"a":"\xed\xa0\x80"}', False),
    (CLOSED, b'{"a":"\\ud800"}', False),
    (CLOSED, b'{"a":"x","\xff":1}', False),
    (CLOSED, b'{"a":"x","c":1}', False),
])
def test_edge_cases(schema: dict[str, Any], body: bytes, taken: bool) -> None:
    validator = jsonschema.Draft7Validator(schema)
    accepts = compile_accepts(validator)
    assert accepts is not None
    assert accepts(body) is taken
    if taken:
        assert usual(validator, body)


@pytest.mark.parametrize("schema", [
    {"type": ["string", "null"]},
    {"minLength": 1},                                  # no type: applies only to strings
    {"type": "integer", "maximum": 2**60},             # a bound beyond a float's exact integers
    {"type": "object", "additionalProperties": {"type": "string"}},
    {"type": "array", "items": [{"type": "string"}]},
    {"type": "array", "uniqueItems": True},
    {"$ref": "#/definitions/a", "definitions": {"a": {"type": "string"}}},
    {"type": "string", "enum": ["a", 1]},
    {"type": "integer", "minimum": 3, "maximum": 2},
    # required but not a property, and no other member allowed: jsonschema refuses every
    # object (the member is additional), a struct would take {"b": 1}
    {"type": "object", "required": ["b"], "additionalProperties": False},
    {"type": "array", "items": {"type": "object", "properties": {"a": {}},
                                "required": ["a", "b"], "additionalProperties": False}},
])
def test_unmirrored_schemas_are_left_to_the_usual_way(schema: dict[str, Any]) -> None:
    assert compile_accepts(jsonschema.Draft7Validator(schema)) is None


def test_draft4_and_format_checking_are_left_to_the_usual_way() -> None:
    assert compile_accepts(jsonschema.Draft4Validator({"type": "integer"})) is None
    checked = jsonschema.Draft7Validator({"type": "string", "format": "email"},
                                         format_checker=jsonschema.FormatChecker())
    assert compile_accepts(checked) is None


def test_the_bench_order_is_taken_in_one_pass() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        from component_cost import ORDER_BODY, ORDER_SCHEMA
    finally:
        sys.path.pop(0)
    validator = jsonschema.Draft7Validator(ORDER_SCHEMA)
    accepts = compile_accepts(validator)
    assert accepts is not None
    assert accepts(ORDER_BODY.encode())
    assert not accepts(ORDER_BODY.replace('"EUR"', '"XXX"').encode())
    assert not accepts(ORDER_BODY.replace('"qty":1', '"qty":0').encode())


_OVERFLOW_SHAPE = re.compile(rb"[0-9][eE]|[0-9]{309}")


@pytest.mark.parametrize("run", [308, 309, 310, 700])
def test_a_run_of_digits_is_found_wherever_it_starts(run: int) -> None:
    """Runs are looked for only when one index in 309 is a digit: every start and length
    around those indexes, against the plain definition."""
    for start in range(0, 2 * 309 + 3):
        for tail in (0, 1, 17):
            body = b"x" * start + b"7" * run + b"]" * tail
            assert no_overflow(body) is (run < 309), (start, run, tail)


def test_the_scan_agrees_with_its_definition_on_random_bodies() -> None:
    rng = random.Random(2026)
    alphabet = [b"0", b"9", b"e", b"E", b"x", b'"', b",", b"5" * 40, b"3" * 308, b"1" * 309]
    for _ in range(3000):
        body = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert no_overflow(body) is (_OVERFLOW_SHAPE.search(body) is None), body
