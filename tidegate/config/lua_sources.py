"""The Lua files the ``modifier/lua-*`` sections name: followed by ``--watch`` and hashed with
the configuration (through `tidegate.config.tls.attach_files`), so that saving a script reloads
it, as saving the configuration does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tidegate.errors import JsonPath

NAMESPACES = ("modifier/lua-endpoint", "modifier/lua-proxy", "modifier/lua-backend",
              # KrakenD 1's names, still accepted (`config.aliases`)
              "github.com/devopsfaith/krakend-lua/router",
              "github.com/devopsfaith/krakend-lua/proxy",
              "github.com/devopsfaith/krakend-lua/proxy/backend")


def _extra_configs(data: Mapping[str, Any]) -> Iterator[tuple[JsonPath, Any]]:
    yield ("extra_config",), data.get("extra_config")
    endpoints = data.get("endpoints")
    for i, ep in enumerate(endpoints if isinstance(endpoints, list) else ()):
        if not isinstance(ep, Mapping):
            continue
        yield ("endpoints", i, "extra_config"), ep.get("extra_config")
        backends = ep.get("backend")
        for j, be in enumerate(backends if isinstance(backends, list) else ()):
            if isinstance(be, Mapping):
                yield ("endpoints", i, "backend", j, "extra_config"), be.get("extra_config")


def lua_sources(data: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """(JSON path of the name, file name) of every Lua source of the configuration."""
    out: list[tuple[JsonPath, str]] = []
    for path, extra in _extra_configs(data):
        if not isinstance(extra, Mapping):
            continue
        for ns in NAMESPACES:
            section = extra.get(ns)
            if not isinstance(section, Mapping) or not isinstance(section.get("sources"), list):
                continue
            out += [((*path, ns, "sources", k), name)
                    for k, name in enumerate(section["sources"]) if isinstance(name, str) and name]
    return out
