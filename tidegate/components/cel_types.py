"""A static type check of CEL expressions against declared variables (cel-go's ``env.Check``).

cel-python parses and evaluates CEL but has no checker; KrakenD (cel-go) type-checks every
expression and silently *drops* one that fails. tidegate refuses such a config instead, so it
needs the check: this module infers the type of each node of cel-python's parse tree and
reports, as cel-go words them, an undeclared reference and an operator or function applied to
types it has no overload for. Where a type is unknown (``dyn``: JWT claims, ``resp_data``
values) everything is accepted, as cel-go does: the check errs on the side of accepting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lark import Token, Tree

# A type: a name ("int", "string", "dyn"...) or ("list", elem) / ("map", key, value).
CelType = str | tuple[Any, ...]

DYN = "dyn"
NUMBERS = frozenset({"int", "uint", "double"})
_LITERALS = {"INT_LIT": "int", "UINT_LIT": "uint", "FLOAT_LIT": "double",
             "STRING_LIT": "string", "MLSTRING_LIT": "string", "BYTES_LIT": "bytes",
             "BOOL_LIT": "bool", "NULL_LIT": "null_type"}
_RELATIONS = {"relation_lt": "_<_", "relation_le": "_<=_", "relation_gt": "_>_",
              "relation_ge": "_>=_", "relation_eq": "_==_", "relation_ne": "_!=_",
              "relation_in": "@in"}
_ARITHMETIC = {"addition_add": "_+_", "addition_sub": "_-_", "multiplication_mul": "_*_",
               "multiplication_div": "_/_", "multiplication_mod": "_%_"}
# Conversions and global functions: name -> (accepted argument types, result).
_CONVERSIONS: dict[str, tuple[frozenset[str], CelType]] = {
    "int": (frozenset({"int", "uint", "double", "string", "timestamp"}), "int"),
    "uint": (frozenset({"int", "uint", "double", "string"}), "uint"),
    "double": (frozenset({"int", "uint", "double", "string"}), "double"),
    "string": (frozenset({"int", "uint", "double", "string", "bytes", "bool", "timestamp",
                          "duration"}), "string"),
    "bytes": (frozenset({"bytes", "string"}), "bytes"),
    "bool": (frozenset({"bool", "string"}), "bool"),
    "timestamp": (frozenset({"string", "int", "timestamp"}), "timestamp"),
    "duration": (frozenset({"string", "duration"}), "duration"),
}
_STRING_METHODS = {"contains": "bool", "startsWith": "bool", "endsWith": "bool",
                   "matches": "bool"}
_TIME_GETTERS = frozenset({
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds"})
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class CelTypeError(Exception):
    """The expression does not type-check; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"<input>:{line}:{column}: {message}")
        self.line = line
        self.column = column


def show(t: CelType) -> str:
    """A type as cel-go prints it: ``list(string)``, ``map(string, dyn)``."""
    if isinstance(t, tuple):
        return f"{t[0]}({', '.join(show(x) for x in t[1:])})"
    return t


def assignable(actual: CelType, expected: CelType) -> bool:
    """Whether a value of type `actual` fits where `expected` is wanted (dyn fits all)."""
    if DYN in (actual, expected) or actual == expected:
        return True
    if isinstance(actual, tuple) and isinstance(expected, tuple) and actual[0] == expected[0]:
        return all(assignable(a, e) for a, e in zip(actual[1:], expected[1:], strict=True))
    return False


def _join(types: list[CelType]) -> CelType:
    """The common type of a literal's elements (dyn when they differ, as cel-go)."""
    first = types[0] if types else DYN
    return first if all(t == first for t in types) else DYN


_OPERATOR_WIDTH = {"relation_lt": 1, "relation_le": 2, "relation_gt": 1, "relation_ge": 2,
                   "relation_eq": 2, "relation_ne": 2, "relation_in": 2, "addition_add": 1,
                   "addition_sub": 1, "multiplication_mul": 1, "multiplication_div": 1,
                   "multiplication_mod": 1}


def _position(node: Tree[Any] | Token) -> tuple[int, int]:
    """Where cel-go reports a node: a binary operator at the operator itself."""
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    width = _OPERATOR_WIDTH.get(node.data)
    if width is not None and not meta.empty:
        return meta.end_line, meta.end_column - width
    return (getattr(meta, "line", 1) or 1), (getattr(meta, "column", 1) or 1)


def result_type(tree: Tree[Any], declared: Mapping[str, CelType]) -> CelType:
    """The type of the whole expression; raises `CelTypeError` where cel-go's check fails."""
    return _Checker(declared).infer(tree, {})


class _Checker:
    def __init__(self, declared: Mapping[str, CelType]) -> None:
        self.declared = declared

    def fail(self, node: Tree[Any] | Token, message: str) -> CelTypeError:
        return CelTypeError(message, *_position(node))

    def overload(self, node: Tree[Any] | Token, name: str, *types: CelType) -> CelTypeError:
        args = ", ".join(show(t) for t in types)
        return self.fail(node, f"found no matching overload for '{name}' applied to '({args})'")

    def infer(self, node: Tree[Any] | Token, scope: dict[str, CelType]) -> CelType:
        if isinstance(node, Token):
            return _LITERALS.get(node.type, DYN)
        kind = node.data
        kids = node.children
        method = getattr(self, f"_{kind}", None)
        if method is not None:
            result: CelType = method(node, kids, scope)
            return result
        if len(kids) == 1:  # expr, conditionalor, relation, member, primary... without operator
            return self.infer(kids[0], scope)
        raise self.fail(node, f"unsupported construct {kind!r}")  # pragma: no cover

    # -- operators ------------------------------------------------------------------------

    def _expr(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        if len(kids) == 1:
            return self.infer(kids[0], scope)
        cond, yes, no = (self.infer(k, scope) for k in kids)
        if not assignable(cond, "bool"):
            raise self.overload(node, "_?_:_", cond, yes, no)
        if assignable(yes, no) or assignable(no, yes):
            return yes if no == DYN or yes == no else no if yes == DYN else yes
        raise self.overload(node, "_?_:_", cond, yes, no)

    def _logic(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType],
               name: str) -> CelType:
        if len(kids) == 1:
            return self.infer(kids[0], scope)
        left, right = (self.infer(k, scope) for k in kids)
        if not (assignable(left, "bool") and assignable(right, "bool")):
            raise self.overload(node, name, left, right)
        return "bool"

    def _conditionalor(self, node: Tree[Any], kids: list[Any],
                       scope: dict[str, CelType]) -> CelType:
        return self._logic(node, kids, scope, "_||_")

    def _conditionaland(self, node: Tree[Any], kids: list[Any],
                        scope: dict[str, CelType]) -> CelType:
        return self._logic(node, kids, scope, "_&&_")

    def _binary(self, node: Tree[Any], kids: list[Any],
                scope: dict[str, CelType]) -> tuple[str, CelType, CelType] | None:
        """(operator node name, left, right) of ``relation``/``addition``/``multiplication``."""
        if len(kids) == 1:
            return None
        op_node, right_node = kids
        left = self.infer(op_node.children[0], scope)
        return op_node.data, left, self.infer(right_node, scope)

    def _relation(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        parts = self._binary(node, kids, scope)
        if parts is None:
            return self.infer(kids[0], scope)
        op, left, right = parts
        name = _RELATIONS[op]
        at = kids[0]  # the operator node (its end is the operator)
        if op == "relation_in":
            if isinstance(right, tuple) and right[0] in ("list", "map"):
                if assignable(left, right[1]):
                    return "bool"
            elif right == DYN:
                return "bool"
            raise self.overload(at, name, left, right)
        if op in ("relation_eq", "relation_ne"):
            if assignable(left, right) or "null_type" in (left, right):
                return "bool"
            raise self.overload(at, name, left, right)
        if DYN in (left, right) or (left in NUMBERS and right in NUMBERS) or (
                left == right and left in ("string", "bytes", "bool", "timestamp", "duration")):
            return "bool"
        raise self.overload(at, name, left, right)

    def _arithmetic(self, node: Tree[Any], kids: list[Any],
                    scope: dict[str, CelType]) -> CelType:
        parts = self._binary(node, kids, scope)
        if parts is None:
            return self.infer(kids[0], scope)
        op, left, right = parts
        name = _ARITHMETIC[op]
        if left == DYN or right == DYN:
            return DYN
        same = left == right
        if op == "multiplication_mod":
            ok: CelType | None = left if same and left in ("int", "uint") else None
        elif op in ("multiplication_mul", "multiplication_div"):
            ok = left if same and left in NUMBERS else None
        elif op == "addition_add":
            ok = _add(left, right)
        else:
            ok = _subtract(left, right)
        if ok is None:
            raise self.overload(kids[0], name, left, right)
        return ok

    _addition = _arithmetic
    _multiplication = _arithmetic

    def _unary(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        if len(kids) == 1:
            return self.infer(kids[0], scope)
        op, operand = kids
        t = self.infer(operand, scope)
        if op.data == "unary_not":
            if assignable(t, "bool"):
                return "bool"
            raise self.overload(node, "!_", t)
        if t == DYN or t in ("int", "double", "duration"):
            return t
        raise self.overload(node, "-_", t)

    # -- members, calls, literals ------------------------------------------------------------

    def _ident(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        name = str(kids[0])
        if name in scope:
            return scope[name]
        if name in self.declared:
            return self.declared[name]
        if name in _CONVERSIONS or name in ("dyn", "list", "map", "null_type", "type"):
            return "type"
        raise self.fail(node, f"undeclared reference to '{name}' (in container '')")

    _dot_ident = _ident

    def _literal(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        return self.infer(kids[0], scope)

    def _paren_expr(self, node: Tree[Any], kids: list[Any],
                    scope: dict[str, CelType]) -> CelType:
        return self.infer(kids[0], scope)

    def _exprs(self, kids: list[Any], scope: dict[str, CelType]) -> list[CelType]:
        if not kids or kids[0] is None:
            return []
        return [self.infer(k, scope) for k in kids[0].children]

    def _list_lit(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        return ("list", _join(self._exprs(kids, scope)))

    def _map_lit(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        types = self._exprs(kids, scope)
        return ("map", _join(types[0::2]), _join(types[1::2]))

    def _member_object(self, node: Tree[Any], kids: list[Any],
                       scope: dict[str, CelType]) -> CelType:
        return DYN  # message construction: no message types are declared

    def _member_dot(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        target = self.infer(kids[0], scope)
        if target == DYN:
            return DYN
        if isinstance(target, tuple) and target[0] == "map" and assignable("string", target[1]):
            value: CelType = target[2]
            return value
        raise self.fail(node, f"type '{show(target)}' does not support field selection")

    def _member_index(self, node: Tree[Any], kids: list[Any],
                      scope: dict[str, CelType]) -> CelType:
        target = self.infer(kids[0], scope)
        index = self.infer(kids[1], scope)
        if target == DYN:
            return DYN
        if isinstance(target, tuple):
            if target[0] == "list" and (assignable(index, "int") or index == "uint"):
                elem: CelType = target[1]
                return elem
            if target[0] == "map" and assignable(index, target[1]):
                value: CelType = target[2]
                return value
        raise self.overload(node, "_[_]", target, index)

    def _ident_arg(self, node: Tree[Any], kids: list[Any], scope: dict[str, CelType]) -> CelType:
        name = str(kids[0])
        rest = kids[1:]
        if name == "has":  # macro: the field selection must type-check, the result is bool
            args = rest[0].children if rest and rest[0] is not None else []
            if len(args) != 1:
                raise self.fail(node, "invalid argument to has() macro")
            self.infer(args[0], scope)
            return "bool"
        types = self._exprs(rest, scope)
        return self._function(node, name, None, types)

    _dot_ident_arg = _ident_arg

    def _function(self, node: Tree[Any], name: str, receiver: CelType | None,
                  types: list[CelType]) -> CelType:
        args = types if receiver is None else [receiver, *types]
        if receiver is None and name in _CONVERSIONS and len(types) == 1:
            accepted, out = _CONVERSIONS[name]
            if types[0] == DYN or types[0] in accepted:
                return out
            raise self.overload(node, name, *types)
        if receiver is None and name == "dyn" and len(types) == 1:
            return DYN
        if receiver is None and name == "type" and len(types) == 1:
            return "type"
        if name == "size" and len(args) == 1:
            t = args[0]
            if t == DYN or t in ("string", "bytes") or (isinstance(t, tuple)
                                                       and t[0] in ("list", "map")):
                return "int"
            raise self.overload(node, "size", t)
        if name in _STRING_METHODS and len(args) == 2:
            if all(assignable(t, "string") for t in args):
                return _STRING_METHODS[name]
            raise self.overload(node, name, *args)
        if name in _TIME_GETTERS and receiver is not None and len(args) in (1, 2):
            if receiver in (DYN, "timestamp", "duration"):
                return "int"
            raise self.overload(node, name, *args)
        raise self.fail(node, f"undeclared reference to '{name}' (in container '')")

    def _member_dot_arg(self, node: Tree[Any], kids: list[Any],
                        scope: dict[str, CelType]) -> CelType:
        target_node, name_token = kids[0], kids[1]
        name = str(name_token)
        args = kids[2].children if len(kids) > 2 and kids[2] is not None else []
        target = self.infer(target_node, scope)
        if name in _MACROS and len(args) in (2, 3):
            return self._comprehension(node, name, target, args, scope)
        return self._function(node, name, target, [self.infer(a, scope) for a in args])

    def _comprehension(self, node: Tree[Any], name: str, target: CelType, args: list[Any],
                       scope: dict[str, CelType]) -> CelType:
        var = _variable(args[0])
        if var is None:
            raise self.fail(node, f"argument must be a simple name in {name}() macro")
        if target == DYN:
            elem: CelType = DYN
        elif isinstance(target, tuple) and target[0] in ("list", "map"):
            elem = target[1]
        else:
            raise self.fail(node, f"expression of type '{show(target)}' cannot be the range "
                                  "of a comprehension (must be list, map, or dynamic)")
        inner = {**scope, var: elem}
        if name == "map":
            if len(args) == 3 and not assignable(self.infer(args[1], inner), "bool"):
                raise self.overload(args[1], "_&&_", self.infer(args[1], inner), "bool")
            return ("list", self.infer(args[-1], inner))
        if len(args) != 2:
            raise self.fail(node, f"{name}() takes two arguments")
        body = self.infer(args[1], inner)
        if not assignable(body, "bool"):
            raise self.overload(args[1], "_&&_" if name == "all" else "_||_", body, "bool")
        return ("list", elem) if name == "filter" else "bool"


def _variable(node: Any) -> str | None:
    """The name of a comprehension's variable (an expression that is one identifier)."""
    while isinstance(node, Tree) and len(node.children) == 1 and node.data != "ident":
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _add(left: CelType, right: CelType) -> CelType | None:
    if left == right and (left in NUMBERS or left in ("string", "bytes", "duration")):
        return left
    if isinstance(left, tuple) and isinstance(right, tuple) and left[0] == right[0] == "list":
        return left if left == right else ("list", DYN)
    if {left, right} == {"timestamp", "duration"}:
        return "timestamp"
    return None


def _subtract(left: CelType, right: CelType) -> CelType | None:
    if left == right and (left in NUMBERS or left == "duration"):
        return left
    if left == "timestamp":
        return "duration" if right == "timestamp" else "timestamp" if right == "duration" \
            else None
    return None
