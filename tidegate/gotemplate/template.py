"""A set of associated templates (Go's *template.Template with its common map).

Parsing follows text/template's ParseFiles/AddParseTree rules: each file parses into the set
under its basename, definitions inside a file must be unique, a later non-empty definition
replaces an earlier one, and an empty one never replaces an existing template.
"""

from __future__ import annotations

from typing import Any

from tidegate.golang.fmt import quote

from .exec import ExecError, execute
from .funcdef import GoFunc
from .nodes import is_empty_tree
from .parse import ParseError, Tree, parse_template
from .trace import OutputTrace

__all__ = ["ExecError", "ParseError", "TemplateSet"]


class TemplateSet:
    """Templates sharing one namespace and one function map."""

    def __init__(self, funcs: dict[str, GoFunc]) -> None:
        self.funcs = funcs
        self.trees: dict[str, Tree] = {}

    def has_func(self, name: str) -> bool:
        return name in self.funcs

    def parse(self, name: str, text: str) -> None:
        """Template.New(name).Parse(text): raises ParseError with Go's message."""
        local: dict[str, Tree] = {}
        parse_template(name, text, local, self.has_func)
        for tname, tree in local.items():
            old = self.trees.get(tname)
            if old is not None and is_empty_tree(tree.root) and old.root is not None:
                continue
            self.trees[tname] = tree

    def execute(self, name: str, data: Any) -> str:
        """ExecuteTemplate(name, data): the rendered text, or ExecError."""
        return self.execute_traced(name, data)[0]

    def execute_traced(self, name: str, data: Any) -> tuple[str, OutputTrace]:
        """`execute`, also returning where each piece of the output was written from."""
        if name not in self.trees:
            raise ExecError(f"template: no template {quote(name)} associated with template "
                            f"{quote(name)}", name)
        return execute(self.trees, self.funcs, name, data)
