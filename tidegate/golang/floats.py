"""Go's strconv float formatting, which Python's repr does not match.

One place for every float text Go writes: fmt's ``%v`` and ``strconv.FormatFloat(v, 'g', -1,
64)`` (`format_v`), encoding/json's (`format_json`) and the other verbs of fmt and strconv
(`format_float`). Go prints float64 with the shortest digits that round-trip (as Python's
repr) but lays them out its own way: exponent form when the exponent is < -4 or >= 6 for
``%v`` (>= 21 or < -6 for JSON), at least two exponent digits (``1e+06``), except JSON which
cleans ``e-07`` up to ``e-7``; the sign of zero is kept (``-0``).
"""

from __future__ import annotations

import math

__all__ = ["format_float", "format_json", "format_v", "shortest_digits"]


def shortest_digits(v: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``|v|`` and the decimal point: ``|v| == 0.DIGITS * 10**point``.

    ``digits`` has no leading or trailing zeros ("0" for zero). Python's repr and Go's strconv
    pick the same shortest digits; only the layout differs.
    """
    if v == 0:
        return "0", 1
    mantissa, _, exp = repr(abs(v)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(whole + frac) - len(digits))
    return digits.rstrip("0") or "0", point


def _exp_str(exp: int, letter: str = "e", min_digits: int = 2) -> str:
    sign = "-" if exp < 0 else "+"
    return f"{letter}{sign}{abs(exp):0{min_digits}d}"


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def _layout_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _layout_e(digits: str, point: int, letter: str = "e") -> str:
    exp = point - 1 if digits != "0" else 0
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return mant + _exp_str(exp, letter)


def _format_g_shortest(v: float, upper: bool = False) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)``: exponent form when exp < -4 or exp >= 6."""
    s = _special(v)
    if s is not None:
        return s
    digits, point = shortest_digits(v)
    exp = point - 1
    body = _layout_e(digits, point, "E" if upper else "e") if (exp < -4 or exp >= 6) \
        and digits != "0" else _layout_f(digits, point)
    return ("-" if math.copysign(1.0, v) < 0 else "") + body


def format_v(v: float) -> str:
    """fmt's ``%v`` of a float64, which is ``strconv.FormatFloat(v, 'g', -1, 64)``."""
    return _format_g_shortest(v)


def format_json(v: float) -> str:
    """encoding/json's float64 text: 'f' format unless < 1e-6 or >= 1e21, then 'e' with
    ``e-09`` cleaned up to ``e-9``. NaN and infinities are the caller's to refuse."""
    digits, point = shortest_digits(v)
    mag = abs(v)
    if mag != 0 and (mag < 1e-6 or mag >= 1e21):
        text = _layout_e(digits, point)
        if text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
    else:
        text = _layout_f(digits, point)
    return ("-" if math.copysign(1.0, v) < 0 else "") + text


def format_float(v: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(v, verb, prec, 64) for verbs e E f F g G x X b (prec -1 = shortest)."""
    s = _special(v)
    if s is not None:
        return s
    if verb in "gG":
        if prec < 0:
            return _format_g_shortest(v, upper=verb == "G")
        return _fmt_g_prec(v, prec, verb == "G")
    if verb in "eE":
        if prec < 0:
            digits, dp = shortest_digits(v)
            neg = math.copysign(1.0, v) < 0
            exp = 0 if digits == "0" else dp - 1
            out = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return ("-" if neg else "") + out + _exp_str(exp, verb)
        out = f"{v:.{prec}e}"
        return out.replace("e", verb) if verb == "E" else out
    if verb in "fF":
        if prec < 0:
            digits, dp = shortest_digits(v)
            neg = math.copysign(1.0, v) < 0
            if dp <= 0:
                out = "0." + "0" * (-dp) + digits if digits != "0" else "0"
            elif dp >= len(digits):
                out = digits + "0" * (dp - len(digits))
            else:
                out = digits[:dp] + "." + digits[dp:]
            return ("-" if neg else "") + out
        return f"{v:.{prec}f}"
    if verb in "xX":
        return _fmt_x(v, prec, verb == "X")
    if verb == "b":
        m, e = math.frexp(abs(v))
        mant = int(m * (1 << 53))
        exp = e - 53
        if exp < -1074:  # denormal: strconv keeps the raw mantissa, exponent -1074
            mant >>= -1074 - exp
            exp = -1074
        if v == 0:
            mant, exp = 0, -1074
        return ("-" if math.copysign(1.0, v) < 0 else "") + f"{mant}p{exp:+d}"
    return repr(v)


def _fmt_g_prec(v: float, prec: int, upper: bool) -> str:
    if prec == 0:
        prec = 1
    neg = math.copysign(1.0, v) < 0
    e_form = f"{abs(v):.{prec - 1}e}"
    mant, exp_s = e_form.split("e")
    digits = mant.replace(".", "").rstrip("0") or "0"
    exp = int(exp_s)
    if abs(v) == 0:
        digits, exp = "0", 0
    dp = exp + 1
    nd = len(digits)
    eprec = prec
    if eprec > nd and nd >= dp:
        eprec = nd
    if exp < -4 or exp >= eprec:
        p = min(prec, nd)
        out = digits[0] + ("." + digits[1:p] if p > 1 else "")
        out += _exp_str(exp, "E" if upper else "e")
    else:
        p = prec
        if p > dp:
            p = nd
        frac = max(p - dp, 0)
        if dp <= 0:
            body = "0"
            fr = ("0" * (-dp) + digits)[:frac].ljust(frac, "0")
        else:
            body = (digits[:dp]).ljust(dp, "0")
            fr = digits[dp:dp + frac].ljust(frac, "0")
        out = body + ("." + fr if frac > 0 else "")
    return ("-" if neg else "") + out


def _fmt_x(v: float, prec: int, upper: bool) -> str:
    neg = math.copysign(1.0, v) < 0
    a = abs(v)
    if a == 0:
        mant, exp = 0, 0
    else:
        m, e = math.frexp(a)  # a = m * 2**e, 0.5 <= m < 1
        mant = int(m * (1 << 53))  # 53-bit integer mantissa
        exp = e - 1
        # normalise to leading 1 bit at position 52
        while mant and mant < (1 << 52):
            mant <<= 1
            exp -= 1
    # mant has 53 bits: 1 + 52 fraction bits = 13 hex digits after the point
    frac = mant & ((1 << 52) - 1)
    lead = mant >> 52
    if prec >= 0 and prec < 13:
        shift = (13 - prec) * 4
        full = mant
        q, r = divmod(full, 1 << shift)
        half = 1 << (shift - 1)
        if r > half or (r == half and q & 1):
            q += 1
        if q >> (prec * 4) >= 2:
            q >>= 1
            exp += 1
        lead = q >> (prec * 4)
        frac_digits = f"{q & ((1 << (prec * 4)) - 1):0{prec}x}" if prec > 0 else ""
    else:
        frac_digits = f"{frac:013x}"
        frac_digits = frac_digits.rstrip("0") if prec < 0 else frac_digits + "0" * (prec - 13)
    out = "0x" + str(lead)
    if frac_digits:
        out += "." + frac_digits
    out += "p" + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"
    if upper:
        out = out.upper()
    return ("-" if neg else "") + out
