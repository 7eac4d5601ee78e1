"""The common CEL checks compiled to one Python expression over the request or response itself.

Most ``validation/cel`` checks compare a request's method, path, parameters, headers or query
keys with literals (``req_method == 'GET' && !('debug' in req_querystring)``). cel-python
evaluates them through its own value types, an activation built per request and its operator
functions: ~6 µs for that one. Here such an expression becomes a plain Python expression over
the `ProxyRequest` (or `ProxyResponse`) fields, compiled once per generation: no per-request
conversion of the variables, no CEL value objects.

Only expressions that cannot fail at run time are compiled: variables whose value always exists
with a fixed type, string/int/bool literals, ``==``/``!=``/``<``… between two values of the same
type, ``in`` a map variable or a list literal, ``has()`` on a map variable, ``startsWith``/
``endsWith``/``contains`` on strings, ``!``, ``&&``, ``||``. Without errors, CEL's
``&&``/``||`` are Python's ``and``/``or`` on booleans. Anything else (an index that may be
missing, ``int()``, ``matches``, ``JWT``, ``now``, macros) is left to cel-python, whole.
tests/test_cel_fast.py checks that both give the same verdict on many expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lark import Token, Tree

# The variables, as Python over the subject (`r`): (code, CEL type of the value).
REQUEST_VARS = {
    "req_method": ("r.method", "string"),
    "req_path": ("r.path", "string"),
    "req_params": ("r.params", "map"),
    "req_headers": ("r.headers", "map"),
    "req_querystring": ("r.query", "query"),  # (key, value) pairs: a map of lists in CEL
}
RESPONSE_VARS = {
    "resp_completed": ("bool(r.complete)", "bool"),
    "resp_metadata_status": ("r.status", "int"),
    "resp_metadata_headers": ("r.headers", "map"),
}

_STRING = re.compile(r"""^(?:'([^'\\\n\r]*)'|"([^"\\\n\r]*)")$""")
_INT = re.compile(r"^-?[0-9]+$")
_INT64 = range(-(2**63), 2**63)
_PASS = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition",
                   "multiplication", "unary", "member", "primary", "paren_expr"})
_RELATIONS = {"relation_eq": "==", "relation_ne": "!=", "relation_lt": "<",
              "relation_le": "<=", "relation_gt": ">", "relation_ge": ">="}
_STRING_METHODS = {"startsWith": "startswith", "endsWith": "endswith", "contains": "__contains__"}


class Unsupported(Exception):
    """Outside the compiled subset: cel-python evaluates the expression."""


def _query_has(pairs: list[tuple[str, str]], key: str) -> bool:
    for k, _ in pairs:  # noqa: SIM110 - a generator costs more per request
        if k == key:
            return True
    return False


def compile_check(tree: Tree[Token], variables: dict[str, tuple[str, str]]
                  ) -> Callable[[Any], bool] | None:
    """``passes(subject)`` for a checked expression whose variables are all in `variables`,
    or None when it is outside the subset."""
    gen = _Generator(variables)
    try:
        code, kind = gen.expr(tree)
        if kind != "bool":
            return None
        namespace: dict[str, Any] = {"_query_has": _query_has, **gen.constants}
        exec(compile(f"def passes(r):\n    return {code}\n", "<cel>", "exec"), namespace)
    except (Unsupported, SyntaxError, RecursionError, MemoryError):
        return None
    return namespace["passes"]  # type: ignore[no-any-return]


class _Generator:
    def __init__(self, variables: dict[str, tuple[str, str]]) -> None:
        self.variables = variables
        self.constants: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def expr(self, node: Any) -> tuple[str, str]:
        """(Python code, CEL type) of a node."""
        if isinstance(node, Token):
            raise Unsupported(node.type)
        data, kids = node.data, node.children
        if data in _PASS and len(kids) == 1:
            return self.expr(kids[0])
        if data == "conditionalor" and len(kids) == 2:
            return self._logic(kids, "or")
        if data == "conditionaland" and len(kids) == 2:
            return self._logic(kids, "and")
        if data == "relation" and len(kids) == 2:
            return self._relation(kids[0], kids[1])
        if data == "unary" and len(kids) == 2 and isinstance(kids[0], Tree) \
                and kids[0].data == "unary_not":
            code, kind = self.expr(kids[1])
            if kind != "bool":
                raise Unsupported("!")
            return f"(not {code})", "bool"
        if data == "literal" and len(kids) == 1:
            return self._literal(kids[0])
        if data == "ident" and len(kids) == 1:
            found = self.variables.get(str(kids[0]))
            if found is None:
                raise Unsupported(str(kids[0]))
            return found
        if data == "member_dot_arg" and len(kids) == 3:
            return self._method(kids)
        if data == "ident_arg" and len(kids) == 2 and str(kids[0]) == "has":
            return self._has(kids[1])
        raise Unsupported(data)

    def _logic(self, kids: list[Any], op: str) -> tuple[str, str]:
        left, lkind = self.expr(kids[0])
        right, rkind = self.expr(kids[1])
        if lkind != "bool" or rkind != "bool":
            raise Unsupported(op)
        return f"({left} {op} {right})", "bool"

    def _literal(self, token: Any) -> tuple[str, str]:
        text = str(token)
        if token.type == "STRING_LIT":
            m = _STRING.match(text)
            if m is None:
                raise Unsupported("string literal")  # escapes, raw or triple-quoted
            value = m.group(1) if m.group(1) is not None else m.group(2)
            return self.const(value), "string"
        if token.type == "INT_LIT" and _INT.match(text):
            value = int(text)
            if value not in _INT64:
                raise Unsupported("int range")
            return self.const(value), "int"
        if token.type == "BOOL_LIT" and text in ("true", "false"):
            return ("True" if text == "true" else "False"), "bool"
        raise Unsupported("literal")

    def _relation(self, op_node: Any, right_node: Any) -> tuple[str, str]:
        if not isinstance(op_node, Tree) or len(op_node.children) != 1:
            raise Unsupported("relation")
        left, lkind = self.expr(op_node.children[0])
        if op_node.data == "relation_in":
            return self._in(left, lkind, right_node)
        op = _RELATIONS.get(op_node.data)
        right, rkind = self.expr(right_node)
        if op is None or lkind != rkind:
            raise Unsupported("relation")
        if lkind == "bool" and op not in ("==", "!="):
            raise Unsupported("bool order")
        if lkind not in ("string", "int", "bool"):
            raise Unsupported("relation type")
        return f"({left} {op} {right})", "bool"

    def _in(self, left: str, lkind: str, right_node: Any) -> tuple[str, str]:
        if lkind != "string":
            raise Unsupported("in")
        literal = self._string_list(right_node)
        if literal is not None:
            return f"({left} in {self.const(frozenset(literal))})", "bool"
        right, rkind = self.expr(right_node)
        if rkind == "map":
            return f"({left} in {right})", "bool"
        if rkind == "query":
            return f"_query_has({right}, {left})", "bool"
        raise Unsupported("in")

    def _string_list(self, node: Any) -> list[str] | None:
        """The strings of a list literal of string literals (``['GET', 'HEAD']``), or None."""
        while isinstance(node, Tree) and node.data in _PASS and len(node.children) == 1:
            node = node.children[0]
        if not isinstance(node, Tree) or node.data != "list_lit":
            return None
        if len(node.children) != 1 or not isinstance(node.children[0], Tree):
            raise Unsupported("list literal")  # the empty list
        out = []
        for item in node.children[0].children:
            code, kind = self.expr(item)
            if kind != "string":
                raise Unsupported("list literal")
            out.append(self.constants[code])
        return out

    def _method(self, kids: list[Any]) -> tuple[str, str]:
        target, kind = self.expr(kids[0])
        method = _STRING_METHODS.get(str(kids[1]))
        args = kids[2].children if isinstance(kids[2], Tree) else []
        if method is None or kind != "string" or len(args) != 1:
            raise Unsupported("method")
        arg, akind = self.expr(args[0])
        if akind != "string":
            raise Unsupported("method argument")
        return f"{target}.{method}({arg})", "bool"

    def _has(self, exprlist: Any) -> tuple[str, str]:
        args = exprlist.children if isinstance(exprlist, Tree) else []
        if len(args) != 1:
            raise Unsupported("has")
        node = args[0]
        while isinstance(node, Tree) and node.data in _PASS and len(node.children) == 1:
            node = node.children[0]
        if not isinstance(node, Tree) or node.data != "member_dot" or len(node.children) != 2:
            raise Unsupported("has")
        target, kind = self.expr(node.children[0])
        key = self.const(str(node.children[1]))
        if kind == "map":
            return f"({key} in {target})", "bool"
        if kind == "query":
            return f"_query_has({target}, {key})", "bool"
        raise Unsupported("has")
