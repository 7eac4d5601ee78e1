"""Sprig math (numeric.go) with spf13/cast conversions and shopspring/decimal float ops."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation, localcontext
from typing import Any

from tidegate.golang.fmt import sprint
from tidegate.golang.literals import parse_float, parse_int
from tidegate.golang.types import I64, MISSING, IntList, is_int

from ..funcdef import ANY, FLOAT64, INT, GoError, GoFunc, fn

FUNCS: dict[str, GoFunc] = {}


def wrap64(v: int) -> int:
    """Two's complement int64 wrap-around."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def f2i(f: float) -> int:
    """Go's int64(f) conversion (amd64: out of range gives the minimum int64)."""
    if f != f or f >= 2**63 or f < -(2**63):
        return -(2**63)
    return int(f)


def _trim_zero_decimal(s: str) -> str:
    found_zero = False
    for i in range(len(s), 0, -1):
        c = s[i - 1]
        if c == ".":
            if found_zero:
                return s[: i - 1]
        elif c == "0":
            found_zero = True
        else:
            return s
    return s


def to_int64(v: Any) -> int:
    """cast.ToInt64 (errors give 0)."""
    t = type(v)
    if t is int or t is I64:
        return int(v)
    if t is float:
        return f2i(v)
    if t is bool:
        return 1 if v else 0
    if t is str:
        n = parse_int(_trim_zero_decimal(v))
        if n is None or not (-(2**63) <= n < 2**63):
            return 0
        return n
    return 0


to_int = to_int64


def to_float64(v: Any) -> float:
    """cast.ToFloat64 (errors give 0)."""
    t = type(v)
    if t is float:
        return v
    if t is int or t is I64:
        return float(v)
    if t is bool:
        return 1.0 if v else 0.0
    if t is str:
        f = parse_float(v)
        return 0.0 if f is None else f
    return 0.0


fn(FUNCS, "atoi", ("string",), returns=INT)(lambda s: _atoi(s))


def _atoi(s: str) -> int:
    t = s[1:] if s[:1] in "+-" else s
    if not t or not t.isascii() or not t.isdigit():
        return 0
    n = int(s)
    return n if -(2**63) <= n < 2**63 else 0


fn(FUNCS, "int64", (ANY,), returns="int64")(lambda v: I64(to_int64(v)))
fn(FUNCS, "int", (ANY,), returns=INT)(lambda v: to_int64(v))
fn(FUNCS, "float64", (ANY,), returns=FLOAT64)(to_float64)


@fn(FUNCS, "toDecimal", (ANY,), returns="int64")
def to_decimal(v: Any) -> I64:
    s = sprint([None if v is MISSING else v])
    t = s[1:] if s[:1] in "+-" else s
    if not t or any(c not in "01234567" for c in t):
        return I64(0)
    n = int(s, 8)
    return I64(n if -(2**63) <= n < 2**63 else 0)


fn(FUNCS, "add1", (ANY,), returns="int64")(lambda i: I64(wrap64(to_int64(i) + 1)))


@fn(FUNCS, "add", (), variadic=ANY, returns="int64")
def add(*vals: Any) -> I64:
    a = 0
    for b in vals:
        a = wrap64(a + to_int64(b))
    return I64(a)


fn(FUNCS, "sub", (ANY, ANY), returns="int64")(
    lambda a, b: I64(wrap64(to_int64(a) - to_int64(b))))


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise GoError("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return wrap64(q if (a >= 0) == (b >= 0) else -q)


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise GoError("runtime error: integer divide by zero")
    return a - _go_div(a, b) * b


fn(FUNCS, "div", (ANY, ANY), returns="int64")(lambda a, b: I64(_go_div(to_int64(a), to_int64(b))))
fn(FUNCS, "mod", (ANY, ANY), returns="int64")(lambda a, b: I64(_go_mod(to_int64(a), to_int64(b))))


@fn(FUNCS, "mul", (ANY,), variadic=ANY, returns="int64")
def mul(a: Any, *vals: Any) -> I64:
    r = to_int64(a)
    for b in vals:
        r = wrap64(r * to_int64(b))
    return I64(r)


@fn(FUNCS, "randInt", (INT, INT), returns=INT)
def rand_int(lo: int, hi: int) -> int:
    import random

    if hi - lo <= 0:
        raise GoError("invalid argument to Intn")
    return random.randrange(hi - lo) + lo


def _dec(f: float) -> Decimal:
    if math.isnan(f) or math.isinf(f):
        raise GoError(f"Cannot create a Decimal from {f}")
    return Decimal(repr(f))


def _dec_op(a: Any, rest: tuple[Any, ...], op: str) -> float:
    with localcontext() as ctx:
        ctx.prec = 400
        acc = _dec(to_float64(a))
        for x in rest:
            d = _dec(to_float64(x))
            if op == "+":
                acc = acc + d
            elif op == "-":
                acc = acc - d
            elif op == "*":
                acc = acc * d
            else:
                if d == 0:
                    raise GoError("decimal division by 0")
                try:
                    acc = (acc / d).quantize(Decimal(1).scaleb(-16), rounding=ROUND_HALF_UP)
                except (DivisionByZero, InvalidOperation) as e:
                    raise GoError("decimal division by 0") from e
        # decimal has no negative zero: Float64() of a zero result is +0
        return float(acc) or 0.0


fn(FUNCS, "add1f", (ANY,), returns=FLOAT64)(lambda i: _dec_op(i, (1,), "+"))
fn(FUNCS, "addf", (), variadic=ANY, returns=FLOAT64)(lambda *v: _dec_op(0.0, v, "+"))
fn(FUNCS, "subf", (ANY,), variadic=ANY, returns=FLOAT64)(lambda a, *v: _dec_op(a, v, "-"))
fn(FUNCS, "divf", (ANY,), variadic=ANY, returns=FLOAT64)(lambda a, *v: _dec_op(a, v, "/"))
fn(FUNCS, "mulf", (ANY,), variadic=ANY, returns=FLOAT64)(lambda a, *v: _dec_op(a, v, "*"))


def _max(a: Any, *rest: Any) -> I64:
    r = to_int64(a)
    for b in rest:
        r = max(r, to_int64(b))
    return I64(r)


def _min(a: Any, *rest: Any) -> I64:
    r = to_int64(a)
    for b in rest:
        r = min(r, to_int64(b))
    return I64(r)


def _go_fmax(a: float, b: float) -> float:
    if (math.isinf(a) and a > 0) or (math.isinf(b) and b > 0):
        return math.inf
    if a != a or b != b:
        return math.nan
    if a == 0 and b == 0:
        return b if math.copysign(1, a) < 0 else a
    return a if a > b else b


def _go_fmin(a: float, b: float) -> float:
    if (math.isinf(a) and a < 0) or (math.isinf(b) and b < 0):
        return -math.inf
    if a != a or b != b:
        return math.nan
    if a == 0 and b == 0:
        return a if math.copysign(1, a) < 0 else b
    return a if a < b else b


def _maxf(a: Any, *rest: Any) -> float:
    r = to_float64(a)
    for b in rest:
        r = _go_fmax(r, to_float64(b))
    return r


def _minf(a: Any, *rest: Any) -> float:
    r = to_float64(a)
    for b in rest:
        r = _go_fmin(r, to_float64(b))
    return r


fn(FUNCS, "max", (ANY,), variadic=ANY, returns="int64")(_max)
fn(FUNCS, "biggest", (ANY,), variadic=ANY, returns="int64")(_max)
fn(FUNCS, "min", (ANY,), variadic=ANY, returns="int64")(_min)
fn(FUNCS, "maxf", (ANY,), variadic=ANY, returns=FLOAT64)(_maxf)
fn(FUNCS, "minf", (ANY,), variadic=ANY, returns=FLOAT64)(_minf)
fn(FUNCS, "floor", (ANY,), returns=FLOAT64)(lambda a: _fl(to_float64(a), math.floor))
fn(FUNCS, "ceil", (ANY,), returns=FLOAT64)(lambda a: _fl(to_float64(a), math.ceil))


def _fl(v: float, f: Any) -> float:
    if math.isnan(v) or math.isinf(v):
        return v
    r = float(f(v))
    return math.copysign(r, v) if r == 0 else r


@fn(FUNCS, "round", (ANY, INT), variadic=FLOAT64, returns=FLOAT64)
def round_(a: Any, p: int, *r_opt: float) -> float:
    round_on = r_opt[0] if r_opt else 0.5
    val = to_float64(a)
    pw = math.pow(10, float(p))
    digit = pw * val
    if math.isinf(digit) or math.isnan(digit):
        return digit / pw
    frac = math.modf(digit)[0]
    r = math.ceil(digit) if frac >= round_on else math.floor(digit)
    # math.Floor/Ceil keep the sign of zero (round -0 2 is -0)
    return math.copysign(float(r), digit) / pw


def until_step(start: int, stop: int, step: int) -> IntList:
    v = IntList()
    if stop < start:
        if step >= 0:
            return v
        v.extend(range(start, stop, step))
        return v
    if step <= 0:
        return v
    v.extend(range(start, stop, step))
    return v


fn(FUNCS, "until", (INT,), returns="[]int")(lambda n: until_step(0, n, -1 if n < 0 else 1))
fn(FUNCS, "untilStep", (INT, INT, INT), returns="[]int")(until_step)


@fn(FUNCS, "seq", (), variadic=INT, returns="string")
def seq(*params: int) -> str:
    inc = 1
    if len(params) == 0:
        return ""
    if len(params) == 1:
        start, end = 1, params[0]
        if end < start:
            inc = -1
        vals = until_step(start, end + inc, inc)
    elif len(params) == 3:
        start, step, end = params
        if end < start:
            inc = -1
            if step > 0:
                return ""
        vals = until_step(start, end + inc, step)
    elif len(params) == 2:
        start, end = params
        step = -1 if end < start else 1
        vals = until_step(start, end + step, step)
    else:
        return ""
    return " ".join(str(x) for x in vals)


__all__ = ["FUNCS", "f2i", "is_int", "to_float64", "to_int", "to_int64", "wrap64"]
