"""Fail closed: a configuration that asks for protection tidegate cannot give is refused.

KrakenD users put authentication, CORS, rate limits, validation and TLS in the config and expect
every request to go through them. A gateway that ignores such a section serves the protected
endpoints unprotected while saying "Syntax OK!". So `run`, `check` and every reload refuse a
configuration that uses, anywhere, a protecting namespace or root setting tidegate does not
implement, with one located error per occurrence.

Protecting means: the namespace families ``auth/``, ``security/``, ``qos/``, ``validation/``,
``governance/``, ``plugin/``, Lua modifiers (their scripts can reject requests), EE's
``backend/http/client`` (client TLS), and any root setting listed in
``PROTECTING_ROOT_SETTINGS`` (none today: ``tls``, ``client_tls`` and ``plugin`` are
implemented). A namespace of those families that tidegate does not know at all
(a typo of ``auth/validator``) is refused too: it was meant to protect something. Telemetry,
documentation and the other namespaces protect nothing; they keep `run`'s warning.

The operator may opt out by name, for development only (``--allow-unimplemented NAME``); what
is served without its protection is then logged as a WARNING and shown on ``/__health``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.config.aliases import current_name
from tidegate.config.fields import COMMENT_KEY_PATTERN
from tidegate.config.namespaces import (
    NAMESPACES,
    PROTECTING_FAMILIES,
    protects,
    root_setting_protects,
)
from tidegate.config.namespaces import (
    PROTECTING_ROOT_SETTINGS as ROOT_SETTINGS,
)
from tidegate.errors import ConfigValueError, JsonPath
from tidegate.lint.implemented import implemented, registered_components
from tidegate.lint.linter import did_you_mean

_COMMENT = re.compile(COMMENT_KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class Unprotected:
    """One place where the configuration asks for a protection tidegate does not implement."""

    name: str  # the current namespace name, or a root setting
    written: str  # the key as written in the file (a legacy name, maybe)
    path: JsonPath

    def error(self) -> ConfigValueError:
        """The located error `run` and `check` report for it."""
        if self.name not in NAMESPACES and self.name not in ROOT_SETTINGS:
            family = next(f for f in PROTECTING_FAMILIES if self.name.startswith(f))
            return ConfigValueError(
                f"unknown namespace `{self.name}`{did_you_mean(self.name, NAMESPACES)} "
                f"refused: a `{family}` section asks for a protection, and requests would be "
                f"served without it", path=self.path)
        if self.name in ROOT_SETTINGS:
            what = f"root setting `{self.name}`"
        elif self.written != self.name:
            what = f"component `{self.written}` (`{self.name}`)"
        else:
            what = f"component `{self.name}`"
        return ConfigValueError(
            f"{what} is not implemented: requests would be served without it (to serve anyway, "
            f"for development only: --allow-unimplemented {self.name})", path=self.path)


def find_unprotected(data: Any) -> list[Unprotected]:
    """Every protecting section of a raw configuration that tidegate does not implement."""
    found: list[Unprotected] = []
    if not isinstance(data, Mapping):
        return found
    registered = registered_components()

    def extra(value: Any, path: JsonPath) -> None:
        # Read as the model reads it, weakly typed: a list of objects is one merged object.
        for section, where in _each(value, (*path, "extra_config")):
            for key in section:
                if not isinstance(key, str) or _COMMENT.match(key):
                    continue
                if protects(key) and not implemented(key, registered):
                    found.append(Unprotected(current_name(key), key, (*where, key)))

    for setting in ROOT_SETTINGS:
        if root_setting_protects(setting, data.get(setting)):
            found.append(Unprotected(setting, setting, (setting,)))
    extra(data.get("extra_config"), ())
    # One endpoint or backend object where a list is expected is a list of one (weak typing).
    for ep, ep_path in _each(data.get("endpoints"), ("endpoints",)):
        extra(ep.get("extra_config"), ep_path)
        for be, be_path in _each(ep.get("backend"), (*ep_path, "backend")):
            extra(be.get("extra_config"), be_path)
    return found


def _each(value: Any, path: JsonPath) -> list[tuple[Mapping[str, Any], JsonPath]]:
    """The objects of a list (or the object itself, lifted), each with its JSON path."""
    if isinstance(value, Mapping):
        return [(value, path)]
    if isinstance(value, list):
        return [(item, (*path, i)) for i, item in enumerate(value) if isinstance(item, Mapping)]
    return []


def split_allowed(found: Iterable[Unprotected], allowed: frozenset[str]
                  ) -> tuple[list[ConfigValueError], tuple[str, ...]]:
    """(errors for what is not allowed, sorted names served unprotected by the opt-out)."""
    errors = [u.error() for u in found if u.name not in allowed]
    opted_out = sorted({u.name for u in found if u.name in allowed})
    return errors, tuple(opted_out)


class UnknownName(ValueError):
    """An --allow-unimplemented name that is neither a namespace nor a root setting."""


def parse_allowed(values: Iterable[str]) -> frozenset[str]:
    """The opt-out names from the flag (repeatable) and the environment (comma-separated),
    legacy namespace names mapped to current ones; an unknown name is a usage error."""
    names: set[str] = set()
    for value in values:
        for raw in value.split(","):
            name = raw.strip()
            if not name:
                continue
            if name not in NAMESPACES and name not in ROOT_SETTINGS:
                known = [*ROOT_SETTINGS, *NAMESPACES]
                roots = f", or one of {', '.join(ROOT_SETTINGS)}" if ROOT_SETTINGS else ""
                raise UnknownName(f"--allow-unimplemented: unknown name `{name}`"
                                  f"{did_you_mean(name, known)} (a namespace such as "
                                  f"`auth/validator`{roots})")
            names.add(current_name(name))
    return frozenset(names)
