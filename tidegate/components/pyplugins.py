"""KrakenD's plugin namespaces served by Python plugins (`tidegate.plugins` says how to write one).

``plugin/http-server`` wraps the service before routing (names in list order: the last one
is outermost, as in KrakenD); ``plugin/http-client`` replaces a backend's HTTP executor;
``plugin/req-resp-modifier`` changes the request before the backends and the answer after them,
at endpoint level (around the merge) and backend level (outside the backend's components).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.config.component_schemas import schema_of
from tidegate.errors import ConfigValueError
from tidegate.messages import (
    BackendProxy,
    Exchange,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    ServiceHandler,
)
from tidegate.plugins import HttpClientPlugin, HttpServerPlugin, Modifier, ModifierPlugin

SERVER, CLIENT, MODIFIER = "plugin/http-server", "plugin/http-client", "plugin/req-resp-modifier"
ENTRY_POINT_GROUP = "tidegate.plugins"

_loaded: dict[tuple[str, int, int], Any] = {}  # (file, mtime, size) -> module: code cache


@dataclass(frozen=True, slots=True)
class PluginSection:
    """The names in the order given, each with its own settings."""

    names: tuple[str, ...]
    settings: tuple[Mapping[str, Any], ...]
    path: JsonPath
    listed: bool  # `name` was a list (errors point into it)


def parse(raw: Any, path: JsonPath) -> PluginSection:
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    names = raw.get("name")
    listed = isinstance(names, list)
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n for n in names):
        raise ConfigValueError("name: expected the plugin's name (or a list of names)",
                               path=(*path, "name"))
    settings = []
    for name in names:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigValueError(f"{name}: a plugin's settings must be an object",
                                   path=(*path, name))
        settings.append(value)
    return PluginSection(tuple(names), tuple(settings), path, listed)


def _folder(ctx: Build[Any]) -> str | None:
    root = ctx.service.raw.get("plugin")
    folder = root.get("folder") if isinstance(root, Mapping) else None
    return folder if isinstance(folder, str) and folder else None


def _from_folder(folder: str, name: str) -> Any:
    for candidate in (os.path.join(folder, f"{name}.py"),
                      os.path.join(folder, name, "__init__.py")):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        key = (candidate, st.st_mtime_ns, st.st_size)
        module = _loaded.get(key)
        if module is None:
            unique = f"tidegate_plugin_{abs(hash(key))}"
            spec = importlib.util.spec_from_file_location(unique, candidate)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
            _loaded[key] = module
        return getattr(module, "plugin", None)
    return None


def find(name: str, folder: str | None) -> Any:
    """The plugin object registered as `name` (entry point first, then the folder)."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    return _from_folder(folder, name) if folder else None


PluginKind = type[HttpServerPlugin] | type[HttpClientPlugin] | type[ModifierPlugin]


def load(ctx: Build[PluginSection], kind: PluginKind) -> list[tuple[Any, Mapping[str, Any]]]:
    """Each named plugin of this section, bound to its settings as a function that calls its
    ``build`` (errors it raises become located config errors)."""
    section = ctx.config
    folder = _folder(ctx)
    out = []
    for i, (name, settings) in enumerate(zip(section.names, section.settings, strict=True)):
        where = (*section.path, "name", i) if section.listed else (*section.path, "name")
        try:
            plugin: Any = find(name, folder)
        except Exception as exc:  # a plugin that fails to import is the config's problem
            raise ConfigValueError(f"plugin {name!r} failed to load: {exc}",
                                   path=where) from None
        if plugin is None:
            looked = f" and no {name}.py in the plugin folder {folder!r}" if folder else \
                " (and no root `plugin.folder` to look in)"
            raise ConfigValueError(
                f"plugin {name!r} is not installed: no entry point {name!r} in group "
                f"{ENTRY_POINT_GROUP!r}{looked}; Go .so plugins cannot run in tidegate",
                path=where)
        if not isinstance(plugin, kind):
            raise ConfigValueError(f"plugin {name!r} is a {type(plugin).__name__}, not the "
                                   f"{kind.__name__} that {ctx.namespace} needs", path=where)
        out.append((_located(plugin.build, name, where), settings))
    return out


def _located(build: Any, name: str, where: JsonPath) -> Any:
    def call(*args: Any) -> Any:
        try:
            return build(*args)
        except Exception as exc:  # the plugin refused its settings
            raise ConfigValueError(f"plugin {name!r}: {exc}", path=where) from None
    return call


def build_server(ctx: Build[PluginSection], nxt: ServiceHandler) -> ServiceHandler:
    stage = nxt
    for build, settings in load(ctx, HttpServerPlugin):
        stage = build(settings, stage)
    return stage


def build_client(ctx: Build[PluginSection], nxt: Exchange) -> Exchange:
    (build, settings), *rest = load(ctx, HttpClientPlugin)
    if rest:
        raise ctx.error("only one http-client plugin can serve a backend", "name")
    exchange: Exchange = build(settings, nxt)
    return exchange


def build_modifier(ctx: Build[PluginSection], nxt: Any) -> Any:
    modifiers: list[Modifier] = [build(settings) for build, settings in load(ctx, ModifierPlugin)]
    if ctx.level is Level.BACKEND:
        return _backend_modifiers(modifiers, nxt)
    return _proxy_modifiers(modifiers, nxt)


def _backend_modifiers(modifiers: list[Modifier], nxt: BackendProxy) -> BackendProxy:
    async def modified(req: ProxyRequest) -> ProxyResponse:
        for m in modifiers:
            m.request(req)
        resp = await nxt(req)
        for m in modifiers:
            m.response(resp)
        return resp
    return modified


def _proxy_modifiers(modifiers: list[Modifier], nxt: Proxy) -> Proxy:
    async def modified(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        try:
            for m in modifiers:
                m.request(req)
        except Exception as exc:
            return None, exc
        resp, err = await nxt(req)
        if resp is not None:
            try:
                for m in modifiers:
                    m.response(resp)
            except Exception as exc:
                return None, exc
        return resp, err
    return modified


COMPONENTS: tuple[Component[Any], ...] = (
    Component(SERVER, frozenset({Level.SERVICE}), build_server, parse=parse,
              schema=schema_of(SERVER), order=60),
    Component(CLIENT, frozenset({Level.CLIENT}), build_client, parse=parse,
              schema=schema_of(CLIENT), order=5),
    Component(MODIFIER, frozenset({Level.PROXY, Level.BACKEND}), build_modifier, parse=parse,
              schema=schema_of(MODIFIER), order=90),
)
