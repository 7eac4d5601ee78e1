"""``flatmap_filter`` operations (krakend/flatmap ``tree``), as lura applies them.

The response becomes a tree whose edges are map keys and array indexes; ``move``, ``del`` and
``append`` rewire edges, and the tree is expanded back. This keeps KrakenD's quirks that users
see: moving to a path of the same depth only renames the last segment, a map or array whose
children were all removed becomes ``null``, and ``*`` matches every key or index of a level.
Subtrees no operation reaches are never taken apart (lazy nodes), so big bodies stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tidegate.config.sections import FlatmapOp

__all__ = ["compile_flatmap"]

WILDCARD = "*"


class _Node:
    __slots__ = ("edges", "is_coll", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.edges: list[list[Any]] | None = None  # [label, _Node]; None: not flattened yet
        self.is_coll = False

    def open(self) -> list[list[Any]]:
        """Flatten on first use (tree.node.flatten)."""
        edges = self.edges
        if edges is None:
            edges = self.edges = []
            value, self.value = self.value, None  # Go's node starts empty, then flattens
            self._flatten(value)
        return edges

    def _flatten(self, v: Any) -> None:
        edges = self.edges
        assert edges is not None
        if isinstance(v, dict):
            self.is_coll = False
            if not v:
                self.value = v
            elif not edges:  # children stay unflattened until an operation reaches them
                edges.extend([k, _Node(e)] for k, e in v.items())
            else:
                for k, e in v.items():
                    self.add([k], e)
        elif isinstance(v, list):
            self.is_coll = True
            if not v:
                self.value = v
            elif not edges:
                edges.extend([str(i), _Node(e)] for i, e in enumerate(v))
            else:
                for i, e in enumerate(v):
                    self.add([str(i)], e)
        else:
            self.is_coll = False
            self.value = v

    def add(self, ks: list[str], v: Any) -> None:
        edges = self.open()
        if not ks:
            self._flatten(v)
            return
        for e in edges:
            if e[0] == ks[0]:
                e[1].add(ks[1:], v)
                return
        child = _Node(None)
        child.edges = []
        edges.append([ks[0], child])
        child.add(ks[1:], v)

    def delete(self, ks: list[str]) -> None:
        edges = self.open()
        if not ks or not edges:
            return
        if ks[0] == WILDCARD:
            if len(ks) > 1:
                for e in edges:
                    e[1].delete(ks[1:])
            else:
                edges.clear()
            return
        for i, e in enumerate(edges):
            if e[0] == ks[0]:
                if len(ks) == 1:
                    del edges[i]
                else:
                    e[1].delete(ks[1:])
                return

    def get(self, ks: list[str]) -> Any:
        if not ks:
            return self.expand()
        edges = self.open()
        if not edges:
            return None
        if ks[0] == WILDCARD:
            return [e[1].get(ks[1:]) for e in edges]
        for e in edges:
            if e[0] == ks[0]:
                return e[1].get(ks[1:])
        return None

    def expand(self) -> Any:
        edges = self.edges
        if edges is None:  # untouched: the original value is the expansion
            return self.value
        if not edges:
            return self.value
        if self.is_coll:
            return [e[1].expand() for e in edges]
        out = {}
        for label, node in edges:
            out[label] = node.expand()
        return out


def _candidates(root: _Node, path: list[str]) -> list[tuple[_Node, list[str]]]:
    nxt: list[tuple[_Node, list[str]]] = [(root, [])]
    for step in path:
        acc = []
        for node, p in nxt:
            for label, child in node.open():
                if step == WILDCARD:
                    acc.append((child, [*p, label]))
                elif step == label:
                    acc.append((child, [*p, label]))
                    break
        nxt = acc
    return nxt


def _move(root: _Node, src: list[str], dst: list[str]) -> None:
    depth = len(src)
    nxt = _candidates(root, src[:-1]) if depth > 1 else [(root, [])]
    relabel = depth == len(dst)
    moved = []
    for node, p in nxt:
        edges = node.open()
        for i, e in enumerate(edges):
            if e[0] != src[-1]:
                continue
            if relabel:
                e[0] = dst[depth - 1]
            else:
                moved.append((node, p, e))
                del edges[i]
            break
    if relabel:
        return
    if depth > len(dst):  # promote towards the root
        for _node, p, e in moved:
            parent = root
            for i, step in enumerate(dst[:-1]):
                label = p[i] if step == WILDCARD else step
                for el, child in parent.open():
                    if el == label:
                        parent = child
                        break
                else:
                    break
            e[0] = dst[-1]
            parent.open().append(e)
        return
    rest = dst[depth - 1:]
    for node, _p, e in moved:  # embed deeper under the same parent
        here = node
        for k in rest[:-1]:
            for el, child in here.open():
                if el == k:
                    here = child
                    break
            else:
                child = _Node(None)
                child.edges = []
                here.open().append([k, child])
                here = child
        e[0] = rest[-1]
        here.open().append(e)


def _append(root: _Node, src: list[str], dst: list[str]) -> None:
    first = root.get(src)
    if not isinstance(first, list):
        return
    second = root.get(dst)
    if not isinstance(second, list):
        return
    root.add(dst, second + first)
    root.delete(src)


def _delete_all(root: _Node, paths: list[list[str]]) -> None:
    for path in paths:
        root.delete(path)


def _bound_pair(op: Callable[[_Node, list[str], list[str]], None], src: list[str],
                dst: list[str]) -> Callable[[_Node], None]:
    """``op`` with its source and destination fixed (a closure, typed unlike a lambda's
    default arguments)."""
    return lambda root: op(root, src, dst)


def _bound_delete(paths: list[list[str]]) -> Callable[[_Node], None]:
    return lambda root: _delete_all(root, paths)


def compile_flatmap(ops: Sequence[FlatmapOp]) -> Callable[[Any], Any]:
    """A function applying the operations (parsed and checked by the model) to response data
    (the input may be mutated)."""
    steps: list[Callable[[_Node], None]] = []
    for kind, split in ops:
        paths = [list(p) for p in split]
        if kind == "move":
            steps.append(_bound_pair(_move, paths[0], paths[1]))
        elif kind == "append":
            steps.append(_bound_pair(_append, paths[0], paths[1]))
        elif kind == "del":
            steps.append(_bound_delete(paths))

    def apply(data: Any) -> Any:
        if data is None:  # tree.New refuses nil: the data is left alone
            return None
        root = _Node(data)
        for step in steps:
            step(root)
        out = root.expand()
        return out if isinstance(out, dict) else None

    return apply
