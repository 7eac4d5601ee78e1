"""YAML sources, decoded the way KrakenD's decoder (Go yaml.v3 into ``interface{}``) sees them.

PyYAML alone implements YAML 1.1, which disagrees with KrakenD on plain scalars. Here:

* booleans are only ``true``/``false`` (any case form yaml.v3 accepts); ``yes``, ``no``, ``on``
  and ``off`` stay strings, as KrakenD reads them;
* timestamps and dates stay the strings the user wrote (yaml.v3 gives ``interface{}`` targets a
  string), so does anything else that is not a number: ``2h``, ``1:30``, ``10.0.0.1``;
* numbers follow Go's ``strconv`` rules: ``0x1F``, ``0o17``, ``017`` and ``1_000`` are ints,
  ``1e3`` is a float;
* a duplicate key is an error, as yaml.v3 reports it; only the first document is read;
* keys that are not strings become strings as Go's ``fmt.Sprint`` would write them.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tidegate.config.sources import IndexBuilder, PositionIndex, syntax_error
from tidegate.errors import ConfigSyntaxError, JsonPath
from tidegate.golang.sprint import sprint

try:  # libyaml makes composing about ten times faster; its marks count characters too
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]
_NUMBER_TAG = "tag:tidegate,2024:number"
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|-0|-0\.0)$")
_NUMBER_LIKE = re.compile(r"^[-+.0-9]")
_GO_INT = re.compile(
    r"([+-]?)(?:0[bB]([01]+)|0[oO]([0-7]+)|0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))"
)
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INT64 = range(-(2**63), 2**63)
_UINT64 = range(2**64)


class _GoResolver(yaml.resolver.BaseResolver):
    """Plain-scalar resolution of yaml.v3 (YAML 1.2 core schema plus Go number syntax)."""


_GoResolver.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_GoResolver.add_implicit_resolver("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""])
_GoResolver.add_implicit_resolver("tag:yaml.org,2002:float", _SPECIAL_FLOAT, list("-+."))
_GoResolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])
_GoResolver.add_implicit_resolver(_NUMBER_TAG, _NUMBER_LIKE, list("-+.0123456789"))


def go_number(text: str) -> int | float | str:
    """What yaml.v3 makes of a plain scalar that starts like a number (a string if not one)."""
    plain = text.replace("_", "")
    m = _GO_INT.fullmatch(plain)
    if m is not None:
        sign, binary, octal, hexa, old_octal, decimal = m.groups()
        if binary is not None:
            value = int(binary, 2)
        elif octal is not None:
            value = int(octal, 8)
        elif hexa is not None:
            value = int(hexa, 16)
        elif old_octal is not None:
            value = int(old_octal, 8)
        else:
            value = int(decimal)
        if sign == "-":
            value = -value
        if value in _INT64 or (sign == "" and value in _UINT64):
            return value
    if _GO_FLOAT.fullmatch(plain):
        number = float(plain)
        if not math.isinf(number):
            return number
    return text


class _GoConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with yaml.v3's answers for numbers, timestamps, sets and unknown tags."""

    def construct_number(self, node: ScalarNode) -> Any:
        return go_number(node.value)

    def construct_as_string(self, node: ScalarNode) -> str:
        return str(node.value)

    def construct_binary_as_text(self, node: ScalarNode) -> str:
        data = base64.b64decode("".join(str(node.value).split()))
        return data.decode("utf-8", "replace")

    def construct_set_as_map(self, node: MappingNode) -> Any:
        data: dict[str, Any] = {}
        yield data
        for key_node, _ in node.value:
            data[sprint(self.construct_object(key_node))] = None

    def construct_by_kind(self, _suffix: Any, node: Node) -> Any:
        # A custom tag (`!env foo`) does not change what yaml.v3 decodes into interface{}.
        if isinstance(node, ScalarNode):
            return str(node.value)
        if isinstance(node, SequenceNode):
            return self.construct_yaml_seq(node)
        return self.construct_yaml_map(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = sprint(self.construct_object(key_node, deep=True))
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f'mapping key "{key}" already defined at line {seen[key]}',
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = sprint(self.construct_object(key_node, deep=True))
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_GoConstructor.add_constructor(_NUMBER_TAG, _GoConstructor.construct_number)
_GoConstructor.add_constructor("tag:yaml.org,2002:timestamp", _GoConstructor.construct_as_string)
_GoConstructor.add_constructor("tag:yaml.org,2002:binary", _GoConstructor.construct_binary_as_text)
_GoConstructor.add_constructor("tag:yaml.org,2002:set", _GoConstructor.construct_set_as_map)
_GoConstructor.add_constructor("tag:yaml.org,2002:omap", _GoConstructor.construct_yaml_seq)
_GoConstructor.add_constructor("tag:yaml.org,2002:pairs", _GoConstructor.construct_yaml_seq)
_GoConstructor.add_multi_constructor("", _GoConstructor.construct_by_kind)


class GoLoader(_Parser, _GoConstructor, _GoResolver):  # type: ignore[misc, valid-type]
    """A loader (libyaml-backed when available) that decodes YAML as KrakenD does."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _GoConstructor.__init__(self)
        _GoResolver.__init__(self)


def _first_node(text: str) -> Node | None:
    loader = GoLoader(text)
    try:
        return loader.get_node() if loader.check_node() else None
    finally:
        loader.dispose()


def parse(text: str, file: str) -> tuple[Any, IndexBuilder]:
    """Decode the first YAML document; an empty document is an empty configuration."""
    loader = GoLoader(text)
    try:
        data = loader.get_data() if loader.check_data() else None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file, text) from None
    except yaml.YAMLError as exc:
        raise ConfigSyntaxError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    return data, lambda: _positions(text)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str, text: str) -> ConfigSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context and exc.problem_mark is not None:
        problem = f"{problem} ({exc.context})"
    message = f"invalid YAML: {problem}"
    if mark is None:
        return ConfigSyntaxError(message, file=file)
    return syntax_error(message, file, text, mark.line + 1, mark.column + 1)


def _positions(text: str) -> PositionIndex:
    """Start marks of every node of the first document, by JSON path (aliases: the anchor)."""
    root = _first_node(text)
    index: PositionIndex = {}
    if root is None:
        return index
    keys = _GoConstructor()
    active: set[int] = set()

    def pairs(node: MappingNode) -> list[tuple[str, Node]]:
        own: list[tuple[str, Node]] = []
        merged: list[tuple[str, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        merged.extend(pairs(source))
            elif isinstance(key_node, ScalarNode):
                own.append((sprint(keys.construct_object(key_node)), value_node))
        names = {name for name, _ in own}
        return [p for p in merged if p[0] not in names] + own

    def walk(node: Node, path: JsonPath) -> None:
        index[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in active:  # a recursive alias
            return
        active.add(id(node))
        if isinstance(node, MappingNode):
            for name, child in pairs(node):
                walk(child, (*path, name))
        elif isinstance(node, SequenceNode):
            for i, child in enumerate(node.value):
                walk(child, (*path, i))
        active.discard(id(node))

    walk(root, ())
    return index
