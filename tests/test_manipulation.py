"""Response manipulation as users see it: the bodies KrakenD would answer."""

from __future__ import annotations

import copy

import pytest

from tidegate.config.model import BackendConfig, build_service
from tidegate.encoding.decoders import decoder_for
from tidegate.errors import ConfigErrors
from tidegate.golang.json_wire import dumps
from tidegate.pipeline.flatmap import compile_flatmap
from tidegate.pipeline.manipulation import (
    Formatter,
    MergeAccumulator,
    compile_backend_formatter,
    merge_responses,
)

# The conformance mock backend's /collection/2 body (Go's json.Encoder: a trailing newline).
COLLECTION = ("[" + ",".join(f'{{"i":{i},"path":"/collection/2"}}' for i in range(10))
              + "]\n").encode()
ECHO = (b'{"foo":42,"headers":{"Accept-Encoding":["gzip"],"User-Agent":["KrakenD Version '
        b'2.13.8"],"X-Forwarded-Host":["localhost:8080"]},"path":"/param_forwarding/2",'
        b'"query":{}}\n')


def typed(backend: dict) -> BackendConfig:
    """The backend as the model builds it (the formatter compiles the typed values)."""
    service = build_service({"version": 3, "host": ["http://h"], "endpoints": [
        {"endpoint": "/x", "backend": [{"url_pattern": "/", **backend}]}]})
    return service.endpoints[0].backend[0]


def formatter(backend: dict) -> Formatter:
    return compile_backend_formatter(typed(backend))


def run(backend: dict, body: bytes, encoding: str = "json") -> bytes:
    data = decoder_for(encoding, bool(backend.get("is_collection")))(body)
    return dumps(formatter(backend)(data))


# -- the conformance specs --------------------------------------------------------------------

def test_flatmap_spec():
    backend = {"url_pattern": "/collection/2", "is_collection": True, "extra_config": {
        "proxy": {"flatmap_filter": [
            {"type": "move", "args": ["collection", "paths"]},
            {"type": "del", "args": ["paths.*.i"]},
            {"type": "move", "args": ["paths.*.path", "paths.*.url"]}]}}}
    assert run(backend, COLLECTION) == (
        b'{"paths":[' + b",".join([b'{"url":"/collection/2"}'] * 10) + b"]}")


def test_combination_spec():
    posts = {"is_collection": True, "mapping": {"collection": "posts"}}
    echo = {"allow": ["foo"]}
    a = formatter(posts)(decoder_for("json", True)(COLLECTION))
    b = formatter(echo)(decoder_for("json", False)(ECHO))
    expected = (b'{"foo":42,"posts":[' + b",".join(
        b'{"i":%d,"path":"/collection/2"}' % i for i in range(10)) + b"]}")
    assert dumps(merge_responses([copy.deepcopy(a), b])) == expected
    assert dumps(merge_responses([b, a])) == expected


def test_static_spec_backend_deny():
    # /static: the /__debug answer with "message" denied, before static data is merged in
    assert run({"deny": ["message"]}, b'{"message":"pong"}') == b"{}"


def test_rss_spec_shape():
    feed = b"<rss><channel><title>showRSS schedule feed</title></channel></rss>"
    backend = {"encoding": "rss", "group": "schedule", "allow": ["title"]}
    assert run(backend, feed, "rss") == b'{"schedule":{"title":"showRSS schedule feed"}}'


# -- allow / deny -----------------------------------------------------------------------------

DOC = b'{"a":{"b":1,"c":{"d":2,"e":3}},"f":[{"g":1}],"h":null,"i":"x"}'


@pytest.mark.parametrize(("allow", "expected"), [
    (["i"], b'{"i":"x"}'),
    (["a.c.d", "i"], b'{"a":{"c":{"d":2}},"i":"x"}'),
    (["a.b", "a"], b'{"a":{"b":1,"c":{"d":2,"e":3}}}'),  # a later "a" widens
    (["a", "a.b"], b'{"a":{"b":1}}'),  # a later "a.b" narrows
    (["f.g"], b"{}"),  # allow never looks into arrays
    (["a.zz", "nope"], b"{}"),
    (["h"], b'{"h":null}'),
    (["i.deeper"], b"{}"),  # not an object there: dropped
])
def test_allow(allow, expected):
    assert run({"allow": allow}, DOC) == expected


@pytest.mark.parametrize(("deny", "expected"), [
    (["i"], b'{"a":{"b":1,"c":{"d":2,"e":3}},"f":[{"g":1}],"h":null}'),
    (["a.c.d", "f", "h"], b'{"a":{"b":1,"c":{"e":3}},"i":"x"}'),
    (["a.c.d", "a"], b'{"f":[{"g":1}],"h":null,"i":"x"}'),
    (["f.g", "missing.x", "i.x"], DOC),  # arrays and scalars untouched
])
def test_deny(deny, expected):
    assert run({"deny": deny}, DOC) == expected


def test_allow_wins_over_deny():
    assert run({"allow": ["i"], "deny": ["i"]}, DOC) == b'{"i":"x"}'


# -- target, mapping, group -------------------------------------------------------------------

def test_target_then_filter_then_mapping_then_group():
    backend = {"target": "a.c", "allow": ["d", "e"], "mapping": {"d": "dee"}, "group": "g"}
    assert run(backend, DOC) == b'{"g":{"dee":2,"e":3}}'


@pytest.mark.parametrize(("target", "expected"), [
    ("a.c", b'{"d":2,"e":3}'), ("a.b", b"{}"), ("nope", b"{}"), ("f", b"{}"),
])
def test_target(target, expected):
    assert run({"target": target}, DOC) == expected


def test_target_of_null_body_is_empty_object():
    assert run({"target": "a"}, b"null") == b"{}"
    assert run({}, b"null") == b"null"
    assert run({"group": "g"}, b"null") == b'{"g":null}'


def test_mapping_details():
    assert run({"mapping": {"i": "renamed.deep"}}, b'{"i":1}') == b'{"renamed":1}'
    assert run({"mapping": {"i": "i"}}, b'{"i":1,"j":2}') == b'{"j":2}'  # Go sets then deletes
    assert run({"mapping": {"missing": "x"}}, b'{"i":1}') == b'{"i":1}'
    assert run({"mapping": {"collection": "items"}, "is_collection": True}, b"[]") == (
        b'{"items":[]}')


def test_group_wraps_everything():
    assert run({"group": "g"}, b'{"a":1}') == b'{"g":{"a":1}}'


def test_no_manipulation_is_identity():
    fmt = formatter({"url_pattern": "/x"})
    data = {"a": 1}
    assert fmt(data) is data


@pytest.mark.parametrize(("backend", "message"), [
    ({"allow": ["a", {"b": 1}]}, "allow[1]: expected a string, got an object"),
    ({"mapping": {"a": [1]}}, "mapping.a: expected a string, got a list"),
    ({"target": [3]}, "target: expected a string, got a list"),
])
def test_wrong_types_are_rejected_at_their_key(backend, message):
    """What KrakenD's weakly typed decoding refuses too (it reads "a" as ["a"], 1 as "1")."""
    with pytest.raises(ConfigErrors) as info:
        typed(backend)
    assert str(info.value) == f"endpoints[0].backend[0].{message}"


# -- flatmap ----------------------------------------------------------------------------------

def flat(ops: list, body: bytes, **backend) -> bytes:
    return run({"extra_config": {"proxy": {"flatmap_filter": ops}}, **backend}, body)


def test_flatmap_replaces_allow_deny_mapping_but_keeps_target_and_group():
    ops = [{"type": "del", "args": ["e"]}]
    backend = {"allow": ["zzz"], "deny": ["d"], "mapping": {"d": "x"}, "target": "a.c",
               "group": "g"}
    assert flat(ops, DOC, **backend) == b'{"g":{"d":2}}'


@pytest.mark.parametrize(("ops", "body", "expected"), [
    # expected bodies checked against krakend/flatmap's tree package
    ([{"type": "del", "args": ["a.b"]}], b'{"a":{"b":1},"c":2}', b'{"a":null,"c":2}'),
    ([{"type": "del", "args": ["a.*.x"]}], b'{"a":[{"x":1,"y":2},{"x":3,"y":4}]}',
     b'{"a":[{"y":2},{"y":4}]}'),
    ([{"type": "move", "args": ["a.b.c", "top"]}], b'{"a":{"b":{"c":1}},"d":5}',
     b'{"a":{"b":null},"d":5,"top":1}'),
    ([{"type": "move", "args": ["a.b.c", "a.x.y"]}], b'{"a":{"b":{"c":1}}}',
     b'{"a":{"b":{"y":1}}}'),  # same depth: only the last segment is renamed
    ([{"type": "move", "args": ["d", "n.m.o"]}], b'{"d":5}', b'{"n":{"m":{"o":5}}}'),
    ([{"type": "move", "args": ["a.*.x", "a.*.q.r"]}], b'{"a":[{"x":1},{"x":2}]}',
     b'{"a":[{"q":{"r":1}},{"q":{"r":2}}]}'),
    ([{"type": "append", "args": ["a", "b"]}], b'{"a":[1,2],"b":[3]}', b'{"b":[3,1,2]}'),
    ([{"type": "append", "args": ["a", "b"]}], b'{"a":[1,2],"b":3}', b'{"a":[1,2],"b":3}'),
    ([{"type": "append", "args": ["a.*.x", "b"]}], b'{"a":[{"x":1},{"x":2}],"b":[9]}',
     b'{"a":[null,null],"b":[9,1,2]}'),
    ([{"type": "del", "args": ["a"]}], b'{"a":1}', b"null"),  # nothing left: nil data
    ([{"type": "del", "args": ["a.1"]}], b'{"a":[1,2,3]}', b'{"a":[1,3]}'),
    ([{"type": "del", "args": ["a.*.0"]}], b'{"a":[[1,2],[3,4]]}', b'{"a":[[2],[4]]}'),
    ([{"type": "move", "args": ["a.x", "b.*.y"]}], b'{"a":{"x":1}}', b'{"a":{"*":{"y":1}}}'),
    ([{"type": "del", "args": ["nope.x"]}], b'{"big":[1.50,2]}', b'{"big":[1.50,2]}'),
])
def test_flatmap_operations(ops, body, expected):
    assert flat(ops, body) == expected


def test_flatmap_long_namespace_and_endpoint_level():
    ops = [{"type": "move", "args": ["a", "b"]}]
    long_ns = {"extra_config": {"github.com/devopsfaith/krakend/proxy": {"flatmap_filter": ops}}}
    assert run(long_ns, b'{"a":1}') == b'{"b":1}'

    def endpoint_ops(backends: int, extra: dict):
        service = build_service({"version": 3, "host": ["http://h"], "endpoints": [
            {"endpoint": "/x", "extra_config": extra,
             "backend": [{"url_pattern": "/"}] * backends}]})
        return service.endpoints[0].proxy.flatmap

    merged = endpoint_ops(2, {"proxy": {"flatmap_filter": ops}})
    assert merged is not None and compile_flatmap(merged)({"a": 1, "c": 2}) == {"b": 1, "c": 2}
    assert endpoint_ops(2, {}) is None
    # lura reads an endpoint's flatmap_filter for a merge only
    assert endpoint_ops(1, {"proxy": {"flatmap_filter": ops}}) is None


def test_flatmap_leaves_untouched_subtrees_alone_on_big_bodies():
    body = {"keep": [{"n": i, "deep": {"x": [i] * 5}} for i in range(5000)], "drop": 1}
    fmt = formatter(
        {"extra_config": {"proxy": {"flatmap_filter": [{"type": "del", "args": ["drop"]}]}}})
    out = fmt(copy.deepcopy(body))
    assert out == {"keep": body["keep"]}


@pytest.mark.parametrize(("ops", "message"), [
    ([{"type": "rename", "args": ["a", "b"]}],
     "[0].type: unknown type 'rename' (use move, del or append)"),
    ([{"type": "move", "args": ["a"]}],
     "[0].args: move takes exactly 2 args (source, destination), got 1"),
    ([{"args": ["a"]}], '[0]: an operation needs a "type" (move, del or append)'),
    ([{"type": 1, "args": ["a"]}], "[0].type: expected a string, got number 1"),
    ([{"type": "del", "args": []}], "[0].args: del takes at least 1 arg"),
    ([{"type": "del", "args": [3]}],
     "[0].args: expected a list of non-empty dot paths, got a list"),
    (["del"], '[0]: expected an operation such as {"type": "del", "args": ["a.b"]}, got '
              "string 'del'"),
    ("del", ": expected a list of operations, got string 'del'"),
])
def test_bad_flatmap_config_is_refused_at_its_key(ops, message):
    with pytest.raises(ConfigErrors) as info:
        typed({"extra_config": {"proxy": {"flatmap_filter": ops}}})
    assert str(info.value) == (
        f"endpoints[0].backend[0].extra_config.proxy.flatmap_filter{message}")


def test_an_empty_flatmap_falls_back_to_the_plain_formatter():
    fmt = formatter({"allow": ["b"], "extra_config": {"proxy": {"flatmap_filter": []}}})
    assert fmt({"a": 1, "b": 2}) == {"b": 2}


# -- merging ----------------------------------------------------------------------------------

def test_merge_is_shallow_and_later_parts_win():
    merged = merge_responses([{"a": {"x": 1}, "b": 1}, None, {"a": {"y": 2}}])
    assert merged == {"a": {"y": 2}, "b": 1}
    assert merge_responses([]) == {}
    assert merge_responses([None, None]) == {}


def test_merge_accumulator_completeness():
    acc = MergeAccumulator(2)
    acc.add({"a": 1})
    acc.add({"b": 2})
    assert acc.result() == ({"a": 1, "b": 2}, True)

    acc = MergeAccumulator(2)
    acc.add({"a": 1})
    acc.add_error()
    assert acc.result() == ({"a": 1}, False)

    acc = MergeAccumulator(3)
    acc.add({"a": 1})
    acc.add({"b": 2}, complete=False)
    acc.add({"c": 3})
    assert acc.result() == ({"a": 1, "b": 2, "c": 3}, False)

    acc = MergeAccumulator(2)
    acc.add({"a": 1})
    acc.add(None)  # a nil data part makes the merge incomplete
    assert acc.result() == ({"a": 1}, False)

    acc = MergeAccumulator(2)
    acc.add_error()
    acc.add_error()
    assert acc.result() == (None, False)

    acc = MergeAccumulator(3)  # one backend never answered
    acc.add({"a": 1})
    acc.add({"b": 1})
    assert acc.result()[1] is False
