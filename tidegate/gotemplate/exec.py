"""Executes parsed templates with text/template's semantics (text/template/exec.go).

Values are the Python stand-ins of `gotypes`.  Besides the value, the evaluator tracks whether
the *static* type of dot / a range variable is ``interface {}`` (elements of JSON containers),
because Go reports such values as ``interface {}`` in errors and treats a nil there differently
from a missing key.
"""

from __future__ import annotations

from typing import Any

from tidegate.golang.fmt import format_plain, quote, sprint
from tidegate.golang.types import (
    I64,
    LIST_TYPES,
    MAP_TYPES,
    MISSING,
    GoObject,
    IntList,
    ListList,
    NilMap,
    StrList,
    StrMap,
    elem_is_iface,
    type_name,
)

from . import nodes as N
from .depth import call_at_depth
from .funcdef import ANY, BOOL, FLOAT64, INT, INT64, RV, STRING, UINT32, GoError, GoFunc
from .parse import Tree
from .trace import OutputTrace

NOFINAL: Any = object()  # Go's missingVal: no piped-in final argument
MAX_DEPTH = 100000


class ExecError(Exception):
    """A template execution error with Go's text and the position it refers to."""

    def __init__(self, message: str, name: str = "", line: int | None = None,
                 col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.line = line
        self.col = col


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def is_true(v: Any) -> tuple[bool, bool]:
    """template.IsTrue: (truth, ok)."""
    if v is MISSING or v is None:
        return False, True
    t = type(v)
    if t is bool:
        return v, True
    if t is str or isinstance(v, (list, dict)):
        return len(v) > 0, True
    if t is float or t is int or t is I64 or t is complex:
        return v != 0, True
    return True, True


_ZEROS: dict[str, Any] = {}


def zero_of(spec: str) -> Any:
    """reflect.Zero for the nil-able parameter types."""
    if spec == ANY:
        return None
    if spec == RV:
        return MISSING
    if spec.startswith("map["):
        return NilMap() if spec == "map[string]interface {}" else StrMap()
    if spec == "[]string":
        return StrList()
    if spec == "[]int":
        return IntList()
    if spec == "[][]interface {}":
        return ListList()
    if spec.startswith("[]"):
        return []
    return None


def can_be_nil(spec: str | None) -> bool:
    return spec is None or spec in (ANY, RV) or spec.startswith(("map[", "[]", "*"))


_ASSIGN: dict[str, tuple[type, ...]] = {
    STRING: (str,),
    INT: (int,),
    INT64: (I64,),
    FLOAT64: (float,),
    BOOL: (bool,),
    "[]interface {}": (list,),
    "map[string]interface {}": (dict, NilMap),
    "[]string": (StrList,),
    "[]int": (IntList,),
    "map[string]string": (StrMap,),
    "complex128": (complex,),
}


def assignable(v: Any, spec: str) -> bool:
    if spec in (ANY, RV):
        return True
    ts = _ASSIGN.get(spec)
    if ts is not None:
        return type(v) in ts
    return isinstance(v, GoObject) and v.go_type == spec


class State:
    """One execution: output buffer, variable stack, current node (for error positions)."""

    def __init__(self, trees: dict[str, Tree], funcs: dict[str, GoFunc], tree: Tree) -> None:
        self.trees = trees
        self.funcs = funcs
        self.tmpl = tree
        self.out: list[str] = []
        # src[i] is the node that wrote out[i], so errors in the output find it (trace.py)
        self.src: list[N.Node] = []
        self.vars: list[tuple[str, Any, bool]] = []
        self.node: N.Node | None = None
        self.depth = 0
        self.dot_iface = False
        self.calls: list[tuple[N.TemplateNode, Tree]] = []  # {{template}} chain, for depth errors
        self.overflow: list[tuple[N.TemplateNode, Tree]] | None = None

    # ---------------------------------------------------------------- errors
    def errorf(self, msg: str) -> None:
        name = self.tmpl.name
        if self.node is None:
            raise ExecError(f"template: {name}: {msg}", name)
        n = self.node
        tree = n.tree if n.tree is not None else self.tmpl
        text = tree.text[: n.pos]
        nl = text.rfind("\n")
        line_text = text if nl < 0 else text[nl + 1:]
        col = len(line_text.encode("utf-8", "surrogateescape"))
        line = 1 + text.count("\n")
        location = f"{tree.parse_name}:{line}:{col}"
        raise ExecError(
            f"template: {location}: executing {quote(name)} at <{n.text()}>: {msg}",
            tree.parse_name, line, col)

    # ---------------------------------------------------------------- variables
    def push(self, name: str, value: Any, iface: bool = False) -> None:
        self.vars.append((name, value, iface))

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value, False)
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any, iface: bool) -> None:
        i = len(self.vars) - n
        self.vars[i] = (self.vars[i][0], value, iface)

    def var_value(self, name: str) -> tuple[Any, bool]:
        for i in range(len(self.vars) - 1, -1, -1):
            v = self.vars[i]
            if v[0] == name:
                return v[1], v[2]
        self.errorf(f"undefined variable: {name}")
        raise AssertionError

    # ---------------------------------------------------------------- walk
    def walk(self, dot: Any, node: N.Node) -> None:
        self.node = node
        k = node.kind
        if k == "list":
            for n in node.nodes:
                if n.kind == "text":
                    self.out.append(n.value)
                    self.src.append(n)
                else:
                    self.walk(dot, n)
        elif k == "text":
            self.out.append(node.value)
            self.src.append(node)
        elif k == "action":
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                if val is MISSING or val is None:
                    self.out.append("<no value>")
                else:
                    self.out.append(format_plain(val))
                self.src.append(node)
        elif k == "if" or k == "with":
            self.walk_if_or_with(k, dot, node)
        elif k == "range":
            self.walk_range(dot, node)
        elif k == "template":
            self.walk_template(dot, node)
        elif k == "break":
            raise _Break
        elif k == "continue":
            raise _Continue
        elif k == "comment":
            pass
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, k: str, dot: Any, node: N.BranchNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(val)
            if not ok:
                self.errorf(f"if/with can't use {format_plain(val)}")
            if truth:
                if k == "with":
                    old = self.dot_iface
                    self.dot_iface = False
                    try:
                        self.walk(val, node.list)
                    finally:
                        self.dot_iface = old
                else:
                    self.walk(dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, r: N.RangeNode) -> None:
        self.node = r
        mark0 = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            mark = len(self.vars)
            ndecl = len(r.pipe.decl)
            if isinstance(val, (LIST_TYPES, MAP_TYPES)):
                if len(val) == 0:
                    pass
                else:
                    iface = elem_is_iface(val)
                    if isinstance(val, LIST_TYPES):
                        pairs: Any = enumerate(val)
                    else:
                        from tidegate.golang.fmt import sorted_items

                        pairs = sorted_items(val)
                    old_iface = self.dot_iface
                    self.dot_iface = iface
                    try:
                        for index, elem in pairs:
                            if ndecl > 0:
                                self.set_top_var(1, elem, iface)
                            if ndecl > 1:
                                self.set_top_var(2, index, False)
                            try:  # noqa: SIM105 - hot loop, cheaper than contextlib.suppress
                                self.walk(elem, r.list)
                            except _Continue:
                                pass
                            del self.vars[mark:]
                    except _Break:
                        pass
                    finally:
                        self.dot_iface = old_iface
                    return
            elif val is MISSING or val is None:
                pass
            else:
                self.errorf(f"range can't iterate over {format_plain(val)}")
            if r.else_list is not None:
                self.walk(dot, r.else_list)
        finally:
            del self.vars[mark0:]

    def walk_template(self, dot: Any, t: N.TemplateNode) -> None:
        self.node = t
        tree = self.trees.get(t.name)
        if tree is None or tree.root is None:
            self.errorf(f"template {quote(t.name)} not defined")
        if self.depth == MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        dot = self.eval_pipeline(dot, t.pipe) if t.pipe is not None else MISSING
        saved = (self.tmpl, self.vars, self.dot_iface)
        self.depth += 1
        self.calls.append((t, saved[0]))
        self.tmpl = tree
        self.vars = [("$", dot, False)]
        self.dot_iface = False
        try:
            self.walk(dot, tree.root)
        except RecursionError:
            if self.overflow is None:
                self.overflow = self.calls[:]
            raise
        finally:
            self.calls.pop()
            self.depth -= 1
            self.tmpl, self.vars, self.dot_iface = saved

    def depth_error(self) -> None:
        """Python runs out of stack long before Go's MAX_DEPTH {{template}} levels.

        An endless recursion is reported where Go would stop it; a finite chain of calls too
        deep for Python's stack, at its deepest call (re-raised when no call was under way).
        """
        chain = self.overflow or []
        try:
            self.node, self.tmpl = call_at_depth(chain, MAX_DEPTH)
        except RecursionError:
            if not chain:
                raise
            self.node, self.tmpl = chain[-1]
            self.errorf(f"exceeded maximum template depth: tidegate's stack ends after "
                        f"{len(chain)} nested template calls")
        self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")

    # ---------------------------------------------------------------- pipelines
    def eval_pipeline(self, dot: Any, pipe: N.PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.node = pipe
        value = NOFINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = MISSING
        if pipe.decl:
            for var in pipe.decl:
                if pipe.is_assign:
                    self.set_var(var.ident[0], value)
                else:
                    self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[N.Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not NOFINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: N.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        k = first.kind
        if k == "field":
            return self.eval_field_node(dot, first, cmd.args, final)
        if k == "identifier":
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if k == "variable":
            return self.eval_variable_node(dot, first, cmd.args, final)
        if k == "chain":
            return self.eval_chain_node(dot, first, cmd.args, final)
        if k == "pipe":
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        self.node = first
        self.not_a_function(cmd.args, final)
        if k == "bool":
            return first.value
        if k == "dot":
            return dot
        if k == "nil":
            self.errorf("nil is not a command")
        if k == "number":
            return self.ideal_constant(first)
        if k == "string":
            return first.value
        self.errorf(f"can't evaluate command {quote(first.text())}")
        raise AssertionError

    def ideal_constant(self, c: N.NumberNode) -> Any:
        self.node = c
        text = c.src
        if c.is_complex:
            return c.complex128
        if (c.is_float and not _is_hex_int(text) and not text.startswith("'")
                and any(ch in text for ch in ".eEpP")):
            return c.float64
        if c.is_int:
            return c.int64
        if c.is_uint:
            self.errorf(f"{text} overflows int")
        return MISSING

    def eval_field_node(self, dot: Any, field: N.FieldNode, args: list[N.Node] | None,
                        final: Any) -> Any:
        self.node = field
        return self.eval_field_chain(dot, dot, self.dot_iface, field, field.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: N.ChainNode, args: list[N.Node] | None,
                        final: Any) -> Any:
        self.node = chain
        if chain.node.kind == "nil":
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        iface = chain.node.kind == "field" or chain.node.kind == "variable"
        return self.eval_field_chain(dot, pipe, iface and pipe is None, chain, chain.field, args,
                                     final)

    def eval_variable_node(self, dot: Any, var: N.VariableNode, args: list[N.Node] | None,
                           final: Any) -> Any:
        self.node = var
        value, iface = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, iface, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, iface: bool, node: N.Node,
                         idents: list[str], args: list[N.Node] | None, final: Any) -> Any:
        n = len(idents)
        for i in range(n - 1):
            receiver, iface = self.eval_field(dot, idents[i], node, None, NOFINAL, receiver,
                                              iface)
        return self.eval_field(dot, idents[n - 1], node, args, final, receiver, iface)[0]

    def eval_field(self, dot: Any, name: str, node: N.Node, args: list[N.Node] | None,
                   final: Any, receiver: Any, iface: bool) -> tuple[Any, bool]:
        t = type(receiver)
        if t is dict and final is NOFINAL and (args is None or len(args) <= 1):  # fast path
            return receiver.get(name, MISSING), True
        if receiver is MISSING:
            return MISSING, False
        typ = "interface {}" if iface else type_name(receiver)
        if receiver is None:
            self.errorf(f"nil pointer evaluating {typ}.{name}")
        if isinstance(receiver, GoObject) and name in receiver.go_methods:
            return self.eval_method(dot, receiver, name, node, args, final), False
        has_args = (args is not None and len(args) > 1) or final is not NOFINAL
        if isinstance(receiver, MAP_TYPES):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING), elem_is_iface(receiver)
        if isinstance(receiver, GoObject) and name in receiver.go_fields:
            if has_args:
                self.errorf(f"{name} has arguments but cannot be invoked as function")
            return getattr(receiver, "f_" + name), False
        self.errorf(f"can't evaluate field {name} in type {typ}")
        raise AssertionError

    def eval_method(self, dot: Any, recv: GoObject, name: str, node: N.Node,
                    args: list[N.Node] | None, final: Any) -> Any:
        params, variadic = recv.method_arity(name)
        f = GoFunc(name, recv.method_impl(name, self.errorf), tuple(params),
                   "interface {}" if variadic else None)
        return self.eval_call(dot, f, node, name, args, final)

    def eval_function(self, dot: Any, node: N.IdentifierNode, cmd: N.Node,
                      args: list[N.Node] | None, final: Any) -> Any:
        self.node = node
        name = node.ident
        f = self.funcs.get(name)
        if f is None:
            self.errorf(f"{quote(name)} is not a defined function")
        return self.eval_call(dot, f, cmd, name, args, final)

    def eval_call(self, dot: Any, f: GoFunc, node: N.Node, name: str,
                  args: list[N.Node] | None, final: Any) -> Any:
        argn = args[1:] if args is not None else []
        num_in = len(argn) + (0 if final is NOFINAL else 1)
        params = f.params
        if f.variadic is not None:
            num_fixed = len(params)
            if num_in < num_fixed:
                self.errorf(f"wrong number of args for {name}: want at least {num_fixed} "
                            f"got {len(argn)}")
        else:
            num_fixed = len(argn)
            if num_in != len(params):
                self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if f.builtin and (name == "and" or name == "or"):
            v: Any = MISSING
            want = name == "or"
            for a in argn:
                v = self.eval_arg(dot, RV, a)
                if is_true(v)[0] == want:
                    return v
            if final is not NOFINAL:
                v = self.validate_type(final, RV, False)
            return v
        argv: list[Any] = []
        i = 0
        while i < num_fixed and i < len(argn):
            argv.append(self.eval_arg(dot, params[i], argn[i]))
            i += 1
        if f.variadic is not None:
            vt = f.variadic
            while i < len(argn):
                argv.append(self.eval_arg(dot, vt, argn[i]))
                i += 1
        if final is not NOFINAL:
            if f.variadic is not None:
                t = params[num_in - 1] if num_in - 1 < num_fixed else f.variadic
            else:
                t = params[-1]
            argv.append(self.validate_type(final, t, False))
        try:
            return f.impl(*argv)
        except GoError as e:
            self.node = node
            self.errorf(f"error calling {name}: {e}")
        except (_Break, _Continue, ExecError):
            raise
        except RecursionError:
            raise
        except Exception as e:  # a Go panic inside the function
            self.node = node
            self.errorf(f"error calling {name}: {e}")
        raise AssertionError

    def validate_type(self, value: Any, spec: str | None, iface: bool) -> Any:
        if value is MISSING:
            if spec is None:
                return MISSING
            if can_be_nil(spec):
                return zero_of(spec)
            self.errorf(f"invalid value; expected {spec}")
        if spec is None or spec in (ANY, RV):
            return value
        if value is None:
            self.errorf(f"wrong type for value; expected {spec}; got interface {{}}")
        if not assignable(value, spec):
            self.errorf(f"wrong type for value; expected {spec}; got {type_name(value)}")
        return value

    def eval_arg(self, dot: Any, spec: str | None, n: N.Node) -> Any:
        self.node = n
        k = n.kind
        if k == "dot":
            return self.validate_type(dot, spec, self.dot_iface)
        if k == "nil":
            if can_be_nil(spec) and spec is not None:
                return zero_of(spec)
            self.errorf(f"cannot assign nil to {spec}")
        if k == "field":
            return self.validate_type(self.eval_field_node(dot, n, [n], NOFINAL), spec, True)
        if k == "variable":
            return self.validate_type(self.eval_variable_node(dot, n, None, NOFINAL), spec,
                                      True)
        if k == "pipe":
            return self.validate_type(self.eval_pipeline(dot, n), spec, False)
        if k == "identifier":
            return self.validate_type(self.eval_function(dot, n, n, None, NOFINAL), spec, False)
        if k == "chain":
            return self.validate_type(self.eval_chain_node(dot, n, None, NOFINAL), spec, False)
        if spec is None or spec in (ANY, RV):
            return self.eval_empty_interface(dot, n)
        if spec == BOOL:
            if k == "bool":
                return n.value
            self.errorf(f"expected bool; found {n}")
        if spec == STRING:
            if k == "string":
                return n.value
            self.errorf(f"expected string; found {n}")
        if spec in (INT, INT64, "time.Duration"):
            if k == "number" and n.is_int:
                return n.int64 if spec == INT else I64(n.int64)
            self.errorf(f"expected integer; found {n}")
        if spec == UINT32:
            if k == "number" and n.is_uint:
                return n.uint64 & 0xFFFFFFFF
            self.errorf(f"expected unsigned integer; found {n}")
        if spec == FLOAT64:
            if k == "number" and n.is_float:
                return n.float64
            self.errorf(f"expected float; found {n}")
        if spec == "complex128":
            if k == "number" and n.is_complex:
                return n.complex128
            self.errorf(f"expected complex; found {n}")
        self.errorf(f"can't handle {n} for arg of type {spec}")
        raise AssertionError

    def eval_empty_interface(self, dot: Any, n: N.Node) -> Any:
        self.node = n
        k = n.kind
        if k == "bool":
            return n.value
        if k == "number":
            return self.ideal_constant(n)
        if k == "string":
            return n.value
        if k == "dot":
            return dot
        self.errorf(f"can't handle assignment of {n} to empty interface argument")
        raise AssertionError


def _is_hex_int(s: str) -> bool:
    return len(s) > 2 and s[0] == "0" and s[1] in "xX" and "p" not in s and "P" not in s


def execute(trees: dict[str, Tree], funcs: dict[str, GoFunc], name: str, data: Any
            ) -> tuple[str, OutputTrace]:
    """Execute template `name` of the set with `data` as dot: the output text, and where
    each piece of it was written from."""
    tree = trees.get(name)
    if tree is None or tree.root is None:
        raise ExecError(f"template: no template {quote(name)} associated with template "
                        f"{quote(name)}", name)
    if data is None:
        data = MISSING
    st = State(trees, funcs, tree)
    st.vars = [("$", data, False)]
    try:
        st.walk(data, tree.root)
    except RecursionError:
        st.depth_error()
    return "".join(st.out), OutputTrace(st.out, st.src)


__all__ = ["ExecError", "execute", "is_true", "sprint"]
