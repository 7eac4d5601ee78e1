"""From a path (or nothing) to a validated configuration: the pure part of every (re)load.

Stages: flexible-config render (``FC_ENABLE``) → parse in the file's format → ``KRAKEND_*``
overrides → typed model. Any failure raises a `ConfigError` that names the file and position.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidegate.config import sources
from tidegate.config.durations import DurationError, parse_duration
from tidegate.config.model import ServiceConfig, build_service
from tidegate.errors import ConfigError, ConfigErrors, ConfigValueError

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
    if _flexible_enabled(env):
        for var in ("FC_SETTINGS", "FC_PARTIALS", "FC_TEMPLATES"):
            if env.get(var):
                paths.append(os.path.abspath(env[var]))
        if env.get("FC_OUT"):
            ignore.append(os.path.abspath(env["FC_OUT"]))
    return sorted(set(paths)), ignore


def _flexible_enabled(env: Mapping[str, str]) -> bool:
    # KrakenD documents that any value, even "0", enables flexible configuration.
    return "FC_ENABLE" in env


def load_config(path: str | None, env: Mapping[str, str] | None = None, *,
                port: int | None = None) -> LoadedConfig:
    """Render, parse, override and type-check a configuration file (or the built-in default)."""
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
        if _flexible_enabled(env):
            from tidegate.gotemplate.flexible import render_flexible_config

            rendered = render_flexible_config(path, env)
            doc = sources.parse_text(rendered.text, path, sources.format_for(_inner_name(path)))
            watch = tuple(sorted({*watch, *rendered.watch_dirs}))
            out = env.get("FC_OUT")
            ignore = (str(Path(out).resolve()),) if out else ()
        else:
            doc = sources.load_file(path)
        data = doc.data
    try:
        data = apply_env_overrides(data, env)
        if port is not None:
            data["port"] = port  # -p wins over the file and the environment
        service = build_service(data)
    except ConfigError as exc:
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
    if isinstance(exc, ConfigErrors):
        exc.file, exc.line, exc.col = errors[0].file, errors[0].line, errors[0].col
    return exc


# --- KRAKEND_* environment overrides ---------------------------------------------------------

_PREFIX = "KRAKEND_"
# Root keys whose value is a list of strings: a variable gives a one-element list.
_LIST_KEYS = frozenset({"host"})
_BOOL_KEYS = frozenset({"debug_endpoint", "echo_endpoint", "disable_rest",
                        "disable_keep_alives", "disable_compression"})
_INT_KEYS = frozenset({"port", "version", "max_idle_connections", "max_header_bytes",
                       "max_idle_connections_per_host"})
_OBJECT_KEYS = frozenset({"extra_config", "endpoints", "tls", "async_agent"})


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
            return int(raw, 0)
        except ValueError:
            raise ConfigValueError(f"{where}: expected an integer, got {raw!r}",
                                   path=(key,)) from None
    if key.endswith("timeout") or key.endswith("_ttl"):
        try:
            parse_duration(raw)
        except DurationError as exc:
            raise ConfigValueError(f"{where}: {exc}", path=(key,)) from None
    return raw
