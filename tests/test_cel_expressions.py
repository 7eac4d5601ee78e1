"""validation/cel expressions without a gateway: routing into lists, the type check, the
evaluation (the same answers as cel-python's own runner) and the ``now`` variable."""

from __future__ import annotations

import re
import sys
from typing import Any

import celpy
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel

from tidegate.components.cel import _passes, compile_expression, now, parse
from tidegate.errors import ConfigValueError

VALUES: dict[str, Any] = {
    "req_method": celtypes.StringType("GET"),
    "req_path": celtypes.StringType("/users/30"),
    "req_params": json_to_cel({"Id": "30", "JWT.sub": "u1"}),
    "req_headers": json_to_cel({"X-Header": ["something", "else"]}),
    "req_querystring": json_to_cel({"q": ["1"]}),
    "resp_completed": celtypes.BoolType(True),
    "resp_metadata_status": celtypes.IntType(200),
    "resp_data": json_to_cel({"items": [{"price": 12}, {"price": 3}], "name": "x"}),
    "JWT": json_to_cel({"sub": "user-1", "roles": ["a", "b"], "exp": 2051882755}),
    "now": celtypes.StringType("2026-12-05T16:20:00.5Z"),
}


def test_expressions_are_routed_by_substring_and_numbered_per_list() -> None:
    cfg = parse([{"check_expr": "req_method == 'GET'"},
                 {"check_expr": "resp_completed"},
                 {"check_expr": "size(JWT.roles) > 0"},
                 {"check_expr": "req_params.Id == '1' || resp_metadata_status == 200"},
                 {"check_expr": "true && 'JWT' != 'req'"}], ("extra_config", "validation/cel"))
    assert [e.source for e in cfg.pre] == [
        "req_method == 'GET'", "req_params.Id == '1' || resp_metadata_status == 200",
        "true && 'JWT' != 'req'"]
    assert [e.source for e in cfg.post] == [
        "resp_completed", "req_params.Id == '1' || resp_metadata_status == 200"]
    assert [e.source for e in cfg.jwt] == ["size(JWT.roles) > 0", "true && 'JWT' != 'req'"]


@pytest.mark.parametrize("expr", [
    "int(req_params.Id) % 3 == 0",
    "'something' in req_headers['X-Header']",
    "req_params['JWT.sub'] == 'u1'",
    "size(req_querystring.q) == 1 && req_querystring.q[0] == '1'",
    "resp_data.items.exists(i, i.price > 10)",
    "resp_data.items.all(i, i.price > 10)",
    "resp_data.items.map(i, i.price).filter(p, p < 5).size() == 1",
    "resp_metadata_status in [200, 201] && resp_completed",
    "has(JWT.sub) && JWT.sub.startsWith('user-')",
    "has(JWT.nope)",
    "JWT.exp > 1000 && timestamp(now) > timestamp('2020-01-01T00:00:00Z')",
    "req_path.matches('^/users/[0-9]+$') ? true : false",
    "type(resp_metadata_status) == int && double(req_params.Id) > 1.5",
    "'x' in req_headers['Missing']",
    "req_params.Missing == 'x'",
    "1 / (resp_metadata_status - 200) == 1 || true",
    "'a\\'b' + \"c\" == \"a'bc\" && b'x' == bytes('x') && 3u > 2u && -1 < 0",
    "int('0x1f') == 31 && int('-0x2') == -2 && int('-5') == -5 && int(2.9) == 2",
    "int('9223372036854775807') > 0",
    "int('9223372036854775808') > 0 || false",
    "int('x') == 1 || false",
    "int(req_params.Id) * 2 == 60",
])
def test_evaluation_gives_what_cel_python_gives(expr: str) -> None:
    evaluator = compile_expression(expr, ("x",))
    limit = sys.getrecursionlimit()
    env = celpy.Environment(runner_class=celpy.CompiledRunner)  # raises the process's limit
    sys.setrecursionlimit(limit)
    try:
        expected = bool(env.program(env.compile(expr)).evaluate(dict(VALUES)))
    except celpy.evaluation.CELEvalError:
        expected = False
    assert _passes(evaluator, dict(VALUES)) is expected


@pytest.mark.parametrize(("expr", "message"), [
    ("req_method == 1", "<input>:1:12: found no matching overload for '_==_' applied to "
                        "'(string, int)'"),
    ("req_headers['A'] == 'x'", "found no matching overload for '_==_' applied to "
                                "'(list(string), string)'"),
    ("req_params.Id > 2", "found no matching overload for '_>_' applied to '(string, int)'"),
    ("resp_completed + 1 == 2", "found no matching overload for '_+_' applied to '(bool, int)'"),
    ("req_method.size() == resp_completed", "applied to '(int, bool)'"),
    ("req_method.foo()", "undeclared reference to 'foo'"),
    ("req_method.x == 'a'", "type 'string' does not support field selection"),
    ("resp_metadata_status.exists(x, x)", "cannot be the range of a comprehension"),
    ("req_headers.all(h, h)", "found no matching overload for '_&&_' applied to '(string, bool)'"),
    ("!req_method", "found no matching overload for '!_' applied to '(string)'"),
    ("resp_completed ? 1 : 'a'", "found no matching overload for '_?_:_'"),
])
def test_type_errors_are_refused_with_cel_gos_words(expr: str, message: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        compile_expression(expr, ("x",))
    assert "CEL type error" in str(err.value) and message in str(err.value)


def test_syntax_errors_name_the_place() -> None:
    with pytest.raises(ConfigValueError, match=r"CEL syntax error: <input>:1:4: Syntax error: "
                                               r"unexpected token '\*'"):
        compile_expression("a +* req_method", ("x",))


def test_now_is_gos_layout() -> None:
    """``2006-01-02T15:04:05.999Z07:00``: milliseconds without trailing zeros, Z or ±hh:mm."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?(Z|[+-]\d\d:\d\d)",
                        now())


def test_request_and_response_variables_are_cel_values() -> None:
    """What each request's variables are built as: the values (and types) cel-python's own
    conversion gives, so expressions behave on them as on ``json_to_cel`` data."""
    from tidegate.components.cel import _REQUEST, _RESPONSE
    from tidegate.messages import ProxyRequest, ProxyResponse

    req = ProxyRequest("GET", "/users/30", {"Id": "30"}, {"X-Header": ["a", "b"]},
                       [("q", "1"), ("q", "2"), ("r", "")], b"")
    expected = {"req_method": "GET", "req_path": "/users/30", "req_params": {"Id": "30"},
                "req_headers": {"X-Header": ["a", "b"]},
                "req_querystring": {"q": ["1", "2"], "r": [""]}}
    for name, make in _REQUEST.items():
        got, want = make(req), json_to_cel(expected[name])
        assert got == want and type(got) is type(want), name
        if isinstance(want, dict):
            assert all(type(k) is celtypes.StringType for k in got), name
    resp = ProxyResponse({"a": [1, 2.5, None]}, True, 200, {"X-A": ["1"]})
    assert _RESPONSE["resp_metadata_status"](resp) == celtypes.IntType(200)
    assert type(_RESPONSE["resp_metadata_status"](resp)) is celtypes.IntType
    assert _RESPONSE["resp_metadata_headers"](resp) == json_to_cel({"X-A": ["1"]})
    assert _RESPONSE["resp_data"](resp) == json_to_cel({"a": [1, 2.5, None]})
    assert type(_RESPONSE["resp_completed"](resp)) is celtypes.BoolType


@pytest.mark.parametrize(("expr", "expected"), [
    ("has(JWT.sub) && has(JWT.roles)", True),
    ("!has(JWT.nope) && has(JWT.sub)", True),
    ("has(JWT.nope) || has(JWT.sub)", True),
    ("has(JWT.sub) ? true : false", True),
    ("has(JWT.nope) && has(JWT.sub)", False),
    ("has(JWT.sub) && has(JWT.roles) && (timestamp(now).getDayOfWeek() in [6])", True),
])
def test_has_combines_as_in_cel_go(expr: str, expected: bool) -> None:
    """cel-python's has() gives a Python bool its && / || / ! / ?: refuse (an evaluation
    error, i.e. a rejected request); cel-go combines them: KrakenD's documented
    ``has(JWT.a) && has(JWT.b) && ...`` must let a good token through."""
    assert _passes(compile_expression(expr, ("x",)), dict(VALUES)) is expected


def test_a_too_deep_expression_is_a_config_error_and_the_process_limit_is_untouched() -> None:
    """cel-python raises the recursion limit when imported; tidegate puts it back (other
    parsers' depth errors depend on it) and refuses what is then too deep."""
    assert sys.getrecursionlimit() < 2500
    with pytest.raises(ConfigValueError, match="CEL expression nested too deeply"):
        compile_expression("(" * 400 + "req_method == ''" + ")" * 400, ("x",))
