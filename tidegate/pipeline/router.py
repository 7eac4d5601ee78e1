"""Route table with KrakenD's path syntax (``/users/{id}``, a trailing ``/*`` catch-all).

Matching follows gin (KrakenD's router): static segments win over parameters, parameters over
the catch-all. A path that matches no route may still match one with or without its trailing
slash, or with a different letter case: KrakenD redirects those (301 for GET, 307 otherwise).
A path that exists for other methods answers 405.

The table is built once per generation and never mutated afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from tidegate.config.model import PLACEHOLDER

H = TypeVar("H")


class _Node(Generic[H]):
    __slots__ = ("catch_all", "param", "routes", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node[H]] = {}
        self.param: _Node[H] | None = None
        # method -> (handler, param names in order); the catch-all keeps its own table.
        self.routes: dict[str, tuple[H, tuple[str, ...]]] = {}
        self.catch_all: dict[str, tuple[H, tuple[str, ...]]] = {}


class Match(Generic[H]):
    """A route found: its handler and the path parameters by name."""

    __slots__ = ("handler", "params")

    def __init__(self, handler: H, params: dict[str, str]) -> None:
        self.handler = handler
        self.params = params


@dataclass(frozen=True, slots=True)
class Redirect:
    """The request should be redirected to this path (trailing slash or case fix)."""

    location: str


class MethodNotAllowed:
    """The path exists, but not for this method."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed


NOT_FOUND = None


class RouteConflict(ValueError):
    """Two routes that cannot coexist (same method and same shape)."""


class Router(Generic[H]):
    """A segment trie; `lookup` returns a Match, a Redirect, a MethodNotAllowed or None."""

    def __init__(self) -> None:
        self._root: _Node[H] = _Node()
        self._routes: list[tuple[str, str]] = []
        # Routes without parameters, found with one dict lookup before walking the trie.
        self._exact: dict[tuple[str, str], H] = {}

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(method, path) of every route, in insertion order."""
        return list(self._routes)

    def add(self, method: str, path: str, handler: H) -> None:
        """Register a route; raises RouteConflict when the same method and shape exist."""
        node = self._root
        names: list[str] = []
        segments = path.split("/")[1:]
        for i, seg in enumerate(segments):
            if seg == "*" and i == len(segments) - 1:
                names.append("*")
                if method in node.catch_all:
                    raise RouteConflict(f"route {method} {path} is declared twice")
                node.catch_all[method] = (handler, tuple(names))
                self._routes.append((method, path))
                return
            m = PLACEHOLDER.fullmatch(seg)
            if m:
                names.append(m.group(1))
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                node = node.static.setdefault(seg, _Node())
        if method in node.routes:
            raise RouteConflict(f"route {method} {path} is declared twice")
        node.routes[method] = (handler, tuple(names))
        if not names:
            self._exact[(method, path)] = handler
        self._routes.append((method, path))

    def lookup(self, method: str, path: str) -> Match[H] | Redirect | MethodNotAllowed | None:
        """Find the handler for a request path (already percent-decoded, without query)."""
        exact = self._exact.get((method, path))
        if exact is not None:
            return Match(exact, {})
        segments = path.split("/")[1:]
        values: list[str] = []
        found = self._find(self._root, segments, 0, values, method)
        if found is not None:
            (handler, names), vals = found
            return Match(handler, dict(zip(names, vals, strict=False)))
        # Other methods on the same path → 405 (gin's HandleMethodNotAllowed).
        allowed = [m for m in sorted(self._methods_for(segments)) if m != method]
        if allowed:
            return MethodNotAllowed(allowed)
        if method == "CONNECT" or path == "/":
            return None
        alt = path[:-1] if path.endswith("/") else path + "/"
        if self._find(self._root, alt.split("/")[1:], 0, [], method) is not None:
            return Redirect(alt)
        fixed = self._fix_case(self._root, segments, 0, [], method)
        if fixed is not None:
            return Redirect("/" + "/".join(fixed))
        return None

    def _find(self, node: _Node[H], segs: list[str], i: int, values: list[str],
              method: str) -> tuple[tuple[H, tuple[str, ...]], list[str]] | None:
        if i == len(segs):
            route = node.routes.get(method)
            return (route, list(values)) if route is not None else None
        seg = segs[i]
        child = node.static.get(seg)
        if child is not None:
            found = self._find(child, segs, i + 1, values, method)
            if found is not None:
                return found
        if node.param is not None and seg:
            values.append(seg)
            found = self._find(node.param, segs, i + 1, values, method)
            values.pop()
            if found is not None:
                return found
        route = node.catch_all.get(method)
        if route is not None:
            return route, [*values, "/".join(segs[i:])]
        return None

    def _methods_for(self, segs: list[str]) -> set[str]:
        methods: set[str] = set()
        stack: list[tuple[_Node[H], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if i == len(segs):
                methods.update(node.routes)
                continue
            methods.update(node.catch_all)
            child = node.static.get(segs[i])
            if child is not None:
                stack.append((child, i + 1))
            if node.param is not None and segs[i]:
                stack.append((node.param, i + 1))
        return methods

    def _fix_case(self, node: _Node[H], segs: list[str], i: int, out: list[str],
                  method: str) -> list[str] | None:
        """Case-insensitive search, returning the route's own spelling (gin's RedirectFixedPath)."""
        if i == len(segs):
            return list(out) if method in node.routes else None
        seg = segs[i]
        lowered = seg.lower()
        for name, child in node.static.items():
            if name.lower() == lowered:
                out.append(name)
                found = self._fix_case(child, segs, i + 1, out, method)
                out.pop()
                if found is not None:
                    return found
        if node.param is not None and seg:
            out.append(seg)
            found = self._fix_case(node.param, segs, i + 1, out, method)
            out.pop()
            if found is not None:
                return found
        if method in node.catch_all:
            return [*out, *segs[i:]]
        return None
