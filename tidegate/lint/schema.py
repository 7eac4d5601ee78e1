"""tidegate's JSON Schema (draft 2020-12), generated from the field and namespace tables.

Generated, never written by hand, so it describes exactly what tidegate accepts: the model's
enumerations, the namespaces of the registry at the levels where they belong, the comment keys
KrakenD tolerates. Annotations named ``x-tidegate-*`` carry what the linter needs to word its
messages (which level an object is, which attributes are not supported yet); validators ignore
them, so the schema stays usable by any JSON Schema tool.
"""

from __future__ import annotations

from typing import Any

from tidegate import KRAKEND_COMPAT_VERSION, __version__
from tidegate.config.aliases import current_name
from tidegate.config.component_schemas import DEFS as SCHEMA_DEFS
from tidegate.config.component_schemas import schema_of
from tidegate.config.fields import (
    COMMENT_KEY_PATTERN,
    DURATION_PATTERN,
    REQUIRED,
    SCOPES,
    FieldSpec,
)
from tidegate.config.namespaces import (
    NAMESPACES,
    SHAPE_REQUIRED,
    SHAPES,
    at_scope,
)
from tidegate.lint.implemented import implemented, registered_components

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Annotation keywords (ignored by validators, read by the linter).
KIND = "x-tidegate-kind"  # "duration", or "extra_config" for an extra_config object
SCOPE = "x-tidegate-scope"  # the level an object or extra_config belongs to
NAMESPACE = "x-tidegate-namespace"  # the component an object configures
SUPPORTED = "x-tidegate-supported"  # false: accepted, not acted upon yet
REPLACED_BY = "x-tidegate-replaced-by"  # a deprecated name and its replacement


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    """The schema of one attribute."""
    kind = spec.kind
    out: dict[str, Any]
    if kind == "const":
        out = {}
    elif kind == "duration":
        out = {"$ref": "#/$defs/duration"}
    elif kind == "strings":
        out = {"type": "array", "items": {"type": "string"}}
    elif kind == "enum":
        out = {"enum": list(spec.enum)}
    elif kind == "array":
        out = {"type": "array"}
        if spec.items:
            out["items"] = {"$ref": f"#/$defs/{spec.items}"}
    elif kind == "mapping":
        out = {"type": "object", "additionalProperties": {"type": "string"}}
    elif kind == "extra_config":
        out = {"type": "object"}
    elif kind == "shape":
        out = {"$ref": f"#/$defs/{spec.items}"}
    elif kind == "any":
        out = {}
    else:
        out = {"type": kind}
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    out.update(spec.extra)
    out["description"] = spec.description
    if not spec.supported:
        out[SUPPORTED] = False
    if spec.replaced_by:
        out["deprecated"] = True
        out[REPLACED_BY] = spec.replaced_by
    if spec.ignored:
        out["deprecated"] = True
    return out


def object_schema(fields: dict[str, FieldSpec], required: tuple[str, ...] = (),
                  scope: str | None = None, extra_config_ref: str | None = None
                  ) -> dict[str, Any]:
    """A closed object: the listed attributes plus comment keys, nothing else."""
    props: dict[str, Any] = {}
    for name, spec in fields.items():
        props[name] = field_schema(spec)
        if spec.kind == "extra_config" and extra_config_ref:
            props[name] = {"$ref": f"#/$defs/{extra_config_ref}",
                           "description": spec.description}
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    out["patternProperties"] = {COMMENT_KEY_PATTERN: True}
    out["additionalProperties"] = False
    if scope:
        out[SCOPE] = scope
    return out


def extra_config_schema(scope: str) -> dict[str, Any]:
    """The extra_config of one level: the namespaces accepted there, each with its schema."""
    props: dict[str, Any] = {}
    registered = registered_components()
    for name, ns in sorted(at_scope(scope).items()):
        if ns.supported and ns.fields is not None:
            sub = object_schema(ns.fields[scope], ns.required.get(scope, ()), scope)
            sub["description"] = f"{name} (implemented by tidegate)"
            sub[NAMESPACE] = name
        elif implemented(name, registered):
            sub = component_schema(name, scope)
        else:
            # Not implemented: checked as KrakenD's schema checks it, where tidegate wrote it.
            sub = dict(schema_of(current_name(name), scope) or {})
            sub.update({"description": f"{name}: a KrakenD component not supported by tidegate "
                                       "yet (accepted and ignored)", SUPPORTED: False,
                        NAMESPACE: name, SCOPE: scope})
        if ns.replaced_by:
            sub["deprecated"] = True
            sub[REPLACED_BY] = ns.replaced_by
        props[name] = sub
    return {"type": "object", "properties": props,
            "patternProperties": {COMMENT_KEY_PATTERN: True},
            "additionalProperties": False, KIND: "extra_config", SCOPE: scope}


def component_schema(name: str, scope: str) -> dict[str, Any]:
    """A registered component's own schema of its section (one source: the component)."""
    from tidegate.components import DEFAULT_REGISTRY

    component = DEFAULT_REGISTRY.get(current_name(name))  # a legacy name: its component's
    own = component.schema if component is not None else None
    own = own or schema_of(current_name(name), scope)
    sub: dict[str, Any] = dict(own) if own else {}
    sub.setdefault("description", f"{name} (implemented by a tidegate component)")
    sub[NAMESPACE] = name
    sub[SCOPE] = scope
    return sub


def build_schema() -> dict[str, Any]:
    """The whole built-in schema, as `tidegate schema` prints it and `check -l` uses it."""
    defs: dict[str, Any] = {
        "duration": {
            "description": "a Go duration such as \"2s\", \"150ms\", \"1m30s\" "
                           "(a bare integer is read as nanoseconds)",
            "anyOf": [{"type": "string", "pattern": DURATION_PATTERN},
                      {"type": "integer", "minimum": 0}],
            KIND: "duration",
        },
        "endpoint": object_schema(SCOPES["endpoint"], REQUIRED["endpoint"], "endpoint",
                                  "endpoint_extra_config"),
        "backend": object_schema(SCOPES["backend"], REQUIRED["backend"], "backend",
                                 "backend_extra_config"),
    }
    for scope in SCOPES:
        defs[f"{scope}_extra_config"] = extra_config_schema(scope)
    for name, fields in SHAPES.items():
        defs[name] = object_schema(fields, SHAPE_REQUIRED.get(name, ()))
    defs.update(SCHEMA_DEFS)
    root = object_schema(SCOPES["service"], REQUIRED["service"], "service",
                         "service_extra_config")
    return {
        "$schema": DIALECT,
        "title": f"tidegate {__version__} configuration "
                 f"(KrakenD {KRAKEND_COMPAT_VERSION}, version 3)",
        "description": "Everything tidegate accepts; generated from its configuration model "
                       "and component registry by `tidegate schema`.",
        **root,
        "$defs": defs,
    }


def namespace_names() -> list[str]:
    """Every namespace the schema knows (for tests and `-d` output)."""
    return sorted(NAMESPACES)
