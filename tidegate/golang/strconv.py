"""Go's strconv quoting and unicode.IsPrint, shared by fmt, the lexer and the JS escaper."""

from __future__ import annotations

import unicodedata

# BMP code points assigned after Unicode 13 (Go 1.19's tables): not printable for Go
_NEWER = ((0x0870, 0x089F), (0x08B5, 0x08B5), (0x08C8, 0x08D2), (0x0C3C, 0x0C3C),
          (0x0C5D, 0x0C5D), (0x0CDD, 0x0CDD), (0x170D, 0x170D), (0x1715, 0x1715),
          (0x171F, 0x171F), (0x180F, 0x180F), (0x1AC1, 0x1ACE), (0x1B4C, 0x1B4C),
          (0x1B7D, 0x1B7E), (0x1DFA, 0x1DFA), (0x2C2F, 0x2C2F), (0x2C5F, 0x2C5F),
          (0x2E53, 0x2E5D), (0xA7C0, 0xA7C1), (0xA7D0, 0xA7D9), (0xA7F2, 0xA7F4),
          (0xFBC2, 0xFBC2), (0xFD40, 0xFD4F), (0xFDCF, 0xFDCF), (0xFDFE, 0xFDFF))


def is_print(r: int) -> bool:
    """unicode.IsPrint (letters, marks, numbers, punctuation, symbols and ASCII space)."""
    if r == 0x20:
        return True
    if 0x0870 <= r <= 0xFDFF and any(a <= r <= b for a, b in _NEWER):
        return False
    try:
        cat = unicodedata.category(chr(r))
    except ValueError:
        return False
    return cat[0] in "LMNPS"


def quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote / QuoteToASCII of a Go string."""
    out = ['"']
    b = s.encode("utf-8", "surrogateescape")
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            ch = chr(c)
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif 0x20 <= c < 0x7F:
                out.append(ch)
            else:
                out.append(_esc_ctrl(c))
            i += 1
            continue
        r, size = decode_rune(b, i)
        if r == 0xFFFD and size == 1:
            out.append(f"\\x{c:02x}")
            i += 1
            continue
        i += size
        if not ascii_only and is_print(r):
            out.append(chr(r))
        elif r < 0x10000:
            out.append(f"\\u{r:04x}")
        else:
            out.append(f"\\U{r:08x}")
    out.append('"')
    return "".join(out)


def _esc_ctrl(c: int) -> str:
    return {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}.get(
        c, f"\\x{c:02x}")


def decode_rune(b: bytes, i: int) -> tuple[int, int]:
    """utf8.DecodeRune: (rune, size), (0xFFFD, 1) on invalid input."""
    c = b[i]
    if c < 0x80:
        return c, 1
    for size in (2, 3, 4):
        chunk = b[i:i + size]
        if len(chunk) < size:
            break
        try:
            s = chunk.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(s) == 1:
            return ord(s), size
    return 0xFFFD, 1


def quote_rune(r: int, ascii_only: bool = False) -> str:
    """strconv.QuoteRune."""
    if r < 0 or r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    if r == ord("'"):
        return "'\\''"
    if r == ord("\\"):
        return "'\\\\'"
    if r < 0x80:
        if 0x20 <= r < 0x7F:
            return "'" + chr(r) + "'"
        return "'" + _esc_ctrl(r) + "'"
    if not ascii_only and is_print(r):
        return "'" + chr(r) + "'"
    if r < 0x10000:
        return f"'\\u{r:04x}'"
    return f"'\\U{r:08x}'"


def can_backquote(s: str) -> bool:
    """strconv.CanBackquote."""
    for ch in s:
        o = ord(ch)
        if ch == "`" or o == 0xFEFF or 0xDC80 <= o <= 0xDCFF:
            return False
        if (o < 0x20 and ch != "\t") or o == 0x7F:
            return False
    return True
