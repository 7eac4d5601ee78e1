"""HCL sources, parsed with python-hcl2 (HCL2 syntax).

The data is what the JSON form of the same configuration holds when it is written with
attributes, the natural way: ``extra_config = { "qos/ratelimit/router" = { max_rate = 10 } }``
is an object and ``endpoints = [{ ... }, { ... }]`` a list of objects. Block syntax is kept
as HCL decoders (viper's included) represent it: ``backend { ... }`` written twice is a list of
two objects under ``backend``, and a block written once is still a one-element list; labels nest
(``name "a" "b" { }`` is ``name: [{a: {b: {...}}}]``). Strings are decoded (escapes resolved,
heredocs with their trailing newline, ``<<-`` heredocs dedented); interpolations and other
expressions are not evaluated and stay as the text ``${...}``.

Positions come from the parse tree, so every attribute, block and collection element is located.
"""

from __future__ import annotations

import re
from typing import Any

from tidegate.config.sources import IndexBuilder, PositionIndex, syntax_error
from tidegate.errors import ConfigSyntaxError, JsonPath

_HEREDOC = re.compile(r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n((?:.*?\n)??)[ \t]*\2", re.S)

# Terminal names of the grammar, as a user would name them in "expected ..." messages.
_TERMINALS = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('",
    "RPAR": "')'", "EQ": "'='", "COLON": "':'", "COMMA": "','", "DBLQUOTE": "'\"'",
    "NAME": "a name", "$END": "end of file", "NL_OR_COMMENT": "a new line",
}
_VALUE_STARTS = {"INT_LITERAL", "FLOAT_LITERAL", "DBLQUOTE", "LSQB", "LBRACE"}


def parse(text: str, file: str) -> tuple[Any, IndexBuilder]:
    """Parse HCL2 into plain data (see the module docstring for blocks and expressions)."""
    import hcl2
    from lark.exceptions import UnexpectedInput

    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, preserve_heredocs=True,
        strip_string_quotes=True,
    )
    try:
        tree = hcl2.parses_to_tree(text)
        data = hcl2.serialize(hcl2.transform(tree), serialization_options=options)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, file, text) from None
    except Exception as exc:  # python-hcl2 raises plain exceptions for some invalid input
        raise ConfigSyntaxError(f"invalid HCL: {exc}", file=file) from None
    return _decode_heredocs(data), lambda: _positions(text)


def _syntax_error(exc: Any, file: str, text: str) -> ConfigSyntaxError:
    line = getattr(exc, "line", None)
    col = getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    if token is not None:
        found = "end of file" if token.type == "$END" else _describe_token(token)
        message = f"invalid HCL: unexpected {found}"
    else:
        char = getattr(exc, "char", None)
        message = f"invalid HCL: unexpected character {char!r}" if char else "invalid HCL"
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    names = sorted({_TERMINALS[name] for name in expected if name in _TERMINALS})
    if len(expected & _VALUE_STARTS) >= 3:
        message += ", expected a value"
    elif names:
        message += f", expected {' or '.join(names[:5])}"
    if not isinstance(line, int) or line < 1:
        return ConfigSyntaxError(message, file=file)
    return syntax_error(message, file, text, line, col if isinstance(col, int) and col > 0 else 1)


def _describe_token(token: Any) -> str:
    stripped = str(token).strip()
    if stripped.startswith(("#", "//", "/*")):
        return "comment"
    if not stripped:
        return "end of line"
    if token.type == "STRING_CHARS":  # the lexer's catch-all: only its first character matters
        stripped = stripped[:1]
    return repr(stripped[:20])


def _decode_heredocs(value: Any) -> Any:
    """Turn the heredocs python-hcl2 preserves into their string values, as HCL defines them."""
    if isinstance(value, dict):
        return {k: _decode_heredocs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_heredocs(v) for v in value]
    if isinstance(value, str) and value.startswith("<<"):
        m = _HEREDOC.fullmatch(value)
        if m is not None:
            trim, _, body = m.groups()
            lines = body.splitlines(keepends=True)
            if trim:
                indents = [len(x) - len(x.lstrip(" \t")) for x in lines if x.strip()]
                cut = min(indents, default=0)
                lines = [x[cut:] for x in lines]
            return "".join(lines)
    return value


# --------------------------------------------------------------------------- positions


def _positions(text: str) -> PositionIndex:
    """Walk a fresh parse tree (the one used for the data is not kept alive) for positions."""
    import hcl2
    from hcl2.utils import process_escape_sequences
    from lark import Token, Tree

    index: PositionIndex = {}

    def subtrees(node: Tree) -> list[Tree]:
        return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]

    def name_of(node: Tree) -> str:
        if node.data == "string":
            parts = [str(c.children[0]) for c in subtrees(node) if c.children]
            return process_escape_sequences("".join(parts))
        if node.data in ("expr_term", "object_elem_key"):
            inner = subtrees(node)
            if inner:
                return name_of(inner[0])
        tokens = [c for c in node.children if isinstance(c, Token)]
        return str(tokens[0]) if tokens else ""

    def mark(node: Tree, path: JsonPath) -> None:
        meta = node.meta
        if not getattr(meta, "empty", True):
            index.setdefault(path, (meta.line, meta.column))

    def body(node: Tree, path: JsonPath) -> None:
        counts: dict[str, int] = {}
        for child in subtrees(node):
            parts = subtrees(child)
            if not parts:
                continue
            name = name_of(parts[0])
            if child.data == "attribute":
                expression(parts[-1], (*path, name))
            elif child.data == "block":
                n = counts.get(name, 0)
                counts[name] = n + 1
                here: JsonPath = (*path, name)
                mark(child, here)
                here = (*here, n)
                mark(child, here)
                for label in parts[1:-1]:
                    here = (*here, name_of(label))
                    mark(label, here)
                body(parts[-1], here)

    def expression(node: Tree, path: JsonPath) -> None:
        mark(node, path)
        while node.data == "expr_term" and len(subtrees(node)) == 1:
            node = subtrees(node)[0]
        if node.data == "object":
            for elem in subtrees(node):
                parts = subtrees(elem)
                if len(parts) >= 2:
                    expression(parts[-1], (*path, name_of(parts[0])))
        elif node.data == "tuple":
            for i, item in enumerate(subtrees(node)):
                expression(item, (*path, i))

    root = hcl2.parses_to_tree(text)
    index[()] = (1, 1)
    for child in subtrees(root):
        if child.data == "body":
            body(child, ())
    return index
