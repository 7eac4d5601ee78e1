"""The fail-closed opt-out, for sections tidegate implements but cannot serve as written.

A plugin that is not installed, a martian modifier tidegate does not know, a client rate limit
without a strategy: KrakenD starts and serves without them; tidegate refuses the configuration
(fail closed), with a located error. ``--allow-unimplemented NAME`` (development only) then
means what it means for a namespace tidegate does not implement at all: the section is left
out, requests are served without it, the name is logged at every start and listed on
``/__health``. Only the sections that failed are left out; the others keep working.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tidegate.config.aliases import current_name
from tidegate.errors import ConfigError, JsonPath


def section_of(error: ConfigError) -> tuple[JsonPath, str] | None:
    """The extra_config section an error lies in: (its path, its current namespace name)."""
    path = tuple(error.path or ())
    for i, key in enumerate(path[:-1]):
        name = path[i + 1]
        if key == "extra_config" and isinstance(name, str):
            return path[:i + 2], current_name(name)
    return None


def opted_out(errors: Iterable[ConfigError], allowed: frozenset[str]
              ) -> tuple[list[ConfigError], dict[JsonPath, str]]:
    """(errors that still refuse the configuration, sections to leave out by the opt-out)."""
    kept: list[ConfigError] = []
    sections: dict[JsonPath, str] = {}
    for error in errors:
        where = section_of(error)
        if where is not None and where[1] in allowed:
            sections[where[0]] = where[1]
        else:
            kept.append(error)
    return kept, sections


def without(data: dict[str, Any], sections: Iterable[JsonPath]) -> dict[str, Any]:
    """A copy of the raw configuration without these sections (whichever name, current or
    legacy, each was written with; paths as the weakly typed model reads the data)."""
    out = copy.deepcopy(data)
    for path in sections:
        _remove(out, path[:-1], current_name(str(path[-1])))
    return out


def _remove(node: Any, path: JsonPath, name: str) -> None:
    if not path:  # the extra_config: an object, or a list of objects read as one
        for section in node if isinstance(node, list) else [node]:
            if isinstance(section, dict):
                for key in [k for k in section if current_name(k) == name]:
                    del section[key]
        return
    key, rest = path[0], path[1:]
    if isinstance(key, int) and isinstance(node, dict):
        _remove(node, rest, name)  # one object where lura's struct has a list
        return
    if isinstance(node, dict):
        child = node.get(key)
    elif isinstance(node, list) and isinstance(key, int) and key < len(node):
        child = node[key]
    else:
        child = None
    if child is not None:
        _remove(child, rest, name)
