"""The layer rule of DESIGN.md: data flows down, imports point down.

Every import of every module (top-level, inside functions, under TYPE_CHECKING) is read with
`ast`; a module may import its own layer or one below it, never one above. The order below is
the code's, from the top; a new package has to be given a place here before it can be used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tidegate"

# Top first. A layer is a package under tidegate/ or a top-level module (without ".py").
LAYERS: list[tuple[str, ...]] = [
    ("__main__", "cli", "checker"),  # argument parsing, exit codes, output
    ("server",),                     # process runtime and the wire; drives reload/
    ("reload",),                     # the one owner of reloads
    ("lint",),                       # check/audit/schema rules over a loaded config
    ("pipeline",),                   # a validated model -> Generation
    ("components",),                 # the seam and one module per namespace
    ("telemetry",),                  # logs, access log, metrics, traces (read by components)
    ("upstream",),                   # the keep-alive client for backends
    ("state",),                      # what outlives a generation: leases, node-wide buckets
    ("encoding",),                   # backend decoders, output renderers
    ("config",),                     # sources, flexible config, the typed model
    ("gotemplate",),                 # Go text/template + Sprig
    # the vocabulary every layer speaks
    ("plugins",),                    # the interface Python plugins implement
    ("messages", "bodies", "errors", "files", "logs", "__init__"),
    ("golang",),                     # Go value semantics
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> str:
    """The layer of a dotted module name under tidegate (``tidegate.x.y`` -> ``x``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    return ".".join(rel.parts)


def _imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every tidegate import in the source of `module`."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("tidegate")]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            if target == "tidegate":  # `from tidegate import x`: the package x if there is one
                out += [(node.lineno, f"tidegate.{a.name}" if a.name in RANK else target)
                        for a in node.names]
            elif target.startswith("tidegate."):
                out.append((node.lineno, target))
    return out


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_package_has_a_layer() -> None:
    layers = {_layer(_module_name(p)) for p in MODULES}
    assert layers - set(RANK) == set(), "give the new package a place in LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_module_imports_from_a_layer_above_it(path: Path) -> None:
    module = _module_name(path)
    own = _layer(module)
    found = _imports(path.read_text(), module, path.name == "__init__.py")
    upward = [f"line {line} imports {target}" for line, target in found
              if RANK[_layer(target)] < RANK[own]]
    assert upward == []


def test_the_rule_sees_absolute_relative_and_deferred_imports() -> None:
    source = ("from tidegate.server.wire import serialize\n"
              "from ..pipeline import merge\n"
              "from . import strconv\n"
              "def f():\n    import tidegate.reload.slot\n"
              "if TYPE_CHECKING:\n    from tidegate import messages\n")
    found = [t for _, t in _imports(source, "tidegate.golang.floats")]
    assert found == ["tidegate.server.wire", "tidegate.pipeline", "tidegate.golang",
                     "tidegate.reload.slot", "tidegate.messages"]
    assert [RANK[_layer(t)] < RANK["golang"] for t in found] == [True, True, False, True, True]
