"""The one-pass decode learns what a schema leaves open from the valid bodies it takes, and
then reads such bodies in full (no scan): acceptance still implies the usual verdict, on
random schemas and bodies that vary the learned members' values (numbers that overflow or
have exponents, bytes that are not UTF-8, other kinds of value), and learning is bounded."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import jsonschema
import orjson

from tests.test_jsonschema_onepass import (
    _NUMBERS,
    _STRINGS,
    DRAFTS,
    _any,
    _schema,
    _value,
    usual,
)
from tidegate.components.jsonschema_onepass import (
    LEARN_LIMIT,
    MISSES,
    REBUILDS,
    compile_accepts,
    no_overflow,
)
from tidegate.components.jsonschema_shapes import DEPTH, MEMBERS

ORDER = {"type": "object", "required": ["id"],
         "properties": {"id": {"type": "string"},
                        "items": {"type": "array",
                                  "items": {"type": "object",
                                            "properties": {"qty": {"type": "integer"}}}},
                        "meta": {}}}
BODY = b'{"id":"a","items":[{"qty":1,"name":"w"}],"meta":[1,"x"],"note":"n","at":{"z":2}}'


def _taken(schema: dict[str, Any], bodies: list[bytes]) -> list[bool]:
    validator = jsonschema.Draft7Validator(schema)
    accepts = compile_accepts(validator)
    assert accepts is not None
    out = []
    for body in bodies:
        got = accepts(body)
        assert not got or usual(validator, body), body
        out.append(got)
    return out


def test_learned_members_are_read_in_full_after_one_valid_body() -> None:
    """Exponents in open members were left to the usual way (the scan); once the members
    are learned they are read, and checked, in full."""
    exponent = BODY.replace(b'"at":{"z":2}', b'"at":{"z":2.5e3}')
    assert _taken(ORDER, [exponent]) == [False]
    assert _taken(ORDER, [BODY, exponent, BODY.replace(b'"qty":1,', b'"qty":1,"name":"w",'),
                          BODY.replace(b"[1,", b"[1e2,")]) == [True, True, True, True]


def test_what_the_usual_way_refuses_is_still_refused_after_learning() -> None:
    bad = [
        BODY.replace(b'"at":{"z":2}', b'"at":{"z":1e400}'),          # overflows a float
        BODY.replace(b'"at":{"z":2}', b'"at":{"z":' + b"9" * 400 + b"}"),
        BODY.replace(b'"meta":[1,', b'"meta":[-1E999,'),
        BODY.replace(b'"note":"n"', b'"note":1.7976931348623159e308'),
        BODY.replace(b'"qty":1', b'"qty":"1"'),                     # the schema's own check
        BODY.replace(b'"id":"a",', b""),
        BODY[:-1],                                                   # malformed
    ]
    assert _taken(ORDER, [BODY, *bad]) == [True] + [False] * len(bad)


def test_other_kinds_and_bytes_in_learned_members_agree_with_the_usual_way() -> None:
    """Valid variants the learned types do not read go the first way (and may be learned);
    bytes that are not UTF-8 are never taken by the learned types."""
    bodies = [BODY,
              BODY.replace(b'"note":"n"', b'"note":"\xff"'),             # Go's decoder: valid
              BODY.replace(b'"note":"n"', b'"note":null'),
              BODY.replace(b'"note":"n"', b'"note":{"deep":[true]}'),
              BODY.replace(b'"note":"n"', b'"n\xffote":"n"'),
              BODY.replace(b'"note":"n"', b'"note":"\\ud800"'),
              BODY.replace(b'"note":"n"', b'"note":' + b"9" * 308),        # < 1e308: valid
              BODY.replace(b'"note":"n"', b'"note":' + b"9" * 309),        # overflows
              BODY.replace(b'"note":"n"', b'"note":18446744073709551616')]  # beyond 2**53
    taken = _taken(ORDER, bodies)
    assert taken[0] and taken[2] and taken[3] and taken[6]
    assert not taken[1] and not taken[4] and not taken[7]


def test_learning_is_bounded_and_stops_when_it_does_not_pay() -> None:
    """An open object used as a map (a new name on every body) is learned `REBUILDS` times;
    after `MISSES` more bodies the learned types are dropped and bodies go the first way
    again. A body with more than `MEMBERS` open names teaches nothing, nor one larger than
    `LEARN_LIMIT`."""
    schema = {"type": "object"}
    names = [f'{{"k{i}":1}}'.encode() for i in range(REBUILDS + MISSES + 1)]
    taken = _taken(schema, [b'{"k0":1}', b'{"k0":1.5e3}', *names, b'{"k0":1.5e3}'])
    assert all(taken[:-1]) and taken[-1] is False
    wide = ("{" + ",".join(f'"k{i}":1' for i in range(MEMBERS + 1)) + "}").encode()
    assert _taken(schema, [wide, b'{"k0":1.5e3}']) == [True, False]
    large = b'{"k0":1,"pad":"' + b"x" * LEARN_LIMIT + b'"}'  # taken, not walked
    assert _taken(schema, [large, b'{"k0":1.5e3}']) == [True, False]


def _vary(rng: random.Random, value: Any) -> str:
    """JSON text of `value`'s shape with other leaves: the same kinds mostly, overflowing and
    exponent numbers, bytes that are not UTF-8, now and then another kind of value."""
    if type(value) is dict:
        return "{" + ",".join(f"{json.dumps(k)}:{_vary(rng, v)}" for k, v in value.items()) + "}"
    if type(value) is list:
        return "[" + ",".join(_vary(rng, v) for v in value) + "]"
    if rng.random() < 0.15:
        return _any(rng, 3)
    if type(value) is str:
        return rng.choice(_STRINGS) if rng.random() < 0.3 else json.dumps(value)
    if type(value) in (int, float):
        return rng.choice(_NUMBERS) if rng.random() < 0.3 else json.dumps(value)
    return json.dumps(value)


def test_learned_acceptance_implies_the_usual_verdict() -> None:
    rng = random.Random(1717)
    learned_only = compiled = 0
    for _ in range(500):
        schema = _schema(rng)
        validator = rng.choice(DRAFTS)(schema)
        accepts = compile_accepts(validator)
        if accepts is None:
            continue
        compiled += 1
        templates = []
        for _ in range(6):
            text = _value(rng, schema).encode("utf-8", "surrogateescape")
            if usual(validator, text):
                with contextlib.suppress(orjson.JSONDecodeError):
                    templates.append(orjson.loads(text))
        if not templates:
            continue
        for _ in range(40):
            body = _vary(rng, rng.choice(templates)).encode("utf-8", "surrogateescape")
            if accepts(body):
                assert usual(validator, body), (schema, body)
                # what the first way refuses without a verdict, taken by the learned types
                learned_only += not body.isascii() or not no_overflow(body)
    assert compiled > 300
    assert learned_only > 100  # the learned types are what took those


def test_a_member_msgspec_cannot_name_is_not_learned_and_the_rest_still_is() -> None:
    """A valid body whose open member's name has a quote, a backslash or a control character
    (which msgspec refuses as a field's name) is taken and not learned from: the learned types
    are still built and read the known shape in full."""
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    for name in (b'a\\"b', b"a\\\\b", b"a\\u0000b", b"a\\nb"):
        known = b'{"id":"x","k":1,"m":{"z":2}}'
        odd = known.replace(b'"k"', b'"' + name + b'":1,"k"')
        nested = known.replace(b'"z"', b'"' + name + b'":1,"z"')
        exponents = b'{"id":"x","k":1.5e3,"m":{"z":2.5e3}}'
        assert _taken(schema, [known, odd, nested, exponents]) == [True] * 4, name


def test_one_body_past_a_bound_does_not_drop_what_was_learned() -> None:
    """A valid body deeper than `DEPTH`, or with more than `MEMBERS` open names, teaches
    nothing more; the shape learned before it is still read in full (it is dropped only after
    `MISSES` such bodies)."""
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    known = b'{"id":"x","k":1}'
    deep = b'{"id":"x","m":' + b"[" * (DEPTH + 1) + b"1" + b"]" * (DEPTH + 1) + b"}"
    wide = ('{"id":"x",' + ",".join(f'"w{i}":1' for i in range(MEMBERS + 1)) + "}").encode()
    exponent = b'{"id":"x","k":1.5e3}'
    for odd in (deep, wide):
        assert _taken(schema, [known, odd, exponent]) == [True, True, True]
    odd = [deep] * MISSES
    assert _taken(schema, [known, *odd, exponent]) == [True] * (MISSES + 1) + [False]
