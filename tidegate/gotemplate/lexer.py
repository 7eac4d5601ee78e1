"""Lexer for Go templates, token for token like text/template/parse/lex.go.

Error texts and the line attached to each token feed straight into Go's parse error messages,
so the state machine mirrors Go's; positions are str indexes (converted to bytes on error).
"""

from __future__ import annotations

from typing import NamedTuple

# item types (same order as Go; only the keyword boundary matters)
ERROR = 0
BOOL = 1
CHAR = 2
CHAR_CONSTANT = 3
COMMENT = 4
COMPLEX = 5
ASSIGN = 6
DECLARE = 7
EOF = 8
FIELD = 9
IDENTIFIER = 10
LEFT_DELIM = 11
LEFT_PAREN = 12
NUMBER = 13
PIPE = 14
RAW_STRING = 15
RIGHT_DELIM = 16
RIGHT_PAREN = 17
SPACE = 18
STRING = 19
TEXT = 20
VARIABLE = 21
KEYWORD = 22
BLOCK = 23
BREAK = 24
CONTINUE = 25
DOT = 26
DEFINE = 27
ELSE = 28
END = 29
IF = 30
NIL = 31
RANGE = 32
TEMPLATE = 33
WITH = 34

KEYWORDS = {
    ".": DOT,
    "block": BLOCK,
    "break": BREAK,
    "continue": CONTINUE,
    "define": DEFINE,
    "else": ELSE,
    "end": END,
    "if": IF,
    "range": RANGE,
    "nil": NIL,
    "template": TEMPLATE,
    "with": WITH,
}

SPACE_CHARS = " \t\r\n"


class Item(NamedTuple):
    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        from tidegate.golang.fmt import quote

        if len(self.val.encode("utf-8", "surrogateescape")) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


ZERO_ITEM = Item(ERROR, 0, "", 0)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or (ch.isdigit() and ch.isdecimal())


def _go_rune_repr(ch: str) -> str:
    """%#U of a rune: U+002D '-'."""
    o = ord(ch)
    from tidegate.golang.fmt import is_print

    s = f"U+{o:04X}"
    if is_print(o):
        s += f" '{ch}'"
    return s


class Lexer:
    """Produces the full item list up front (the Go lexer stops at the first error)."""

    def __init__(self, text: str, break_ok: bool = True, continue_ok: bool = True) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.items: list[Item] = []
        self.paren_depth = 0
        self.break_ok = break_ok
        self.continue_ok = continue_ok

    # -------------------------------------------------------------- helpers
    def next(self) -> str:
        if self.pos >= len(self.input):
            self.pos = len(self.input) + 1  # mark EOF consumed (backup restores)
            return ""
        ch = self.input[self.pos]
        self.pos += 1
        if ch == "\n":
            self.line += 1
        return ch

    def backup(self) -> None:
        if self.pos > len(self.input):
            self.pos = len(self.input)
            return
        if self.pos > 0:
            self.pos -= 1
            if self.input[self.pos] == "\n":
                self.line -= 1

    def peek(self) -> str:
        if self.pos >= len(self.input):
            return ""
        return self.input[self.pos]

    def emit(self, typ: int) -> None:
        self.items.append(Item(typ, self.start, self.input[self.start:self.pos], self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.line += self.input.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def accept(self, valid: str) -> bool:
        ch = self.next()
        if ch and ch in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            ch = self.next()
            if not ch or ch not in valid:
                break
        self.backup()

    def errorf(self, msg: str) -> None:
        self.items.append(Item(ERROR, self.start, msg, self.start_line))

    # -------------------------------------------------------------- states
    def run(self) -> list[Item]:
        state = self.lex_text
        while state is not None:
            state = state()
        return self.items

    def lex_text(self):
        text = self.input
        x = text.find("{{", self.pos)
        if x >= 0:
            self.pos = x
            trim = 0
            if _has_left_trim(text, x + 2):
                seg = text[self.start:x]
                trim = len(seg) - len(seg.rstrip(SPACE_CHARS))
            self.pos -= trim
            if self.pos > self.start:
                self.line += text.count("\n", self.start, self.pos)
                self.emit(TEXT)
            self.pos += trim
            self.ignore()
            return self.lex_left_delim
        self.pos = len(text)
        if self.pos > self.start:
            self.line += text.count("\n", self.start, self.pos)
            self.emit(TEXT)
        self.emit(EOF)
        return None

    def at_right_delim(self) -> tuple[bool, bool]:
        text = self.input
        p = self.pos
        if _has_right_trim(text, p) and text.startswith("}}", p + 2):
            return True, True
        if text.startswith("}}", p):
            return True, False
        return False, False

    def lex_left_delim(self):
        text = self.input
        self.pos += 2
        trim = _has_left_trim(text, self.pos)
        after = 2 if trim else 0
        if text.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.emit(LEFT_DELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self):
        text = self.input
        self.pos += 2
        i = text.find("*/", self.pos)
        if i < 0:
            self.errorf("unclosed comment")
            return None
        self.pos = i + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.errorf("comment ends before closing delimiter")
            return None
        if trim:
            self.pos += 2
        self.pos += 2
        if trim:
            seg = text[self.pos:]
            self.pos += len(seg) - len(seg.lstrip(SPACE_CHARS))
        self.ignore()
        return self.lex_text

    def lex_right_delim(self):
        text = self.input
        trim = _has_right_trim(text, self.pos)
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit(RIGHT_DELIM)
        if trim:
            seg = text[self.pos:]
            self.pos += len(seg) - len(seg.lstrip(SPACE_CHARS))
            self.ignore()
        return self.lex_text

    def lex_inside_action(self):
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.errorf("unclosed left paren")
            return None
        r = self.next()
        if r == "":
            self.errorf("unclosed action")
            return None
        if r in SPACE_CHARS:
            self.backup()
            return self.lex_space
        if r == "=":
            self.emit(ASSIGN)
        elif r == ":":
            if self.next() != "=":
                self.errorf("expected :=")
                return None
            self.emit(DECLARE)
        elif r == "|":
            self.emit(PIPE)
        elif r == '"':
            return self.lex_quote
        elif r == "`":
            return self.lex_raw_quote
        elif r == "$":
            return self.lex_variable
        elif r == "'":
            return self.lex_char
        elif r == "." and self.pos < len(self.input) and not ("0" <= self.input[self.pos] <= "9"):
            return self.lex_field
        elif r in "+-." or "0" <= r <= "9":
            self.backup()
            return self.lex_number
        elif _is_alnum(r):
            self.backup()
            return self.lex_identifier
        elif r == "(":
            self.emit(LEFT_PAREN)
            self.paren_depth += 1
        elif r == ")":
            self.emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.errorf(f"unexpected right paren {_go_rune_repr(r)}")
                return None
        elif ord(r) < 0x80 and r.isprintable():
            self.emit(CHAR)
        else:
            self.errorf(f"unrecognized character in action: {_go_rune_repr(r)}")
            return None
        return self.lex_inside_action

    def lex_space(self):
        num = 0
        while True:
            r = self.peek()
            if r == "" or r not in SPACE_CHARS:
                break
            self.next()
            num += 1
        text = self.input
        if _has_right_trim(text, self.pos - 1) and text.startswith("}}", self.pos + 1):
            self.backup()
            if num == 1:
                return self.lex_right_delim
        self.emit(SPACE)
        return self.lex_inside_action

    def lex_identifier(self):
        while True:
            r = self.next()
            if r and _is_alnum(r):
                continue
            self.backup()
            word = self.input[self.start:self.pos]
            if not self.at_terminator():
                self.errorf(f"bad character {_go_rune_repr(r)}")
                return None
            kw = KEYWORDS.get(word)
            if kw is not None and kw > KEYWORD:
                if (kw == BREAK and not self.break_ok) or (kw == CONTINUE and not self.continue_ok):
                    self.emit(IDENTIFIER)
                else:
                    self.emit(kw)
            elif word[0] == ".":
                self.emit(FIELD)
            elif word in ("true", "false"):
                self.emit(BOOL)
            else:
                self.emit(IDENTIFIER)
            return self.lex_inside_action

    def lex_field(self):
        return self.lex_field_or_variable(FIELD)

    def lex_variable(self):
        if self.at_terminator():
            self.emit(VARIABLE)
            return self.lex_inside_action
        return self.lex_field_or_variable(VARIABLE)

    def lex_field_or_variable(self, typ: int):
        if self.at_terminator():
            self.emit(VARIABLE if typ == VARIABLE else DOT)
            return self.lex_inside_action
        while True:
            r = self.next()
            if not r or not _is_alnum(r):
                self.backup()
                break
        if not self.at_terminator():
            self.errorf(f"bad character {_go_rune_repr(r)}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def at_terminator(self) -> bool:
        r = self.peek()
        if r == "" or r in SPACE_CHARS or r in ".,|:)(":
            return True
        return self.input.startswith("}}", self.pos)

    def lex_char(self):
        while True:
            r = self.next()
            if r == "\\":
                r2 = self.next()
                if r2 != "" and r2 != "\n":
                    continue
                self.errorf("unterminated character constant")
                return None
            if r == "" or r == "\n":
                self.errorf("unterminated character constant")
                return None
            if r == "'":
                break
        self.emit(CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self):
        if not self.scan_number():
            self.errorf(f"bad number syntax: {_q(self.input[self.start:self.pos])}")
            return None
        sign = self.peek()
        if sign in ("+", "-") and sign != "":
            if not self.scan_number() or self.input[self.pos - 1] != "i":
                self.errorf(f"bad number syntax: {_q(self.input[self.start:self.pos])}")
                return None
            self.emit(COMPLEX)
        else:
            self.emit(NUMBER)
        return self.lex_inside_action

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        r = self.peek()
        if r and _is_alnum(r):
            self.next()
            return False
        return True

    def lex_quote(self):
        while True:
            r = self.next()
            if r == "\\":
                r2 = self.next()
                if r2 != "" and r2 != "\n":
                    continue
                self.errorf("unterminated quoted string")
                return None
            if r == "" or r == "\n":
                self.errorf("unterminated quoted string")
                return None
            if r == '"':
                break
        self.emit(STRING)
        return self.lex_inside_action

    def lex_raw_quote(self):
        i = self.input.find("`", self.pos)
        if i < 0:
            self.errorf("unterminated raw quoted string")
            return None
        self.line += self.input.count("\n", self.pos, i + 1)
        self.pos = i + 1
        self.emit(RAW_STRING)
        return self.lex_inside_action


def _q(s: str) -> str:
    from tidegate.golang.fmt import quote

    return quote(s)


def _has_left_trim(text: str, i: int) -> bool:
    return len(text) >= i + 2 and text[i] == "-" and text[i + 1] in SPACE_CHARS


def _has_right_trim(text: str, i: int) -> bool:
    return i >= 0 and len(text) >= i + 2 and text[i] in SPACE_CHARS and text[i + 1] == "-"


def lex(text: str, break_ok: bool = True, continue_ok: bool = True) -> list[Item]:
    """All items of a template text, ending with EOF or an ERROR item."""
    return Lexer(text, break_ok, continue_ok).run()
