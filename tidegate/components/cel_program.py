"""A CEL program as one Python function of the request's variables (cel-python's transpiler).

cel-python's `CompiledRunner` transpiles an expression to Python once, but each evaluation then
re-executes the whole module text, deep-copies an `Activation` (with every protobuf type name)
and resolves each variable through it: 30 µs for ``req_method == 'GET'``, most of a proxied
request's cost. Here the transpiled text is executed once per generation with its last line
turned into a function, and each evaluation gets `Variables`: a dict lookup per name, falling
back to cel-python's own activation for what is not a variable (type names such as ``int``);
literals (``IntType(3)``) are built once, and the comparison and ``in`` helpers, which cel-python
rebuilds per call, are built once too. Semantics are cel-python's own: same generated code,
same helper functions, same errors (tests/test_cel_expressions.py compares the two).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.evaluation import Activation, CELEvalError

_LAST = "CEL = celpy.evaluation.result(base_activation, "
# A literal as the transpiler writes it: a type's constructor applied to a Python literal.
_LITERAL = re.compile(
    r"celpy\.celtypes\.(IntType|UintType|DoubleType|StringType|BytesType|BoolType)\("
    r"(-?[0-9][0-9.e+-]*|True|False|b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\")\)")


def _hoist_literals(text: str) -> tuple[str, dict[str, Any]]:
    """Literals built once, not per evaluation (cel-python's IntType() costs microseconds)."""
    constants: dict[str, Any] = {}
    seen: dict[str, str] = {}

    def name_of(match: re.Match[str]) -> str:
        code = match.group(0)
        if code not in seen:
            try:
                value = getattr(celtypes, match.group(1))(ast.literal_eval(match.group(2)))
            except (ValueError, SyntaxError):
                return code  # not a plain literal after all: left as the transpiler wrote it
            seen[code] = f"_k{len(seen)}"
            constants[seen[code]] = value
        return seen[code]

    return _LITERAL.sub(name_of, text), constants


_TRUE, _FALSE = celtypes.BoolType(True), celtypes.BoolType(False)  # immutable: shared
_CAUGHT = (ValueError, KeyError, TypeError, ZeroDivisionError, OverflowError, IndexError,
           NameError)


def _result(activation: Any, cel_expr: Callable[[Any], Any]) -> Any:
    """cel-python's ``evaluation.result`` (an exception becomes a CELEvalError value) without
    its per-call debug log: on an exception, cel-python's own builds the error value (CEL is
    free of side effects, so evaluating that operand again gives the same exception)."""
    try:
        return cel_expr(activation)
    except _CAUGHT:
        return celpy.evaluation.result(activation, cel_expr)


def _boolean(function: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """cel-python's ``evaluation.boolean`` built once (its ``bool_eq`` etc. rebuild the wrapper,
    with ``functools.wraps``, on every call)."""
    def bool_function(a: Any, b: Any) -> Any:
        if isinstance(a, CELEvalError):
            return a
        if isinstance(b, CELEvalError):
            return b
        result_value = function(a, b)
        if result_value == NotImplemented:
            return result_value
        return _TRUE if result_value else _FALSE
    return bool_function


def _operator_in(item: Any, container: Any) -> Any:
    """cel-python's ``evaluation.operator_in`` without its per-call ``typing`` subscription."""
    if isinstance(item, CELEvalError):
        return item
    if isinstance(container, CELEvalError):
        return container
    result_value: Any = _FALSE
    for c in container:
        try:
            if c == item:
                return _TRUE
        except TypeError as ex:
            result_value = CELEvalError("no such overload", ex.__class__, ex.args)
    return result_value


# What the generated code calls as ``celpy.evaluation.<name>``: cel-python's functions, with the
# few that rebuild wrappers or typing objects per call replaced by equivalents built once.
_EVALUATION = SimpleNamespace(**{
    **vars(celpy.evaluation),
    "bool_lt": _boolean(operator.lt), "bool_le": _boolean(operator.le),
    "bool_gt": _boolean(operator.gt), "bool_ge": _boolean(operator.ge),
    "bool_eq": _boolean(operator.eq), "bool_ne": _boolean(operator.ne),
    "operator_in": _operator_in, "result": _result,
})


def _bools(function: Callable[..., Any]) -> Callable[..., Any]:
    """cel-python's ``has()`` answers a Python bool, which its ``&&``, ``||``, ``!`` and ``?:``
    refuse (``has(JWT.a) && has(JWT.b)`` is an evaluation error there; true in cel-go): the
    operands are made CEL bools first."""
    def coerced(*args: Any) -> Any:
        return function(*(celtypes.BoolType(a) if type(a) is bool else a for a in args))
    return coerced


_INT64 = range(-(2**63), 2**63)


def _int(source: Any, *args: Any) -> Any:
    """``int(string)`` as cel-python's IntType() converts it (Python's int(), then the int64
    range), without the overflow-check wrapper it builds on every call; everything else is
    left to IntType()."""
    if type(source) in (celtypes.StringType, str) and not args \
            and source[:2] not in ("0x", "0X") and source[:3] not in ("-0x", "-0X"):
        value = int(source)
        if value not in _INT64:
            raise ValueError("overflow")
        return int.__new__(celtypes.IntType, value)
    return celtypes.IntType(source, *args)


_CELTYPES = SimpleNamespace(**{
    **vars(celtypes),
    "IntType": _int,
    **{name: _bools(getattr(celtypes, name))
       for name in ("logical_and", "logical_or", "logical_not", "logical_condition")},
})
_CELPY = SimpleNamespace(evaluation=_EVALUATION, celtypes=_CELTYPES)


class Variables:
    """The activation the generated code reads: ``activation.<name>``, and a nested one for a
    macro's bound variable (``nested_activation``)."""

    __slots__ = ("_base", "_values")

    def __init__(self, values: Mapping[str, Any], base: Activation) -> None:
        self._values = values
        self._base = base

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            return getattr(self._base, name)  # type names; KeyError when undefined

    def nested_activation(self, annotations: Any = None,
                          vars: Mapping[str, Any] | None = None) -> Variables:
        return Variables({**self._values, **(vars or {})}, self._base)


def program(env: celpy.Environment, tree: Any) -> Callable[[Mapping[str, Any]], Any]:
    """The expression as ``f(variables) -> value or CELEvalError`` (evaluation errors are
    values, as in cel-python; Python exceptions it does not map propagate)."""
    runner = env.program(tree)
    base = runner.new_activation()
    source: str = runner.tp.source_text  # type: ignore[attr-defined]
    head, _, last = source.rstrip("\n").rpartition("\n")
    if not last.startswith(_LAST):
        # Not the shape this module knows: cel-python's own (slower) evaluation.
        def slow(values: Mapping[str, Any]) -> Any:
            try:
                return runner.evaluate(dict(values))
            except celpy.evaluation.CELEvalError as exc:
                return exc
        return slow
    text, constants = _hoist_literals(
        f"{head}\nCEL = lambda base_activation: {last[len('CEL = '):]}")
    namespace = {**vars(celpy.evaluation), "celpy": _CELPY, **constants}
    exec(compile(text, "<cel>", "exec"), namespace)
    run: Callable[[Variables], Any] = namespace["CEL"]

    def evaluate(values: Mapping[str, Any]) -> Any:
        return run(Variables(values, base))

    return evaluate
