"""Lint a decoded configuration: schema errors and tidegate's warnings, each with its place.

Two sources, one `Issue` type:

* `lint_schema` validates against a JSON Schema (the built-in one or a user's) and rewords the
  validator's findings the way a user reads them: unknown attributes with a "did you mean",
  misplaced components with the level they belong to, wrong types with what was found.
* `walk` reads the same declarative tables the built-in schema is generated from and finds what
  `run` silently ignores (unknown keys and namespaces, KrakenD features tidegate does not
  implement yet, KrakenD v1 names). `unknown_attribute_warnings` is its form for `run`.

Both are pure: data in, issues out; positions are added from a `Document` when one is given.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from tidegate.config.aliases import current_name
from tidegate.config.durations import DurationError, format_duration, parse_duration
from tidegate.config.fields import COMMENT_KEY_PATTERN, SCOPES, FieldSpec
from tidegate.config.loader import locate_error
from tidegate.config.namespaces import (
    NAMESPACES,
    SCOPE_NAMES,
    SHAPES,
    at_scope,
    protects,
    root_setting_protects,
)
from tidegate.config.sources import Document, describe
from tidegate.errors import ConfigError, ConfigValueError, JsonPath
from tidegate.lint import schema as S
from tidegate.lint.implemented import implemented, registered_components

ERROR = "error"
WARNING = "warning"
_COMMENT = re.compile(COMMENT_KEY_PATTERN)


@dataclass
class Issue:
    """One finding; `error` carries the message, the JSON path and, once located, the place."""

    severity: str
    code: str  # unknown, misplaced, unsupported, deprecated, v1-ignored, type, enum, ...
    error: ConfigError

    @property
    def path(self) -> JsonPath:
        """JSON path of the offending value."""
        return self.error.path

    def __str__(self) -> str:
        return str(self.error)


def _issue(severity: str, code: str, path: Iterable[str | int], message: str) -> Issue:
    return Issue(severity, code, ConfigValueError(message, path=tuple(path)))


def locate(issues: list[Issue], doc: Document | None) -> list[Issue]:
    """Fill in file and line:column from the document (in place; returned for chaining)."""
    if doc is None:
        return issues
    for issue in issues:
        # The loader's rule, so a flexible config's finding points at its template line too.
        locate_error(issue.error, doc)
    return issues


# --- wording -----------------------------------------------------------------------------------


def _ticks(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``, did you mean `url_pattern`?`` or nothing when no candidate is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not match and "/" not in word:
        lowered = {c.lower(): c for c in candidates}
        match = [lowered[word.lower()]] if word.lower() in lowered else []
    return f", did you mean `{match[0]}`?" if match else ""


def unknown_attribute_message(key: str, allowed: Iterable[str]) -> str:
    """The message for an attribute no table (or schema) knows at this place."""
    names = sorted(allowed)
    return f"unknown attribute `{key}`{did_you_mean(key, names)} (allowed here: {_ticks(names)})"


def option_message(key: str, namespace: str, scope: str, allowed: Iterable[str]) -> str:
    """An unknown option of a component, or one that belongs to its other level."""
    ns = NAMESPACES.get(namespace)
    for other in (ns.scopes if ns is not None and ns.fields else ()):
        if other != scope and key in (ns.fields or {}).get(other, {}):
            return (f"misplaced option `{key}`: `{namespace}` takes it in the extra_config of "
                    f"{SCOPE_NAMES[other]}, not of {SCOPE_NAMES[scope]}")
    return unknown_attribute_message(key, allowed)


def unknown_namespace_message(name: str, scope: str) -> str:
    """An extra_config key that is no namespace, or one that belongs to another level."""
    ns = NAMESPACES.get(name)
    where = SCOPE_NAMES[scope]
    if ns is not None:
        homes = " or ".join(SCOPE_NAMES[s] for s in ns.scopes)
        return (f"misplaced component `{name}`: it belongs in the extra_config of {homes}, "
                f"not of {where}")
    known = sorted(at_scope(scope))
    hint = did_you_mean(name, known)
    if not hint:
        hint = did_you_mean(name, NAMESPACES)
    return (f"unknown namespace `{name}`{hint} (namespaces accepted in the extra_config of "
            f"{where}: {_ticks(known)})")


def _accepted(fields: Mapping[str, FieldSpec]) -> list[str]:
    return [name for name, spec in fields.items() if not (spec.replaced_by or spec.ignored)]


# --- the walker: what `run` ignores ----------------------------------------------------------


def walk(data: Any) -> list[Issue]:
    """Unknown, misplaced, unsupported and deprecated keys, in document order."""
    walker = _Walker(registered_components())
    if isinstance(data, Mapping):
        walker.object(data, (), SCOPES["service"], "service")
        walker.out.extend(_hostless_backends(data))
    return walker.out


def _hostless_backends(data: Mapping[str, Any]) -> list[Issue]:
    """Backends with no host here nor at the root: KrakenD starts, and their requests fail."""
    if data.get("host"):
        return []
    out = []
    endpoints = data.get("endpoints")
    for i, ep in enumerate(endpoints if isinstance(endpoints, list) else []):
        backends = ep.get("backend") if isinstance(ep, Mapping) else None
        for j, b in enumerate(backends if isinstance(backends, list) else []):
            if isinstance(b, Mapping) and not b.get("host"):
                out.append(_issue(WARNING, "no-host", ("endpoints", i, "backend", j),
                                  "no host for this backend (set \"host\" here or at the root): "
                                  "its requests fail with \"no hosts available\", as in KrakenD"))
    return out


class _Walker:
    """One pass over a configuration along the field tables, collecting warnings."""

    def __init__(self, registered: frozenset[str]) -> None:
        self.registered = registered
        self.out: list[Issue] = []

    def warn(self, code: str, path: JsonPath, message: str) -> None:
        self.out.append(_issue(WARNING, code, path, message))

    def object(self, obj: Mapping[str, Any], path: JsonPath, fields: Mapping[str, FieldSpec],
               scope: str | None, owner: str = "") -> None:
        """An object described by `fields`; `owner` is the namespace it configures, if any."""
        for key, value in obj.items():
            if not isinstance(key, str) or _COMMENT.match(key):
                continue
            kpath = (*path, key)
            spec = fields.get(key)
            if spec is None:
                allowed = _accepted(fields)
                self.warn("unknown", kpath, option_message(key, owner, scope, allowed)
                          if owner and scope else unknown_attribute_message(key, allowed))
                continue
            if spec.replaced_by:
                # KrakenD 2 ignores v1 attribute names (tidegate too): the value has no effect.
                self.warn("v1-ignored", kpath,
                          f"`{key}` is a KrakenD v1 name, ignored by KrakenD 2 and tidegate: "
                          f"use `{spec.replaced_by}`")
                continue
            if spec.ignored:
                self.warn("ignored", kpath, f"`{key}` is ignored by KrakenD and tidegate "
                                            f"({spec.ignored})")
                continue
            if scope == "service" and root_setting_protects(key, value):
                continue  # not a warning: the fail-closed rule refuses it (lint.failclosed)
            if not spec.supported:
                what = f"`{owner}` option `{key}`" if owner else f"`{key}`"
                self.warn("unsupported", kpath,
                          f"{what} is not supported by tidegate yet: it is ignored")
                continue
            self.value(value, spec, kpath, scope)

    def value(self, value: Any, spec: FieldSpec, path: JsonPath, scope: str | None) -> None:
        """Descend into the value of a known attribute."""
        if spec.kind == "duration" and type(value) is int and 0 < value < 1_000_000:
            self.warn("tiny-duration", path, tiny_duration_message(value))
        elif spec.kind == "extra_config" and scope and isinstance(value, Mapping):
            self.extra_config(value, path, scope)
        elif spec.kind == "array" and spec.items and isinstance(value, list):
            item_fields = SCOPES.get(spec.items) or SHAPES.get(spec.items)
            item_scope = spec.items if spec.items in SCOPES else None
            for i, item in enumerate(value):
                if isinstance(item, Mapping) and item_fields is not None:
                    self.object(item, (*path, i), item_fields, item_scope)
        elif spec.kind == "shape" and spec.items and isinstance(value, Mapping):
            self.object(value, path, SHAPES[spec.items], None)

    def extra_config(self, extra: Mapping[str, Any], path: JsonPath, scope: str) -> None:
        """The namespaces of one level's extra_config."""
        for name, cfg in extra.items():
            if not isinstance(name, str) or _COMMENT.match(name):
                continue
            npath = (*path, name)
            ns = NAMESPACES.get(name)
            if protects(name) and not implemented(name, self.registered):
                continue  # not a warning: the fail-closed rule refuses it (lint.failclosed)
            if ns is None or scope not in ns.scopes:
                self.warn("unknown" if ns is None else "misplaced", npath,
                          unknown_namespace_message(name, scope))
                continue
            if ns.replaced_by:
                self.warn("deprecated", npath,
                          f"`{name}` is a KrakenD v1 namespace: use `{ns.replaced_by}`")
            if current_name(name) == "telemetry/opencensus" and isinstance(cfg, Mapping):
                self.opencensus(cfg, npath)
                continue
            if not implemented(name, self.registered):
                self.warn("unsupported", npath,
                          f"component `{name}` is not supported by tidegate yet: it is ignored")
                continue
            if ns.fields is not None and isinstance(cfg, Mapping):
                self.object(cfg, npath, ns.fields[scope], scope, owner=name)
            elif isinstance(cfg, Mapping):
                self.component(name, cfg, npath, scope)
                if current_name(name).startswith("modifier/lua-"):
                    self.lua(current_name(name), cfg, npath)

    def lua(self, name: str, cfg: Mapping[str, Any], path: JsonPath) -> None:
        """A script that uses the standard library without `allow_open_libs`, a `post` that
        never runs."""
        from tidegate.components.lua.config import read_source
        from tidegate.components.lua.lint import warnings

        for key, message in warnings(name, cfg, "router", read_source):
            self.warn("lua", (*path, *key), message)

    def opencensus(self, cfg: Mapping[str, Any], path: JsonPath) -> None:
        """What of an OpenCensus section is not applied, and its OpenTelemetry equivalent."""
        from tidegate.telemetry.tracing_opencensus import warnings

        for key, message in warnings(cfg):
            self.warn("unsupported", (*path, *key), message)

    def component(self, name: str, cfg: Mapping[str, Any], path: JsonPath, scope: str) -> None:
        """Unknown attributes of a registered component's section, from its own schema."""
        schema = S.component_schema(name, scope)
        props = schema.get("properties")
        if not isinstance(props, Mapping) or schema.get("additionalProperties", True):
            return
        for key in cfg:
            if isinstance(key, str) and key not in props and not _COMMENT.match(key):
                self.warn("unknown", (*path, key),
                          option_message(key, name, scope, sorted(props)))


def unknown_attribute_warnings(data: Any, document: Document | None = None) -> list[str]:
    """One line per key `run` ignores: unknown or misplaced attributes and namespaces, KrakenD
    features tidegate does not implement yet, KrakenD v1 names. For the supervisor's log.

    With the `document` the configuration came from, each line starts with file:line:col.
    """
    issues = locate(walk(data), document)
    return [str(issue) for issue in issues]


# --- schema validation -----------------------------------------------------------------------


def builtin_validator() -> jsonschema.protocols.Validator:
    """A validator of the built-in schema (built on each call: no module-level state)."""
    schema = S.build_schema()
    return jsonschema.Draft202012Validator(schema)


def validator_for(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    """A validator for a user's schema, of the dialect it declares; raises SchemaError."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def lint_schema(data: Any, validator: jsonschema.protocols.Validator) -> list[Issue]:
    """Every schema violation of `data`, reworded, one issue per offending value."""
    out: list[Issue] = []
    for err in validator.iter_errors(data):
        out.extend(_convert(err))
    return out


def _convert(err: jsonschema.ValidationError) -> list[Issue]:
    path = tuple(err.absolute_path)
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    keyword = err.validator
    value = err.instance
    if keyword == "additionalProperties" and isinstance(value, Mapping):
        return _extra_keys(value, path, schema)
    if keyword == "required":
        missing = [k for k in err.validator_value if isinstance(value, Mapping)
                   and k not in value]
        return [_issue(ERROR, "required", (*path, k), f"missing required attribute `{k}`")
                for k in missing]
    if schema.get(S.KIND) == "duration":
        return [_issue(ERROR, "duration", path, duration_message(value))]
    if keyword == "type":
        expected = err.validator_value
        names = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
        return [_issue(ERROR, "type", path, f"expected {wanted}, got {_show(value)}")]
    if keyword == "enum":
        allowed = [v for v in err.validator_value if v != ""]
        hint = did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        return [_issue(ERROR, "enum", path, f"unknown value {value!r}{hint} "
                                            f"(expected one of {_ticks(map(str, allowed))})")]
    if keyword == "const":
        return [_issue(ERROR, "const", path,
                       f"expected {_show(err.validator_value)}, got {_show(value)}")]
    if keyword in ("minimum", "maximum"):
        word = "at least" if keyword == "minimum" else "at most"
        return [_issue(ERROR, keyword, path,
                       f"expected {word} {err.validator_value}, got {_show(value)}")]
    if keyword == "minItems":
        return [_issue(ERROR, keyword, path,
                       f"expected at least {err.validator_value} item(s), got an empty list")]
    if keyword in ("anyOf", "oneOf") and err.context:
        best = jsonschema.exceptions.best_match(err.context)
        if best is not None:
            return _convert(best)
    return [_issue(ERROR, str(keyword), path, err.message)]


_TYPE_WORDS = {"string": "a string", "boolean": "a boolean", "integer": "an integer",
               "number": "a number", "array": "a list", "object": "an object",
               "null": "null"}


def _show(value: Any) -> str:
    """A value in the model's words (``string 'x'``, ``number 3``), so `check` reads the same
    whichever stage found the problem."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    return "a list" if isinstance(value, list) else describe(value)


def tiny_duration_message(nanoseconds: int) -> str:
    """KrakenD reads a bare number as nanoseconds: 3000 is 3µs, and every request times out."""
    seconds = f"{nanoseconds // 1000}s" if nanoseconds % 1000 == 0 else f"{nanoseconds / 1000:g}s"
    return (f"{nanoseconds} is read as {format_duration(nanoseconds / 1e9)} (an integer duration "
            f"is in nanoseconds): did you mean \"{nanoseconds}ms\" or \"{seconds}\"?")


def duration_message(value: Any) -> str:
    """Why a value is no duration, in the model's words (Go's for a malformed string)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f'expected a duration string such as "2s", got {_show(value)}'
    if isinstance(value, int):
        return f"a negative duration is not allowed: {value}"
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        return f'{exc} (expected a duration such as "1m30s", "150ms", "2h")'
    if seconds < 0:
        return f"a negative duration is not allowed: {value!r}"
    return f"invalid duration {value!r}"


def _extra_keys(value: Mapping[str, Any], path: JsonPath,
                schema: Mapping[str, Any]) -> list[Issue]:
    props = schema.get("properties") or {}
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    extras = [k for k in value if k not in props and not any(p.search(k) for p in patterns)]
    out = []
    for key in extras:
        if schema.get(S.KIND) == "extra_config":
            scope = schema.get(S.SCOPE, "service")
            code = "misplaced" if key in NAMESPACES else "unknown"
            out.append(_issue(ERROR, code, (*path, key), unknown_namespace_message(key, scope)))
        else:
            allowed = [k for k, sub in props.items()
                       if not (isinstance(sub, Mapping) and sub.get("deprecated"))]
            if S.NAMESPACE in schema:
                message = option_message(key, schema[S.NAMESPACE], schema[S.SCOPE], allowed)
            else:
                message = unknown_attribute_message(key, allowed)
            out.append(_issue(ERROR, "unknown", (*path, key), message))
    return out


def lint(data: Any, validator: jsonschema.protocols.Validator | None = None,
         document: Document | None = None) -> list[Issue]:
    """Schema errors (built-in schema unless a validator is given) plus tidegate's warnings
    (unsupported features, v1 names), located, in document order."""
    validator = validator or builtin_validator()
    issues = lint_schema(data, validator)
    for issue in walk(data):
        if issue.code in ("v1-ignored", "ignored", "deprecated"):
            issue.severity = ERROR  # KrakenD's schema refuses them too
        if issue.code in ("unsupported", "deprecated", "v1-ignored", "ignored", "tiny-duration",
                          "no-host"):
            issues.append(issue)
    return sort_issues(locate(issues, document))


def sort_issues(issues: list[Issue]) -> list[Issue]:
    """Errors and warnings in the order a reader meets them in the file."""
    def key(issue: Issue) -> tuple[int, int]:
        return (issue.error.line or 0, issue.error.col or 0)
    return sorted(issues, key=key)  # stable: without positions, the order found
