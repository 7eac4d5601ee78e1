"""Helpers of `tidegate.golang.fmt`'s Printf: verb argument parsing ("%[2]*.*d") and
digit-level formatting."""

from __future__ import annotations

from typing import Any

from tidegate.golang.types import I64


def rune_count(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def rune_str(v: int) -> str:
    if v < 0 or v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
        return "\ufffd"
    return chr(v)


def sharp_float(body: str, verb: str, prec: int) -> str:
    digits = 0
    if verb in "vgGx":
        digits = prec if prec != -1 else 6
    tail = ""
    num = body
    for idx, ch in enumerate(body):
        if ch in "pP" or (ch in "eE" and verb not in "xX"):
            tail = body[idx:]
            num = body[:idx]
            break
    has_point = "." in num
    saw_nonzero = False
    for ch in num:
        if ch == ".":
            continue
        if ch != "0":
            saw_nonzero = True
        if saw_nonzero:
            digits -= 1
    if not has_point:
        if num == "0":
            digits -= 1
        num += "."
    if digits > 0:
        num += "0" * digits
    return num + tail


def parse_num(s: str, start: int, end: int) -> tuple[int, bool, int]:
    if start >= end:
        return 0, False, end
    num = 0
    isnum = False
    i = start
    while i < end and "0" <= s[i] <= "9":
        if num > 1_000_000:
            return 0, False, end
        num = num * 10 + ord(s[i]) - 48
        isnum = True
        i += 1
    return num, isnum, i


def parse_arg_number(fmt: str) -> tuple[int, int, bool]:
    if len(fmt) < 3:
        return 0, 1, False
    for i in range(1, len(fmt)):
        if fmt[i] == "]":
            width, ok, newi = parse_num(fmt, 1, i)
            if not ok or newi != i:
                return 0, i + 1, False
            return width - 1, i + 1, True
    return 0, 1, False


def int_from_arg(a: list[Any], arg_num: int) -> tuple[int, bool, int]:
    num, is_int, new = 0, False, arg_num
    if arg_num < len(a):
        v = a[arg_num]
        if type(v) is int or type(v) is I64:
            num, is_int = int(v), True
        new = arg_num + 1
        if num > 1_000_000 or num < -1_000_000:
            num, is_int = 0, False
    return num, is_int, new
