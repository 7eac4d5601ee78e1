"""Parse-tree nodes of a Go template, with Go's String() forms (they appear in error messages)."""

from __future__ import annotations

from typing import Any

from tidegate.golang.fmt import quote


class Node:
    """Base node: `pos` is the str index in the template text, `tree` the owning tree."""

    __slots__ = ("pos", "tree")
    kind = "node"

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        return ""


class ListNode(Node):
    __slots__ = ("nodes",)
    kind = "list"

    def __init__(self, pos: int, tree: Any) -> None:
        self.pos = pos
        self.tree = tree
        self.nodes: list[Node] = []

    def text(self) -> str:
        return "".join(n.text() for n in self.nodes)


class TextNode(Node):
    __slots__ = ("value",)
    kind = "text"

    def __init__(self, pos: int, tree: Any, value: str) -> None:
        self.pos = pos
        self.tree = tree
        self.value = value

    def text(self) -> str:
        return quote(self.value)


class CommentNode(Node):
    __slots__ = ("value",)
    kind = "comment"

    def __init__(self, pos: int, tree: Any, value: str) -> None:
        self.pos = pos
        self.tree = tree
        self.value = value

    def text(self) -> str:
        return "{{" + self.value + "}}"


class PipeNode(Node):
    __slots__ = ("cmds", "decl", "is_assign", "line")
    kind = "pipe"

    def __init__(self, pos: int, tree: Any, line: int) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line
        self.is_assign = False
        self.decl: list[VariableNode] = []
        self.cmds: list[CommandNode] = []

    def text(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(v.text() for v in self.decl) + " := "
        return s + " | ".join(c.text() for c in self.cmds)


class ActionNode(Node):
    __slots__ = ("line", "pipe")
    kind = "action"

    def __init__(self, pos: int, tree: Any, line: int, pipe: PipeNode) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line
        self.pipe = pipe

    def text(self) -> str:
        return "{{" + self.pipe.text() + "}}"


class CommandNode(Node):
    __slots__ = ("args",)
    kind = "command"

    def __init__(self, pos: int, tree: Any) -> None:
        self.pos = pos
        self.tree = tree
        self.args: list[Node] = []

    def text(self) -> str:
        parts = []
        for a in self.args:
            if isinstance(a, PipeNode):
                parts.append("(" + a.text() + ")")
            else:
                parts.append(a.text())
        return " ".join(parts)


class IdentifierNode(Node):
    __slots__ = ("ident",)
    kind = "identifier"

    def __init__(self, pos: int, tree: Any, ident: str) -> None:
        self.pos = pos
        self.tree = tree
        self.ident = ident

    def text(self) -> str:
        return self.ident


class VariableNode(Node):
    __slots__ = ("ident",)
    kind = "variable"

    def __init__(self, pos: int, tree: Any, ident: str) -> None:
        self.pos = pos
        self.tree = tree
        self.ident = ident.split(".")

    def text(self) -> str:
        return ".".join(self.ident)


class DotNode(Node):
    __slots__ = ()
    kind = "dot"

    def __init__(self, pos: int, tree: Any) -> None:
        self.pos = pos
        self.tree = tree

    def text(self) -> str:
        return "."


class NilNode(Node):
    __slots__ = ()
    kind = "nil"

    def __init__(self, pos: int, tree: Any) -> None:
        self.pos = pos
        self.tree = tree

    def text(self) -> str:
        return "nil"


class FieldNode(Node):
    __slots__ = ("ident",)
    kind = "field"

    def __init__(self, pos: int, tree: Any, ident: str) -> None:
        self.pos = pos
        self.tree = tree
        self.ident = ident[1:].split(".")

    def text(self) -> str:
        return "".join("." + i for i in self.ident)


class ChainNode(Node):
    __slots__ = ("field", "node")
    kind = "chain"

    def __init__(self, pos: int, tree: Any, node: Node) -> None:
        self.pos = pos
        self.tree = tree
        self.node = node
        self.field: list[str] = []

    def add(self, field: str) -> None:
        if not field or field[0] != ".":
            raise ValueError("no dot in field")
        field = field[1:]
        if field == "":
            raise ValueError("empty field")
        self.field.append(field)

    def text(self) -> str:
        s = "(" + self.node.text() + ")" if isinstance(self.node, PipeNode) else self.node.text()
        return s + "".join("." + f for f in self.field)


class BoolNode(Node):
    __slots__ = ("value",)
    kind = "bool"

    def __init__(self, pos: int, tree: Any, value: bool) -> None:
        self.pos = pos
        self.tree = tree
        self.value = value

    def text(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    __slots__ = (
        "complex128",
        "float64",
        "int64",
        "is_complex",
        "is_float",
        "is_int",
        "is_uint",
        "src",
        "uint64",
    )
    kind = "number"

    def __init__(self, pos: int, tree: Any, src: str) -> None:
        self.pos = pos
        self.tree = tree
        self.src = src
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int64 = 0
        self.uint64 = 0
        self.float64 = 0.0
        self.complex128 = 0j

    def text(self) -> str:
        return self.src


class StringNode(Node):
    __slots__ = ("quoted", "value")
    kind = "string"

    def __init__(self, pos: int, tree: Any, quoted: str, value: str) -> None:
        self.pos = pos
        self.tree = tree
        self.quoted = quoted
        self.value = value

    def text(self) -> str:
        return self.quoted


class EndNode(Node):
    __slots__ = ()
    kind = "end"

    def __init__(self, pos: int, tree: Any) -> None:
        self.pos = pos
        self.tree = tree

    def text(self) -> str:
        return "{{end}}"


class ElseNode(Node):
    __slots__ = ("line",)
    kind = "else"

    def __init__(self, pos: int, tree: Any, line: int) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line

    def text(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    __slots__ = ("else_list", "line", "list", "pipe")
    kind = "branch"
    keyword = ""

    def __init__(self, pos: int, tree: Any, line: int, pipe: PipeNode, lst: ListNode,
                 else_list: ListNode | None) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line
        self.pipe = pipe
        self.list = lst
        self.else_list = else_list

    def text(self) -> str:
        s = "{{" + self.keyword + " " + self.pipe.text() + "}}" + self.list.text()
        if self.else_list is not None:
            s += "{{else}}" + self.else_list.text()
        return s + "{{end}}"


class IfNode(BranchNode):
    __slots__ = ()
    kind = "if"
    keyword = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    kind = "range"
    keyword = "range"


class WithNode(BranchNode):
    __slots__ = ()
    kind = "with"
    keyword = "with"


class BreakNode(Node):
    __slots__ = ("line",)
    kind = "break"

    def __init__(self, pos: int, tree: Any, line: int) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line

    def text(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    __slots__ = ("line",)
    kind = "continue"

    def __init__(self, pos: int, tree: Any, line: int) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line

    def text(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    __slots__ = ("line", "name", "pipe")
    kind = "template"

    def __init__(self, pos: int, tree: Any, line: int, name: str, pipe: PipeNode | None) -> None:
        self.pos = pos
        self.tree = tree
        self.line = line
        self.name = name
        self.pipe = pipe

    def text(self) -> str:
        s = "{{template " + quote(self.name)
        if self.pipe is not None:
            s += " " + self.pipe.text()
        return s + "}}"


def is_empty_tree(n: Node | None) -> bool:
    """parse.IsEmptyTree: only whitespace text and comments."""
    if n is None:
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(x) for x in n.nodes)
    if isinstance(n, CommentNode):
        return True
    if isinstance(n, TextNode):
        return n.value.strip(" \t\n\r\v\f\x85\xa0") == "" and _trim_space_ok(n.value)
    return False


def _trim_space_ok(s: str) -> bool:
    # bytes.TrimSpace uses unicode.IsSpace; Python's str.isspace is close enough
    return s == "" or s.isspace()
