"""Where each piece of a rendered output came from, for errors found in the output later.

Execution appends every piece of output together with the node that wrote it (`exec.State`:
``out[i]`` was written by ``src[i]``), which costs one list append per piece. Nothing else is
computed until an error needs it: `OutputTrace.origin` then finds the piece holding a character
offset of the output and turns it into a template position.

* A text node's characters are copied verbatim from the template, so the position is exact:
  the same character in the template file (line and column).
* An action's output (``{{ .port }}``) is attributed to the action itself.
* ``{{ include "name" }}`` writes a partial file verbatim, so its output is traced into that
  file, and the action that included it is kept as `Origin.via`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from . import nodes as N


@dataclass(frozen=True)
class Origin:
    """A position in a template file (`name` as the template set knows it: its basename) or,
    when `partial` is true, in the partial file `name` that an ``include`` wrote verbatim."""

    name: str
    line: int
    col: int
    action: str | None = None  # the action whose output this is, as Go prints it
    partial: bool = False
    via: Origin | None = None  # the ``include`` action that wrote the partial

    def __str__(self) -> str:
        return f"{self.name}:{self.line}:{self.col}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _included_partial(node: N.Node) -> str | None:
    """The partial's name when `node` is exactly ``{{ include "literal" }}``."""
    if node.kind != "action" or node.pipe.decl or len(node.pipe.cmds) != 1:
        return None
    args = node.pipe.cmds[0].args
    if (len(args) == 2 and args[0].kind == "identifier" and args[0].ident == "include"
            and args[1].kind == "string"):
        return args[1].value
    return None


class OutputTrace:
    """The pieces of one rendered output and the node that wrote each of them."""

    __slots__ = ("_ends", "_pieces", "_sources")

    def __init__(self, pieces: list[str], sources: list[N.Node]) -> None:
        self._pieces = pieces
        self._sources = sources
        self._ends: list[int] | None = None

    def origin(self, offset: int) -> Origin | None:
        """Where the output character at `offset` (0-based, in characters) was written from.

        An offset at the very end of the output (a parser's "unexpected end") is attributed to
        the last character written. None when nothing was written.
        """
        if self._ends is None:
            self._ends = list(accumulate(map(len, self._pieces)))
        ends = self._ends
        if not ends or offset < 0:
            return None
        offset = min(offset, ends[-1] - 1)
        i = bisect_right(ends, offset)
        within = offset - (ends[i - 1] if i else 0)
        node = self._sources[i]
        tree = node.tree
        if tree is None:
            return None
        if node.kind == "text":
            line, col = _line_col(tree.text, node.pos + within)
            return Origin(tree.parse_name, line, col)
        line, col = _line_col(tree.text, node.pos)
        action = Origin(tree.parse_name, line, col, action=node.text())
        partial = _included_partial(node)
        if partial is None:
            return action
        pline, pcol = _line_col(self._pieces[i], within)
        return Origin(partial, pline, pcol, partial=True, via=action)
