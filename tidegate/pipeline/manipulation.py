"""Per-backend response manipulation and the merge of backend answers (lura ``proxy/``).

Order, as lura's entity formatter: ``target`` (extract a nested object) → ``allow`` or, when
there is no allow list, ``deny`` (dot paths into nested objects, never into arrays) →
``mapping`` (rename top-level keys) → ``group`` (wrap under a key). With a ``flatmap_filter``
in ``extra_config.proxy``, lura uses target → flatmap operations → group instead, ignoring
allow/deny/mapping. ``is_collection`` is the decoder's business (the array arrives under
``collection``).

Everything is worked out when the configuration is compiled; the per-request closures only
walk the data. They mutate and return the dict they get (it is the freshly decoded body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tidegate.config.model import BackendConfig
from tidegate.pipeline.flatmap import compile_flatmap

__all__ = [
    "MergeAccumulator",
    "compile_backend_formatter",
    "merge_responses",
]

Data = dict[str, Any] | None
Formatter = Callable[[Data], Data]


def _identity(data: Data) -> Data:
    return data


# -- target -----------------------------------------------------------------------------------


def _compile_target(target: str) -> Callable[[Data], dict[str, Any]]:
    parts = target.split(".")

    def extract(data: Data) -> dict[str, Any]:
        for part in parts:
            value = data.get(part) if data else None
            if not isinstance(value, dict):
                return {}
            data = value
        return data if data is not None else {}

    return extract


# -- allow ------------------------------------------------------------------------------------


def _allow_tree(paths: Sequence[str]) -> dict[str, Any]:
    """lura's allow-list tree; a leaf is True. Later entries can widen or narrow earlier ones."""
    tree: dict[str, Any] = {}
    for path in paths:
        fields = path.split(".")
        node = tree
        for f in fields[:-1]:
            child = node.get(f)
            if not isinstance(child, dict):
                child = node[f] = {}
            node = child
        node[fields[-1]] = True
    return tree


def _prune(allow: dict[str, Any], data: dict[str, Any]) -> bool:
    """Keep only allowed keys; True when nothing was kept (AllowlistPrune)."""
    empty = True
    for key in list(data):
        rule = allow.get(key)
        keep = False
        if rule is True:
            keep = True
        elif rule is not None:
            value = data[key]
            keep = isinstance(value, dict) and not _prune(rule, value)
        if keep:
            empty = False
        else:
            del data[key]
    return empty


def _compile_allow(paths: Sequence[str]) -> Callable[[dict[str, Any]], None]:
    tree = _allow_tree(paths)
    flat = all(v is True for v in tree.values())
    if flat:  # only top-level keys: a cheap rebuild
        keys = frozenset(tree)

        def allow_flat(data: dict[str, Any]) -> None:
            for key in [k for k in data if k not in keys]:
                del data[key]

        return allow_flat

    def allow(data: dict[str, Any]) -> None:
        _prune(tree, data)

    return allow


# -- deny -------------------------------------------------------------------------------------


def _deny_tree(paths: Sequence[str]) -> dict[str, Any]:
    """lura's deny tree; None marks a key to delete (with everything below it)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node: dict[str, Any] | None = tree
        keys = path.split(".")
        for i, k in enumerate(keys):
            assert node is not None
            if i == len(keys) - 1:
                node[k] = None
                break
            if k in node:
                if node[k] is None:  # an ancestor is already deleted
                    break
                node = node[k]
            else:
                node[k] = {}
                node = node[k]
    return tree


def _rec_delete(tree: dict[str, Any], data: Any) -> None:
    if not isinstance(data, dict):
        return
    for key, sub in tree.items():
        if key not in data:
            continue
        if sub is None:
            del data[key]
        else:
            _rec_delete(sub, data[key])


def _compile_deny(paths: Sequence[str]) -> Callable[[dict[str, Any]], None]:
    tree = _deny_tree(paths)
    if all(v is None for v in tree.values()):
        keys = tuple(tree)

        def deny_flat(data: dict[str, Any]) -> None:
            for key in keys:
                data.pop(key, None)

        return deny_flat

    def deny(data: dict[str, Any]) -> None:
        _rec_delete(tree, data)

    return deny


# -- the formatter ----------------------------------------------------------------------------


def compile_backend_formatter(cfg: BackendConfig) -> Formatter:
    """The response manipulation of one backend, from its typed configuration."""
    group = cfg.group or ""
    extract = _compile_target(cfg.target) if cfg.target else None

    if cfg.flatmap is not None:
        flat = compile_flatmap(cfg.flatmap)

        def format_flatmap(data: Data) -> Data:
            if extract is not None:
                data = extract(data)
            data = flat(data)
            return {group: data} if group else data

        return format_flatmap

    if cfg.allow:
        prop_filter: Callable[[dict[str, Any]], None] | None = _compile_allow(cfg.allow)
    elif cfg.deny:
        prop_filter = _compile_deny(cfg.deny)
    else:
        prop_filter = None

    # lura keeps only the first segment of a new name: {"a": "b.c"} renames a to b.
    mapping = tuple((old, new.split(".")[0]) for old, new in cfg.mapping.items())

    if extract is None and prop_filter is None and not mapping and not group:
        return _identity

    def format_entity(data: Data) -> Data:
        if extract is not None:
            data = extract(data)
        if data:
            if prop_filter is not None:
                prop_filter(data)
            if mapping and data:
                for old, new in mapping:
                    if old in data:
                        value = data.pop(old)
                        if new != old:  # Go sets then deletes: a self-mapping drops the key
                            data[new] = value
        return {group: data} if group else data

    return format_entity


# -- merging ----------------------------------------------------------------------------------


def merge_responses(parts: Iterable[Data]) -> dict[str, Any]:
    """lura's default combiner: a shallow merge, later parts overwriting keys of earlier ones.

    The first non-nil part is the base and is updated in place; nil parts are skipped; no part
    at all gives ``{}``. Order matters: lura merges in arrival order for parallel backends.
    """
    base: dict[str, Any] | None = None
    for part in parts:
        if part is None:
            continue
        if base is None:
            base = part
        else:
            base.update(part)
    return base if base is not None else {}


class MergeAccumulator:
    """lura's incrementalMergeAccumulator: merge answers as they arrive, track completeness.

    ``add(data, complete)`` for each answer, ``add_error()`` for each failed backend, then
    ``result()`` gives ``(data or None when nothing answered, is_complete)``.
    """

    __slots__ = ("_complete", "_data", "_errors", "_has", "_pending")

    def __init__(self, total: int) -> None:
        self._pending = total
        self._data: Data = None
        self._has = False
        self._complete = False
        self._errors = 0

    def add(self, data: Data, complete: bool = True) -> None:
        self._pending -= 1
        if not self._has:
            self._has, self._data, self._complete = True, data, complete
            return
        # combineData over [accumulated, new]: a nil side makes the result incomplete
        base = self._data
        ok = base is not None and self._complete
        if data is None:
            ok = False
        else:
            ok = ok and complete if base is not None else False
            if base is None:
                base = data
            else:
                base.update(data)
        self._data = base if base is not None else {}
        self._complete = ok

    def add_error(self) -> None:
        self._pending -= 1
        self._errors += 1
        if self._has:
            self._complete = False

    def result(self) -> tuple[Data, bool]:
        if not self._has:
            return None, False
        complete = self._complete and self._pending <= 0 and not self._errors
        return self._data, complete
