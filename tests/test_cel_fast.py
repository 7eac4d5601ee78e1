"""The compiled CEL subset gives cel-python's verdict: many random expressions over requests and
responses, each evaluated both ways on the same subject."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tidegate.components import cel
from tidegate.messages import ProxyRequest, ProxyResponse

REQUESTS = [
    ProxyRequest("GET", "/data", {"Id": "30"}, {"X-Token": ["yes"], "User-Agent": ["wrk"]},
                 [("debug", "1"), ("q", "")], b""),
    ProxyRequest("POST", "/users/30", {}, {}, [], b""),
    ProxyRequest("HEAD", "", {"Id": "", "Name": "é"}, {"x-token": ["no", "yes"]},
                 [("q", "a"), ("q", "b")], b""),
]
RESPONSES = [ProxyResponse({"a": 1}, True, 200, {"Content-Type": ["application/json"]}),
             ProxyResponse(None, False, 0), ProxyResponse({}, True, 503, {"X-A": ["1"]})]

STRINGS = ["'GET'", '"POST"', "'/data'", "''", "'/'", "'debug'", "'Id'", "'X-Token'", "'é'",
           "'q'", "'data'"]
MAPS = ["req_params", "req_headers", "req_querystring"]


def _string(rng: random.Random, side: str) -> str:
    if side == "req" and rng.random() < 0.5:
        return rng.choice(["req_method", "req_path"])
    return rng.choice(STRINGS)


def _bool(rng: random.Random, side: str, depth: int = 0) -> str:
    """A random boolean expression; some fall outside the compiled subset on purpose."""
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        op = rng.choice(["&&", "||"])
        return f"({_bool(rng, side, depth + 1)} {op} {_bool(rng, side, depth + 1)})"
    if depth < 3 and roll < 0.4:
        return f"!{_bool(rng, side, depth + 1)}"
    if side == "resp":
        return rng.choice([
            "resp_completed", "!resp_completed",
            f"resp_metadata_status {rng.choice(['==', '!=', '<', '>=', '>'])} "
            f"{rng.choice(['200', '0', '503', '-1', '99999999999'])}",
            "resp_completed == true", "'Content-Type' in resp_metadata_headers",
            "has(resp_metadata_headers.X)", "resp_metadata_status == 200u",
            "resp_metadata_status in [200, 201]", "true", "false"])
    kind = rng.randrange(9)
    if kind == 0:
        op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
        return f"{_string(rng, side)} {op} {_string(rng, side)}"
    if kind == 1:
        return f"{_string(rng, side)} in {rng.choice(MAPS)}"
    if kind == 2:
        return f"has({rng.choice(MAPS)}.{rng.choice(['Id', 'debug', 'q', 'Name', 'x'])})"
    if kind == 3:
        method = rng.choice(["startsWith", "endsWith", "contains"])
        return f"{_string(rng, side)}.{method}({_string(rng, side)})"
    if kind == 4:
        items = ", ".join(rng.sample(STRINGS, rng.randint(1, 3)))
        return f"{_string(rng, side)} in [{items}]"
    if kind == 5:  # outside the subset: may fail at run time
        return rng.choice(["req_params.Id == '30'", "req_headers['X-Token'][0] == 'yes'",
                           "int(req_params.Id) > 3", "req_path.matches('^/d')",
                           "size(req_path) > 2", "req_method == 'G' + 'ET'",
                           "'x\\'y' != req_method"])
    if kind == 6:
        return rng.choice(["true", "false", "true == false", "1 < 2", "-3 != 3"])
    if kind == 7:
        return f"{_string(rng, side)} == {_string(rng, side)}"
    return f"req_method in [{_string(rng, side)}]"


def _slow_verdict(ev: cel.Evaluator, values: Any, subject: Any) -> bool:
    activation = {name: values[name](subject) for name in ev.names if name in values}
    return cel._passes(ev, activation)


@pytest.mark.parametrize("side", ["req", "resp"])
def test_compiled_checks_agree_with_cel_python(side: str) -> None:
    rng = random.Random(16 if side == "req" else 61)
    subjects = REQUESTS if side == "req" else RESPONSES
    values = cel._REQUEST if side == "req" else cel._RESPONSE
    kind = cel.PRE if side == "req" else cel.POST
    compiled = 0
    for n in range(1200):
        source = _bool(rng, side)
        try:
            ev = cel.compile_expression(source, ("extra_config", n))
        except Exception:  # a type error of the random grammar: not a check anyone can run
            continue
        if ev.fast is None:
            continue
        assert ev.kind == kind
        compiled += 1
        for subject in subjects:
            assert ev.fast(subject) is _slow_verdict(ev, values, subject), (source, subject)
    assert compiled > 500


@pytest.mark.parametrize(("source", "compiled"), [
    ("req_method == 'GET' && !('debug' in req_querystring)", True),
    ("req_path.startsWith('/data')", True),
    ("resp_completed && resp_metadata_status == 200", True),
    ("has(req_params.Id) || req_method in ['GET', 'HEAD']", True),
    ("req_params.Id == '30'", False),           # a missing key is an error in CEL
    ("req_headers['X-Token'][0] == 'yes'", False),
    ("int(req_params.Id) % 2 == 0", False),
    ("req_method == 'GET' && resp_completed", False),  # both lists: cel-python decides
    ("'a\\'b' == req_method", False),           # escapes
])
def test_the_subset(source: str, compiled: bool) -> None:
    ev = cel.compile_expression(source, ("extra_config", 0))
    assert (ev.fast is not None) is compiled


def test_a_check_in_the_other_list_is_evaluated_by_cel_python() -> None:
    # routed by substring: this request check also lands in the response list, where its
    # variables do not exist and cel-python's error rejects it, as KrakenD
    cfg = cel.parse([{"check_expr": "req_method == 'GET' || 'resp' == ''"}], ("x",))
    assert cfg.pre and cfg.post
    assert cel.evaluate(cfg.pre, cel._REQUEST, REQUESTS[0], "t", cel.PRE) is None
    assert cel.evaluate(cfg.post, cel._RESPONSE, RESPONSES[0], "t", cel.POST) == 0
