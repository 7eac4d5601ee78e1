"""From a path (or nothing) to a validated configuration: the pure part of every (re)load.

Stages: flexible-config render (``FC_ENABLE``) → parse in the file's format → ``KRAKEND_*``
overrides → typed model. Any failure raises a `ConfigError` that names the file and position.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidegate.config import sources
from tidegate.config.durations import DurationError, parse_duration
from tidegate.config.fields import ROOT_FIELDS
from tidegate.config.flexible import FlexibleEnv
from tidegate.config.model import ServiceConfig, build_service
from tidegate.config.tls import attach_files, watched_files
from tidegate.config.tls_context import check_tls
from tidegate.errors import ConfigError, ConfigErrors, ConfigSyntaxError, ConfigValueError

if TYPE_CHECKING:
    from tidegate.config.flexible import RenderedConfig

DEFAULT_CONFIG_NAME = "<built-in default>"


@dataclass(frozen=True)
class LoadedConfig:
    """A configuration that passed every check, with what the watcher must watch."""

    service: ServiceConfig
    data: dict[str, Any]
    source: str
    watch_paths: tuple[str, ...]
    ignore_paths: tuple[str, ...]
    document: sources.Document | None = None


def default_config(port: int = 8080) -> dict[str, Any]:
    """The built-in demo: `/__health` plus an endpoint that aggregates two debug backends."""
    self_host = f"http://127.0.0.1:{port}"
    return {
        "version": 3,
        "name": "tidegate demo",
        "port": port,
        "debug_endpoint": True,
        "echo_endpoint": True,
        "endpoints": [
            {
                "endpoint": "/demo",
                "backend": [
                    {"host": [self_host], "url_pattern": "/__debug/first", "group": "first"},
                    {"host": [self_host], "url_pattern": "/__debug/second", "group": "second"},
                ],
            },
        ],
    }


def watch_targets(path: str | None, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(paths to watch, files to ignore) for a configuration: known before it is loaded.

    The config file, and with flexible configuration the settings, partials and templates
    folders: as the user gave them, not what they resolve to today (a Kubernetes ConfigMap
    swaps the folder behind a symlink on every update). The ``FC_OUT`` file is ignored, so
    writing it cannot cause a reload.
    """
    if path is None:
        return [], []
    paths = [os.path.abspath(path)]
    ignore: list[str] = []
    fc = FlexibleEnv.read(env)
    if fc.enabled:
        paths += [os.path.abspath(d) for d in fc.folders]
        if fc.out:
            ignore.append(os.path.abspath(fc.out))
    return sorted(set(paths)), ignore


def load_config(path: str | None, env: Mapping[str, str] | None = None, *,
                port: int | None = None, tls_files: bool = True) -> LoadedConfig:
    """Render, parse, override and type-check a configuration file (or the built-in default).

    With `tls_files` (what serving needs) the certificates, keys and CA files the `tls` and
    `client_tls` sections name are read and checked too; `audit` looks at the text only.
    """
    env = os.environ if env is None else env
    if path is None:
        data = default_config(port or 8080)
        doc = None
        source = DEFAULT_CONFIG_NAME
        watch: tuple[str, ...] = ()
        ignore: tuple[str, ...] = ()
    else:
        source = path
        watch = (str(Path(path).resolve().parent),)
        ignore = ()
        fc = FlexibleEnv.read(env)
        if fc.enabled:
            doc = load_flexible(path, env)
            watch = tuple(sorted({*watch, *doc.rendered.watch_dirs}))
            ignore = (str(Path(fc.out).resolve()),) if fc.out else ()
        else:
            doc = sources.load_file(path)
        data = doc.data
    try:
        data = apply_env_overrides(data, env)
        if port is not None:
            data["port"] = port  # -p wins over the file and the environment
        errors = []
        if tls_files:
            data = attach_files(data)  # certificates and keys: validated and hashed with it
            errors = check_tls(data)
        try:
            service = build_service(data)
        except ConfigErrors as exc:
            raise ConfigErrors([*exc.errors, *errors]) from None
        if errors:
            raise ConfigErrors(errors)
    except ConfigError as exc:
        if tls_files and isinstance(data, dict):
            exc.named_files = tuple(watched_files(data))
        raise locate_error(exc, doc) from None
    return LoadedConfig(service, data, source, watch, ignore, doc)


def _inner_name(path: str) -> str:
    """``krakend.json.tmpl`` is parsed as JSON; a plain ``krakend.tmpl`` as JSON too."""
    name = Path(path).name
    stem, ext = os.path.splitext(name)
    if ext.lower() in (".tmpl", ".tpl", ".template"):
        inner = os.path.splitext(stem)[1]
        return stem if inner else stem + ".json"
    return name


def locate_error(exc: ConfigError, doc: sources.Document | None) -> ConfigError:
    """Add file and line:column to value errors whose JSON path is known in the document."""
    if doc is None:
        return exc
    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    for err in errors:
        if err.file is None:
            err.file = doc.file
            if err.path and err.line is None:
                pos = doc.locate(err.path)
                if pos is not None:
                    err.line, err.col = pos
            if isinstance(doc, RenderedDocument):
                explain_rendered(err, doc.rendered)
    if isinstance(exc, ConfigErrors):
        first = errors[0]
        exc.file, exc.line, exc.col, exc.message = first.file, first.line, first.col, first.message
    return exc


# --- flexible configuration: errors found in the rendered text ---------------------------


@dataclass(frozen=True)
class RenderedDocument(sources.Document):
    """A document parsed from a rendered template: its positions are those of the rendered
    text, so `locate_error` traces them back to the template text that wrote them."""

    rendered: RenderedConfig = field(kw_only=True, repr=False, compare=False)


def load_flexible(path: str, env: Mapping[str, str]) -> RenderedDocument:
    """Render (FC_* variables) and parse a flexible configuration; an error positioned in the
    rendered text is traced to the template text that wrote it."""
    from tidegate.config.flexible import render_flexible_config

    rendered = render_flexible_config(path, env, locate_json=_json_syntax_error)
    try:
        doc = sources.parse_text(rendered.text, path, sources.format_for(_inner_name(path)))
    except ConfigError as exc:
        raise explain_rendered(exc, rendered) from None
    return RenderedDocument(doc.data, doc.file, doc.fmt, doc._locator, rendered=rendered)


def _json_syntax_error(path: str, raw: bytes) -> ConfigError | None:
    """A settings file's JSON syntax error, located as for a configuration file."""
    if raw.startswith(b"\xef\xbb\xbf"):  # a configuration may start with a BOM, Go's JSON not
        return ConfigSyntaxError("invalid character '\u00ef' looking for beginning of value "
                                 "(a byte order mark)", file=path, line=1, col=1)
    text = raw.decode("utf-8", "replace")
    try:
        sources.parse_text(text, path, "json")
    except ConfigSyntaxError as exc:
        return exc
    # Parsed, yet Go refused it: a number beyond float64 whose key is given again later (the
    # parser kept only the last value). Go reads each one.
    for m in _STRING_OR_NUMBER.finditer(text):
        if m.group(1) and math.isinf(float(m.group(1))):
            line, col = sources.line_col(text, m.start(1))
            return ConfigSyntaxError(f"json: cannot unmarshal number {m.group(1)} into Go value "
                                     "of type float64", file=path, line=line, col=col)
    return None


_STRING_OR_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def explain_rendered(err: ConfigError, rendered: RenderedConfig) -> ConfigError:
    """Re-point an error positioned in the rendered text at the template text that wrote it.

    The rendered line:col is only meaningful in the rendered text, so the message keeps it
    (naming FC_OUT, where that text can be opened, or quoting the line), while the error's own
    file:line:col become the template (or partial) position it was traced to; the template
    file without a line when it cannot be traced.
    """
    if err.file != rendered.source_name or err.line is None:
        return err
    text = rendered.text
    skip = 1 if text.startswith("\ufeff") else 0  # the parser never saw the BOM
    col = err.col or 1
    where = f"line {err.line}:{col}" if err.col else f"line {err.line}"
    where = f"{where} of the rendered output"
    offset = _offset(text, skip, err.line, col)
    source = rendered.source_of(offset) if offset is not None else None
    if source is not None and source.action:
        where += f", produced by {source.action}"
    if source is not None and source.included_at is not None:
        where += f", included by {source.included_at.action} at {source.included_at}"
    if rendered.out_path:
        where += f", written to FC_OUT={rendered.out_path}"
    else:
        near = sources.excerpt(text[skip:], err.line, col)
        if near and f"`{near}`" not in err.message:
            where += f": `{near}`"
    err.message = f"{err.message} ({where})"
    if source is None:
        err.line = err.col = None
    else:
        err.file, err.line, err.col = source.file, source.line, source.col
    return err


def _offset(text: str, skip: int, line: int, col: int) -> int | None:
    """The character offset of a 1-based line:col, or None if the text has no such line."""
    start = skip
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    return start + col - 1


# --- KRAKEND_* environment overrides ---------------------------------------------------------

_PREFIX = "KRAKEND_"


def _root_keys(*kinds: str) -> frozenset[str]:
    """Root attributes of these kinds in the field table (the schema's and lint's)."""
    return frozenset(name for name, spec in ROOT_FIELDS.items() if spec.kind in kinds)


# What a variable's text becomes, by the kind of the root attribute it overrides.
_LIST_KEYS = _root_keys("strings")  # a one-element list
_BOOL_KEYS = _root_keys("boolean")
_INT_KEYS = _root_keys("integer") | {"version"}
_OBJECT_KEYS = _root_keys("object", "array", "extra_config", "shape")  # not from a string
_DURATION_KEYS = _root_keys("duration")


def apply_env_overrides(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``KRAKEND_PORT=9000`` overrides the root key ``port`` (as KrakenD's koanf loader does)."""
    out = dict(data)
    for name, raw in env.items():
        if not name.startswith(_PREFIX) or len(name) == len(_PREFIX):
            continue
        key = name[len(_PREFIX):].lower()
        out[key] = _typed_override(key, raw, data.get(key), name)
    return out


def _typed_override(key: str, raw: str, current: Any, var: str) -> Any:
    where = f"environment variable {var}"
    if key in _OBJECT_KEYS:
        raise ConfigValueError(f"{where}: {key!r} is an object and cannot be set from a string",
                               path=(key,))
    if key in _LIST_KEYS or isinstance(current, list):
        return [raw]
    if key in _BOOL_KEYS or isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "t", "true", "yes"):
            return True
        if lowered in ("", "0", "f", "false", "no"):
            return False
        raise ConfigValueError(f"{where}: expected a boolean, got {raw!r}", path=(key,))
    if key in _INT_KEYS or (isinstance(current, int) and not isinstance(current, bool)):
        try:
            value = int(raw, 0)
        except ValueError:
            raise ConfigValueError(f"{where}: expected an integer, got {raw!r}",
                                   path=(key,)) from None
        if not sources.INT_MIN <= value <= sources.INT_MAX:  # as for the file's own integers
            raise ConfigValueError(f"{where}: integer out of range: {raw}", path=(key,))
        return value
    if key in _DURATION_KEYS:
        try:
            parse_duration(raw)
        except DurationError as exc:
            raise ConfigValueError(f"{where}: {exc}", path=(key,)) from None
    return raw
