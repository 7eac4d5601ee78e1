"""Parser for Go templates (text/template/parse/parse.go), including define/block handling.

It keeps Go's three-token lookahead so that the line reported in errors ("template: x:3: ...")
is the line of the same token Go would report.
"""

from __future__ import annotations

from collections.abc import Callable

from tidegate.golang.literals import LiteralError, char_value, parse_float, parse_int, unquote

from . import lexer as L
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    is_empty_tree,
)

# Go stops parenthesized pipelines at 10,000 levels (parse.go maxStackDepth, "max expression
# depth exceeded") and leaves {{if}}/{{with}}/{{range}}/{{block}} nesting to its growable
# stacks. Python's stack ends after ~1,000 frames and each level costs several (in the parser,
# and again when it is executed), so both kinds share one bound, far above what a real template
# nests, and a deeper one is a parse error at its line instead of a RecursionError.
MAX_NESTING = 100


class ParseError(Exception):
    """A template parse error with Go's text (``template: NAME:LINE: msg``)."""

    def __init__(self, message: str, name: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.line = line


class Tree:
    """One named template: its root list and the text it was parsed from."""

    __slots__ = ("compiled", "name", "parse_name", "root", "text")

    def __init__(self, name: str, parse_name: str, text: str) -> None:
        self.name = name
        self.parse_name = parse_name
        self.root: ListNode | None = None
        self.text = text
        self.compiled = None


class _Stream:
    """Shared token stream (define/block sub-parsers consume the same lexer)."""

    __slots__ = ("idx", "items")

    def __init__(self, items: list[L.Item]) -> None:
        self.items = items
        self.idx = 0

    def next_item(self) -> L.Item:
        if self.idx < len(self.items):
            it = self.items[self.idx]
            self.idx += 1
            return it
        return L.ZERO_ITEM


class Parser:
    """Parses one tree; `tree_set` collects every template defined in the text."""

    def __init__(self, tree: Tree, stream: _Stream, tree_set: dict[str, Tree],
                 has_func: Callable[[str], bool], nesting: int = 0) -> None:
        self.tree = tree
        self.stream = stream
        self.tree_set = tree_set
        self.has_func = has_func
        self.token: list[L.Item] = [L.ZERO_ITEM, L.ZERO_ITEM, L.ZERO_ITEM]
        self.peek_count = 0
        self.vars: list[str] = ["$"]
        self.action_line = 0
        self.range_depth = 0
        self.nesting = nesting  # open parentheses and control actions around this point

    # ---------------------------------------------------------------- tokens
    def next(self) -> L.Item:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = self.stream.next_item()
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: L.Item) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: L.Item, t1: L.Item) -> None:
        self.token[1] = t1
        self.token[2] = t2
        self.peek_count = 3

    def peek(self) -> L.Item:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = self.stream.next_item()
        return self.token[0]

    def next_non_space(self) -> L.Item:
        while True:
            tok = self.next()
            if tok.typ != L.SPACE:
                return tok

    def peek_non_space(self) -> L.Item:
        tok = self.next_non_space()
        self.backup()
        return tok

    # ---------------------------------------------------------------- errors
    def errorf(self, msg: str) -> None:
        line = self.token[0].line
        raise ParseError(f"template: {self.tree.parse_name}:{line}: {msg}",
                         self.tree.parse_name, line)

    def expect(self, expected: int, context: str) -> L.Item:
        tok = self.next_non_space()
        if tok.typ != expected:
            self.unexpected(tok, context)
        return tok

    def expect_one_of(self, e1: int, e2: int, context: str) -> L.Item:
        tok = self.next_non_space()
        if tok.typ != e1 and tok.typ != e2:
            self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: L.Item, context: str) -> None:
        if tok.typ == L.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != tok.line:
                extra = f" in action started at {self.tree.parse_name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{tok}{extra}")
        self.errorf(f"unexpected {tok} in {context}")

    # ---------------------------------------------------------------- structure
    def add(self) -> None:
        existing = self.tree_set.get(self.tree.name)
        if existing is None or is_empty_tree(existing.root):
            self.tree_set[self.tree.name] = self.tree
            return
        if not is_empty_tree(self.tree.root):
            self.errorf(f"template: multiple definition of template {_q(self.tree.name)}")

    def parse(self) -> None:
        self.tree.root = ListNode(self.peek().pos, self.tree)
        while self.peek().typ != L.EOF:
            if self.peek().typ == L.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ == L.DEFINE:
                    sub = Parser(Tree("definition", self.tree.parse_name, self.tree.text),
                                 self.stream, self.tree_set, self.has_func)
                    sub.parse_definition()
                    continue
                self.backup2(delim)
            n = self.text_or_action()
            if n.kind in ("end", "else"):
                self.errorf(f"unexpected {n}")
            self.tree.root.nodes.append(n)

    def parse_definition(self) -> None:
        context = "define clause"
        name = self.expect_one_of(L.STRING, L.RAW_STRING, context)
        try:
            self.tree.name = unquote(name.val)
        except LiteralError as e:
            self.errorf(str(e))
        self.expect(L.RIGHT_DELIM, context)
        root, end = self.item_list()
        self.tree.root = root
        if end.kind != "end":
            self.errorf(f"unexpected {end} in {context}")
        self.add()

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos, self.tree)
        while self.peek_non_space().typ != L.EOF:
            n = self.text_or_action()
            if n.kind in ("end", "else"):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == L.TEXT:
            return TextNode(tok.pos, self.tree, tok.val)
        if tok.typ == L.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")
        raise AssertionError

    def action(self) -> Node:
        tok = self.next_non_space()
        t = tok.typ
        if t == L.BLOCK:
            return self.block_control()
        if t == L.BREAK:
            return self.break_control(tok.pos, tok.line)
        if t == L.CONTINUE:
            return self.continue_control(tok.pos, tok.line)
        if t == L.ELSE:
            return self.else_control()
        if t == L.END:
            return self.end_control()
        if t == L.IF:
            return IfNode(*self.parse_control(True, "if"))
        if t == L.RANGE:
            return RangeNode(*self.parse_control(False, "range"))
        if t == L.TEMPLATE:
            return self.template_control()
        if t == L.WITH:
            return WithNode(*self.parse_control(False, "with"))
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, self.tree, tok.line, self.pipeline("command", L.RIGHT_DELIM))

    def break_control(self, pos: int, line: int) -> Node:
        tok = self.next_non_space()
        if tok.typ != L.RIGHT_DELIM:
            self.unexpected(tok, "{{break}}")
        if self.range_depth == 0:
            self.errorf("{{break}} outside {{range}}")
        return BreakNode(pos, self.tree, line)

    def continue_control(self, pos: int, line: int) -> Node:
        tok = self.next_non_space()
        if tok.typ != L.RIGHT_DELIM:
            self.unexpected(tok, "{{continue}}")
        if self.range_depth == 0:
            self.errorf("{{continue}} outside {{range}}")
        return ContinueNode(pos, self.tree, line)

    def pipeline(self, context: str, end: int) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, self.tree, tok.line)
        while True:  # decls (re-entered only for "range $k, $v")
            v = self.peek_non_space()
            if v.typ != L.VARIABLE:
                break
            self.next()
            token_after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = nxt.typ == L.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, self.tree, v.val))
                self.vars.append(v.val)
                break
            if nxt.typ == L.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, self.tree, v.val))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    p = self.peek_non_space().typ
                    if p in (L.VARIABLE, L.RIGHT_DELIM, L.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            if token_after.typ == L.SPACE:
                self.backup3(v, token_after)
            else:
                self.backup2(v)
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in (L.BOOL, L.CHAR_CONSTANT, L.COMPLEX, L.DOT, L.FIELD, L.IDENTIFIER,
                           L.NUMBER, L.NIL, L.RAW_STRING, L.STRING, L.VARIABLE, L.LEFT_PAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if c.args[0].kind in ("bool", "dot", "nil", "number", "string"):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def nest(self, what: str) -> None:
        """Enter one more level of nesting, or stop at MAX_NESTING with a parse error."""
        if self.nesting >= MAX_NESTING:
            self.errorf(f"max {what} depth exceeded (tidegate nests at most {MAX_NESTING} "
                        "levels of parentheses, if, with, range and block)")
        self.nesting += 1

    def parse_control(self, allow_else_if: bool, context: str) -> tuple:
        nvars = len(self.vars)
        self.nest("control")
        try:
            pipe = self.pipeline(context, L.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if nxt.kind == "else":
                if allow_else_if and self.peek().typ == L.IF:
                    self.next()
                    else_list = ListNode(nxt.pos, self.tree)
                    else_list.nodes.append(IfNode(*self.parse_control(True, "if")))
                else:
                    else_list, nxt = self.item_list()
                    if nxt.kind != "end":
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, self.tree, pipe.line, pipe, lst, else_list
        finally:
            self.nesting -= 1
            del self.vars[nvars:]

    def end_control(self) -> Node:
        return EndNode(self.expect(L.RIGHT_DELIM, "end").pos, self.tree)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == L.IF:
            return ElseNode(peek.pos, self.tree, peek.line)
        tok = self.expect(L.RIGHT_DELIM, "else")
        return ElseNode(tok.pos, self.tree, tok.line)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = self.pipeline(context, L.RIGHT_DELIM)
        self.nest("control")
        sub = Parser(Tree(name, self.tree.parse_name, self.tree.text), self.stream,
                     self.tree_set, self.has_func, self.nesting)
        self.nesting -= 1
        root, end = sub.item_list()
        sub.tree.root = root
        if end.kind != "end":
            self.errorf(f"unexpected {end} in {context}")
        sub.add()
        return TemplateNode(tok.pos, self.tree, tok.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = None
        if self.next_non_space().typ != L.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, L.RIGHT_DELIM)
        return TemplateNode(tok.pos, self.tree, tok.line, name, pipe)

    def parse_template_name(self, tok: L.Item, context: str) -> str:
        if tok.typ in (L.STRING, L.RAW_STRING):
            try:
                return unquote(tok.val)
            except LiteralError as e:
                self.errorf(str(e))
        self.unexpected(tok, context)
        raise AssertionError

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos, self.tree)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == L.SPACE:
                continue
            if tok.typ in (L.RIGHT_DELIM, L.RIGHT_PAREN):
                self.backup()
            elif tok.typ == L.PIPE:
                pass
            else:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == L.FIELD:
            chain = ChainNode(self.peek().pos, self.tree, node)
            while self.peek().typ == L.FIELD:
                chain.add(self.next().val)
            k = node.kind
            if k == "field":
                node = FieldNode(chain.pos, self.tree, chain.text())
            elif k == "variable":
                node = VariableNode(chain.pos, self.tree, chain.text())
            elif k in ("bool", "string", "number", "nil", "dot"):
                self.errorf(f"unexpected . after term {_q(node.text())}")
            else:
                node = chain
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        t = tok.typ
        if t == L.IDENTIFIER:
            if not self.has_func(tok.val):
                self.errorf(f"function {_q(tok.val)} not defined")
            return IdentifierNode(tok.pos, self.tree, tok.val)
        if t == L.DOT:
            return DotNode(tok.pos, self.tree)
        if t == L.NIL:
            return NilNode(tok.pos, self.tree)
        if t == L.VARIABLE:
            return self.use_var(tok.pos, tok.val)
        if t == L.FIELD:
            return FieldNode(tok.pos, self.tree, tok.val)
        if t == L.BOOL:
            return BoolNode(tok.pos, self.tree, tok.val == "true")
        if t in (L.CHAR_CONSTANT, L.COMPLEX, L.NUMBER):
            try:
                return new_number(tok.pos, self.tree, tok.val, t)
            except LiteralError as e:
                self.errorf(str(e))
        if t == L.LEFT_PAREN:
            self.nest("expression")
            try:
                return self.pipeline("parenthesized pipeline", L.RIGHT_PAREN)
            finally:
                self.nesting -= 1
        if t in (L.STRING, L.RAW_STRING):
            try:
                s = unquote(tok.val)
            except LiteralError as e:
                self.errorf(str(e))
            return StringNode(tok.pos, self.tree, tok.val, s)
        self.backup()
        return None

    def use_var(self, pos: int, name: str) -> Node:
        v = VariableNode(pos, self.tree, name)
        if v.ident[0] in self.vars:
            return v
        self.errorf(f"undefined variable {_q(v.ident[0])}")
        raise AssertionError


def _q(s: str) -> str:
    from tidegate.golang.fmt import quote

    return quote(s)


def _simplify_complex(n: NumberNode) -> None:
    n.is_float = n.complex128.imag == 0
    if n.is_float:
        f = n.complex128.real
        n.float64 = f
        n.is_int = _f_is_int64(f)
        if n.is_int:
            n.int64 = int(f)
        n.is_uint = _f_is_int64(f) and f >= 0
        if n.is_uint:
            n.uint64 = int(f)


def _f_is_int64(f: float) -> bool:
    return f == f and abs(f) != float("inf") and float(int(f)) == f and -2**63 <= f < 2**63


def new_number(pos: int, tree: Tree, text: str, typ: int) -> NumberNode:
    """parse.newNumber: classify a numeric literal as int/uint/float/complex."""
    n = NumberNode(pos, tree, text)
    if typ == L.CHAR_CONSTANT:
        r = char_value(text)
        n.int64 = n.uint64 = r
        n.is_int = n.is_uint = n.is_float = True
        n.float64 = float(r)
        return n
    if typ == L.COMPLEX:
        try:
            n.complex128 = complex(text.replace("_", "").replace("i", "j"))
        except ValueError as e:
            raise LiteralError("expected integer") from e
        n.is_complex = True
        _simplify_complex(n)
        return n
    if text and text[-1] == "i":
        f = parse_float(text[:-1])
        if f is None:
            iv = parse_int(text[:-1])
            f = float(iv) if iv is not None else None
        if f is not None:
            n.is_complex = True
            n.complex128 = complex(0, f)
            _simplify_complex(n)
            return n
    iv = parse_int(text)
    if iv is not None:
        if 0 <= iv < 2**64:
            n.is_uint = True
            n.uint64 = iv
        if -2**63 <= iv < 2**63:
            n.is_int = True
            n.int64 = iv
    if n.is_int:
        n.is_float = True
        n.float64 = float(n.int64)
    elif n.is_uint:
        n.is_float = True
        n.float64 = float(n.uint64)
    else:
        f = parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise LiteralError(f"integer overflow: {_q(text)}")
            n.is_float = True
            n.float64 = f
            if _f_is_int64(f):
                n.is_int = True
                n.int64 = int(f)
            if f >= 0 and f == f and f < 2**64 and float(int(f)) == f:
                n.is_uint = True
                n.uint64 = int(f)
    if not n.is_int and not n.is_uint and not n.is_float:
        raise LiteralError(f"illegal number syntax: {_q(text)}")
    return n


def parse_template(name: str, text: str, tree_set: dict[str, Tree],
                   has_func: Callable[[str], bool]) -> None:
    """Parse `text` as template `name`, adding it and its definitions to `tree_set`."""
    items = L.lex(text, break_ok=not has_func("break"), continue_ok=not has_func("continue"))
    tree = Tree(name, name, text)
    p = Parser(tree, _Stream(items), tree_set, has_func)
    p.parse()
    p.add()
