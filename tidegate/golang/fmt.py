"""Go's fmt package (Sprint, Sprintln, Sprintf) over the values of `gotypes`.

Templates print everything through fmt, so its exact output (``map[a:1]``, ``%!d(float64=8080)``,
``%!(EXTRA ...)``) is part of the contract. This follows fmt/print.go and fmt/format.go.
"""

from __future__ import annotations

from typing import Any

from tidegate.golang.floats import format_float, format_v
from tidegate.golang.fmt_verbs import (
    int_from_arg,
    parse_arg_number,
    parse_num,
    rune_count,
    rune_str,
    sharp_float,
)
from tidegate.golang.strconv import can_backquote, decode_rune, is_print, quote, quote_rune
from tidegate.golang.types import (
    I64,
    LIST_TYPES,
    MAP_TYPES,
    MISSING,
    GoObject,
    NilMap,
    elem_is_iface,
    type_name,
)


def sort_key(k: Any) -> Any:
    """fmtsort order for map keys (all our maps have string keys)."""
    return k


def sorted_items(m: dict) -> list[tuple[Any, Any]]:
    """Map entries in Go's fmtsort order (strings compare bytewise)."""
    if all(isinstance(k, str) and k.isascii() for k in m):
        return sorted(m.items())
    return sorted(m.items(), key=lambda kv: kv[0].encode("utf-8", "surrogateescape"))


def format_plain(v: Any) -> str:
    """fmt.Sprint of one value (%v), the fast path used by template actions."""
    t = type(v)
    if t is str:
        return v
    if t is float:
        return format_v(v)
    if t is bool:
        return "true" if v else "false"
    if t is int or t is I64:
        return str(int(v))
    if v is None:
        return "<nil>"
    p = Printer()
    p.print_arg(v, "v")
    return "".join(p.buf)


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = type(a) is str
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_plain(a))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """fmt.Sprintln: always spaces, trailing newline."""
    return " ".join(format_plain(a) for a in args) + "\n"


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf."""
    p = Printer()
    p.do_printf(fmt, args)
    return "".join(p.buf)


class Printer:
    """One fmt.pp: the flags of the verb being formatted plus the output buffer."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.clear_flags()
        self.arg: Any = MISSING
        self.erroring = False
        self.reordered = False
        self.good_arg_num = True

    def clear_flags(self) -> None:
        self.wid = 0
        self.prec = 0
        self.wid_present = False
        self.prec_present = False
        self.minus = False
        self.plus = False
        self.sharp = False
        self.space = False
        self.zero = False
        self.plus_v = False
        self.sharp_v = False

    # ------------------------------------------------------------------ padding
    def _write_padding(self, n: int) -> None:
        if n > 0:
            self.buf.append(("0" if self.zero else " ") * n)

    def pad(self, s: str) -> None:
        if not self.wid_present or self.wid == 0:
            self.buf.append(s)
            return
        width = self.wid - rune_count(s)
        if not self.minus:
            self._write_padding(width)
            self.buf.append(s)
        else:
            self.buf.append(s)
            if width > 0:
                self.buf.append(" " * width)

    # ------------------------------------------------------------------ verbs
    def bad_verb(self, verb: str, value: Any = MISSING, have_value: bool = False) -> None:
        self.erroring = True
        self.buf.append("%!" + verb + "(")
        if self.arg is not MISSING and self.arg is not None:
            self.buf.append(type_name(self.arg) + "=")
            self.print_arg(self.arg, "v")
        elif have_value:
            self.buf.append(type_name(value) + "=")
            self.print_value(value, "v", 0)
        else:
            self.buf.append("<nil>")
        self.buf.append(")")
        self.erroring = False

    def fmt_bool(self, v: bool, verb: str) -> None:
        if verb in "tv":
            self.pad("true" if v else "false")
        else:
            self.bad_verb(verb)

    def fmt_integer(self, v: int, verb: str) -> None:
        if verb in "vd":
            self._fmt_int(v, 10, verb, "0123456789abcdefx")
        elif verb == "b":
            self._fmt_int(v, 2, verb, "0123456789abcdefx")
        elif verb in "oO":
            self._fmt_int(v, 8, verb, "0123456789abcdefx")
        elif verb == "x":
            self._fmt_int(v, 16, verb, "0123456789abcdefx")
        elif verb == "X":
            self._fmt_int(v, 16, verb, "0123456789ABCDEFX")
        elif verb == "c":
            self.pad(rune_str(v))
        elif verb == "q":
            self.pad(quote_rune(v, self.plus))
        elif verb == "U":
            ndig = self.prec if self.prec_present and self.prec > 4 else 4
            s = f"U+{v & 0xFFFFFFFFFFFFFFFF:0{ndig}X}"
            if self.sharp and 0 <= v <= 0x10FFFF and is_print(v):
                s += " '" + chr(v) + "'"
            old = self.zero
            self.zero = False
            self.pad(s)
            self.zero = old
        else:
            self.bad_verb(verb)

    def _fmt_int(self, v: int, base: int, verb: str, digits: str) -> None:
        negative = v < 0
        u = -v if negative else v
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and u == 0:
                old = self.zero
                self.zero = False
                self._write_padding(self.wid)
                self.zero = old
                return
        elif self.zero and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        if base == 10:
            s = str(u)
        else:
            s = ""
            while True:
                s = digits[u % base] + s
                u //= base
                if u == 0:
                    break
        if len(s) < prec:
            s = "0" * (prec - len(s)) + s
        if self.sharp:
            if base == 2:
                s = "0b" + s
            elif base == 8:
                if s[0] != "0":
                    s = "0" + s
            elif base == 16:
                s = "0" + digits[16] + s
        if verb == "O":
            s = "0o" + s
        if negative:
            s = "-" + s
        elif self.plus:
            s = "+" + s
        elif self.space:
            s = " " + s
        old = self.zero
        self.zero = False
        self.pad(s)
        self.zero = old

    def fmt_float(self, v: float, verb: str) -> None:
        if verb == "v":
            self._fmt_float(v, "g", -1)
        elif verb in "bgGxX":
            self._fmt_float(v, verb, -1)
        elif verb in "feEF":
            self._fmt_float(v, verb, 6)
        else:
            self.bad_verb(verb)

    def _fmt_float(self, v: float, verb: str, prec: int) -> None:
        if self.prec_present:
            prec = self.prec
        num = format_v(v) if verb == "g" and prec == -1 else format_float(v, verb, prec)
        if num[0] in "-+":
            sign, body = num[0], num[1:]
        else:
            sign, body = "+", num
        if self.space and sign == "+" and not self.plus:
            sign = " "
        if body in ("Inf", "NaN"):
            old = self.zero
            self.zero = False
            if body == "NaN" and not self.space and not self.plus:
                self.pad(body)
            else:
                self.pad(sign + body)
            self.zero = old
            return
        if self.sharp and verb != "b":
            body = sharp_float(body, verb, prec)
        if self.plus or sign != "+":
            if self.zero and self.wid_present and self.wid > len(body) + 1:
                self.buf.append(sign)
                self._write_padding(self.wid - len(body) - 1)
                self.buf.append(body)
                return
            self.pad(sign + body)
            return
        self.pad(body)

    def fmt_complex(self, v: complex, verb: str) -> None:
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb)
            return
        old_plus = self.plus
        self.buf.append("(")
        self.fmt_float(v.real, verb)
        self.plus = True
        self.fmt_float(v.imag, verb)
        self.buf.append("i)")
        self.plus = old_plus

    def fmt_string(self, v: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self._fmt_q(v)
            else:
                self._fmt_s(v)
        elif verb == "s":
            self._fmt_s(v)
        elif verb in "xX":
            self._fmt_sx(v, verb)
        elif verb == "q":
            self._fmt_q(v)
        else:
            self.bad_verb(verb)

    def _truncate(self, s: str) -> str:
        if self.prec_present:
            text = s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if len(text) > self.prec:
                b = s.encode("utf-8", "surrogateescape")
                # cut after prec runes, counting invalid bytes as one rune each
                i = 0
                n = 0
                while i < len(b) and n < self.prec:
                    _, size = decode_rune(b, i)
                    i += size
                    n += 1
                return b[:i].decode("utf-8", "surrogateescape")
        return s

    def _fmt_s(self, s: str) -> None:
        self.pad(self._truncate(s))

    def _fmt_q(self, s: str) -> None:
        s = self._truncate(s)
        if self.sharp and can_backquote(s):
            self.pad("`" + s + "`")
        else:
            self.pad(quote(s, self.plus))

    def _fmt_sx(self, s: str, verb: str) -> None:
        b = s.encode("utf-8", "surrogateescape")
        if self.prec_present and self.prec < len(b):
            b = b[: self.prec]
        digits = "0123456789abcdef" if verb == "x" else "0123456789ABCDEF"
        parts: list[str] = []
        for i, c in enumerate(b):
            piece = ""
            if self.space and i > 0:
                piece += " "
            if self.sharp and (self.space or i == 0):
                piece += "0x" if verb == "x" else "0X"
            piece += digits[c >> 4] + digits[c & 15]
            parts.append(piece)
        self.pad("".join(parts))

    # ------------------------------------------------------------------ dispatch
    def print_arg(self, arg: Any, verb: str) -> None:
        self.arg = arg
        if arg is None or arg is MISSING:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb)
            return
        if verb == "T":
            self._fmt_s(type_name(arg))
            return
        if verb == "p":
            self.bad_verb(verb)
            return
        t = type(arg)
        if t is bool:
            self.fmt_bool(arg, verb)
        elif t is float:
            self.fmt_float(arg, verb)
        elif t is int or t is I64:
            self.fmt_integer(int(arg), verb)
        elif t is str:
            self.fmt_string(arg, verb)
        elif t is complex:
            self.fmt_complex(arg, verb)
        elif not self._handle_methods(verb):
            self.print_value(arg, verb, 0)

    def _handle_methods(self, verb: str) -> bool:
        if self.erroring:
            return False
        arg = self.arg
        if isinstance(arg, GoObject) and not self.sharp_v and verb in "vsxXq":
            s = arg.go_string()
            if s is not None:
                self.fmt_string(s, verb)
                return True
        return False

    def print_value(self, v: Any, verb: str, depth: int, iface: bool = False) -> None:
        """printValue; `iface` marks an element whose static type is interface {}."""
        if depth > 0 and v is not None and v is not MISSING:
            self.arg = v
            if self._handle_methods(verb):
                return
        self.arg = MISSING
        t = type(v)
        if v is None or v is MISSING:
            if iface:
                if self.sharp_v:
                    self.buf.append("interface {}(nil)")
                else:
                    self.buf.append("<nil>")
            elif depth == 0:
                self.buf.append("<invalid reflect.Value>")
            elif verb == "v":
                self.buf.append("<nil>")
            else:
                self.bad_verb(verb)
            return
        if t is bool:
            self.arg = v
            self.fmt_bool(v, verb)
        elif t is int or t is I64:
            self.arg = v
            self.fmt_integer(int(v), verb)
        elif t is float:
            self.arg = v
            self.fmt_float(v, verb)
        elif t is complex:
            self.arg = v
            self.fmt_complex(v, verb)
        elif t is str:
            self.arg = v
            self.fmt_string(v, verb)
        elif isinstance(v, MAP_TYPES):
            sub_iface = elem_is_iface(v)
            if self.sharp_v:
                self.buf.append(type_name(v))
                if t is NilMap:
                    self.buf.append("(nil)")
                    return
                self.buf.append("{")
            else:
                self.buf.append("map[")
            for i, (k, val) in enumerate(sorted_items(v)):
                if i > 0:
                    self.buf.append(", " if self.sharp_v else " ")
                self.print_value(k, verb, depth + 1)
                self.buf.append(":")
                self.print_value(val, verb, depth + 1, sub_iface)
            self.buf.append("}" if self.sharp_v else "]")
        elif isinstance(v, LIST_TYPES):
            sub_iface = elem_is_iface(v)
            if self.sharp_v:
                self.buf.append(type_name(v) + "{")
                for i, e in enumerate(v):
                    if i > 0:
                        self.buf.append(", ")
                    self.print_value(e, verb, depth + 1, sub_iface)
                self.buf.append("}")
            else:
                self.buf.append("[")
                for i, e in enumerate(v):
                    if i > 0:
                        self.buf.append(" ")
                    self.print_value(e, verb, depth + 1, sub_iface)
                self.buf.append("]")
        elif isinstance(v, GoObject):
            self._print_object(v, verb, depth)
        else:
            self.buf.append(str(v))

    def _print_object(self, v: GoObject, verb: str, depth: int) -> None:
        if v.go_kind == "ptr" and depth == 0:
            self.buf.append("&")
        if self.sharp_v:
            self.buf.append(v.go_type.lstrip("*"))
        self.buf.append("{")
        for i, name in enumerate(v.go_fields):
            if i > 0:
                self.buf.append(", " if self.sharp_v else " ")
            if self.plus_v or self.sharp_v:
                self.buf.append(name + ":")
            self.print_value(getattr(v, "f_" + name), verb, depth + 1)
        self.buf.append("}")

    # ------------------------------------------------------------------ printf
    def _arg_number(self, arg_num: int, fmt: str, i: int, num_args: int) -> tuple[int, int, bool]:
        if len(fmt) <= i or fmt[i] != "[":
            return arg_num, i, False
        self.reordered = True
        index, wid, ok = parse_arg_number(fmt[i:])
        if ok and 0 <= index < num_args:
            return index, i + wid, True
        self.good_arg_num = False
        return arg_num, i + wid, ok

    def do_printf(self, fmt: str, a: list[Any]) -> None:
        end = len(fmt)
        arg_num = 0
        after_index = False
        self.reordered = False
        i = 0
        while i < end:
            self.good_arg_num = True
            lasti = i
            while i < end and fmt[i] != "%":
                i += 1
            if i > lasti:
                self.buf.append(fmt[lasti:i])
            if i >= end:
                break
            i += 1
            self.clear_flags()
            simple_done = False
            while i < end:
                c = fmt[i]
                if c == "#":
                    self.sharp = True
                elif c == "0":
                    self.zero = not self.minus
                elif c == "+":
                    self.plus = True
                elif c == "-":
                    self.minus = True
                    self.zero = False
                elif c == " ":
                    self.space = True
                else:
                    if "a" <= c <= "z" and arg_num < len(a):
                        if c == "v":
                            self.sharp_v = self.sharp
                            self.sharp = False
                            self.plus_v = self.plus
                            self.plus = False
                        self.print_arg(a[arg_num], c)
                        arg_num += 1
                        i += 1
                        simple_done = True
                    break
                i += 1
            if simple_done:
                continue
            arg_num, i, after_index = self._arg_number(arg_num, fmt, i, len(a))
            if i < end and fmt[i] == "*":
                i += 1
                self.wid, self.wid_present, arg_num = int_from_arg(a, arg_num)
                if not self.wid_present:
                    self.buf.append("%!(BADWIDTH)")
                if self.wid < 0:
                    self.wid = -self.wid
                    self.minus = True
                    self.zero = False
                after_index = False
            else:
                self.wid, self.wid_present, i = parse_num(fmt, i, end)
                if after_index and self.wid_present:
                    self.good_arg_num = False
            if i + 1 < end and fmt[i] == ".":
                i += 1
                if after_index:
                    self.good_arg_num = False
                arg_num, i, after_index = self._arg_number(arg_num, fmt, i, len(a))
                if i < end and fmt[i] == "*":
                    i += 1
                    self.prec, self.prec_present, arg_num = int_from_arg(a, arg_num)
                    if self.prec < 0:
                        self.prec = 0
                        self.prec_present = False
                    if not self.prec_present:
                        self.buf.append("%!(BADPREC)")
                    after_index = False
                else:
                    self.prec, self.prec_present, i = parse_num(fmt, i, end)
                    if not self.prec_present:
                        self.prec = 0
                        self.prec_present = True
            if not after_index:
                arg_num, i, after_index = self._arg_number(arg_num, fmt, i, len(a))
            if i >= end:
                self.buf.append("%!(NOVERB)")
                break
            verb = fmt[i]
            i += 1
            if verb == "%":
                self.buf.append("%")
            elif not self.good_arg_num:
                self.buf.append("%!" + verb + "(BADINDEX)")
            elif arg_num >= len(a):
                self.buf.append("%!" + verb + "(MISSING)")
            else:
                if verb == "v":
                    self.sharp_v = self.sharp
                    self.sharp = False
                    self.plus_v = self.plus
                    self.plus = False
                self.print_arg(a[arg_num], verb)
                arg_num += 1
        if not self.reordered and arg_num < len(a):
            self.clear_flags()
            self.buf.append("%!(EXTRA ")
            for j, arg in enumerate(a[arg_num:]):
                if j > 0:
                    self.buf.append(", ")
                if arg is None or arg is MISSING:
                    self.buf.append("<nil>")
                else:
                    self.buf.append(type_name(arg) + "=")
                    self.print_arg(arg, "v")
            self.buf.append(")")
