"""``security/bot-detector``: krakend-botdetector, at the root and in endpoints.

The User-Agent is checked in KrakenD's order: empty (a bot only with
``empty_user_agent_is_bot``), ``allow`` (exact: passes), ``deny`` (exact: refused), then the
first of ``patterns`` found anywhere in it (Go ``MatchString``: unanchored) refuses. A refusal is
``403`` with no body, as gin's ``AbortWithStatus``. ``cache_size`` > 0 keeps that many verdicts
(LRU), as KrakenD does.

Patterns are Go regular expressions, compiled with RE2 (google-re2): the syntax and the
linear-time matching are Go's, Python's backtracking ``re`` is not. A pattern RE2 refuses is a
configuration error at its position; KrakenD logs a warning and serves with the detector off.

At the root the detector sits inside CORS and ``security/http``, and ``/__health`` is not
checked (krakend-ce registers it before the engine's middlewares); 404s and 405s are.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no stubs

from tidegate.components.seam import Build, Component, Level
from tidegate.components.section import Section
from tidegate.errors import JsonPath
from tidegate.messages import EndpointHandler, Request, Response, ServiceHandler

NAMESPACE = "security/bot-detector"
HEALTH_PATH = "/__health"  # not behind the root detector, as in krakend-ce

log = logging.getLogger("tidegate.botdetector")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is reported as a config error, not on stderr


@dataclass(frozen=True, slots=True)
class BotConfig:
    """The section as krakend-botdetector reads it."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    cache_size: int = 0
    empty_user_agent_is_bot: bool = False


def compile_pattern(pattern: str) -> Any:
    """A Go regexp compiled by RE2; ValueError with RE2's reason when Go would refuse it."""
    if "\\C" in pattern.replace("\\\\", ""):
        raise ValueError("invalid escape sequence: `\\C`")  # RE2 C++ has it, Go does not
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def parse(raw: Any, path: JsonPath) -> BotConfig:
    """The typed section; every pattern is compiled here so that `check` refuses a bad one."""
    s = Section(raw, path, NAMESPACE)
    patterns = s.strings("patterns")
    for i, pattern in enumerate(patterns):
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise s.error(f"patterns[{i}] is not a valid Go (RE2) regular expression: {exc}",
                          "patterns", i) from None
    return BotConfig(
        allow=s.strings("allow"),
        deny=s.strings("deny"),
        patterns=patterns,
        cache_size=s.integer("cache_size", 0, minimum=0),
        empty_user_agent_is_bot=s.bool("empty_user_agent_is_bot"),
    )


class Detector:
    """One section compiled: ``is_bot(user_agent)``."""

    def __init__(self, cfg: BotConfig) -> None:
        self.allow = frozenset(cfg.allow)
        self.deny = frozenset(cfg.deny)
        self.patterns = tuple(compile_pattern(p) for p in cfg.patterns)
        self.empty_is_bot = cfg.empty_user_agent_is_bot
        self.cache_size = cfg.cache_size
        self._cache: OrderedDict[str, bool] = OrderedDict()

    def _check(self, ua: str) -> bool:
        if not ua:
            return self.empty_is_bot
        if ua in self.allow:
            return False
        if ua in self.deny:
            return True
        return any(p.search(ua) is not None for p in self.patterns)

    def is_bot(self, ua: str) -> bool:
        """The verdict for a User-Agent (first header value; absent = empty)."""
        if not self.cache_size:
            return self._check(ua)
        cache = self._cache
        verdict = cache.get(ua)
        if verdict is not None:
            cache.move_to_end(ua)
            return verdict
        verdict = self._check(ua)
        cache[ua] = verdict
        if len(cache) > self.cache_size:
            cache.popitem(last=False)
        return verdict


def _rejected() -> Response:
    # gin AbortWithStatus(403): no body, no Content-Type, none of the endpoint's headers.
    return Response(403)


def service_stage(detector: Detector, inner: ServiceHandler) -> ServiceHandler:
    """The root section: every request but ``GET /__health``."""

    async def bots(req: Request) -> Response:
        if detector.is_bot(req.header("user-agent") or "") and not (
                req.path == HEALTH_PATH and req.method == "GET"):
            log.error("[SERVICE: Gin][Botdetector] bot rejected")
            return _rejected()
        return await inner(req)

    return bots


def endpoint_stage(detector: Detector, inner: EndpointHandler, endpoint: str) -> EndpointHandler:
    """An endpoint's section (krakend-ce's handler factory, before JWT validation)."""
    prefix = f"[ENDPOINT: {endpoint}][Botdetector]"

    async def bots(req: Request, params: dict[str, str]) -> Response:
        if detector.is_bot(req.header("user-agent") or ""):
            log.error("%s bot rejected", prefix)
            return _rejected()
        return await inner(req, params)

    return bots


_STRINGS = {"type": "array", "items": {"type": "string"}}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "reject bots by User-Agent (403), as krakend-botdetector",
    "properties": {
        "allow": {**_STRINGS, "description": "User-Agents let through (exact match)"},
        "deny": {**_STRINGS, "description": "User-Agents rejected (exact match)"},
        "patterns": {**_STRINGS, "description": "Go (RE2) regular expressions; a User-Agent "
                     "containing a match is rejected"},
        "cache_size": {"type": "integer", "minimum": 0,
                       "description": "verdicts kept in an LRU cache (0: none)"},
        "empty_user_agent_is_bot": {"type": "boolean"},
    },
    "minProperties": 1,
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


def build(ctx: Build[BotConfig], inner: Any) -> Any:
    """The root section around routing, or an endpoint's around its handler."""
    detector = Detector(ctx.config)
    if ctx.level is Level.SERVICE:
        return service_stage(detector, inner)
    assert ctx.endpoint is not None
    return endpoint_stage(detector, inner, ctx.endpoint.endpoint)


# One registration per level (components/catalog.py): at the root inside CORS and
# security/http (and a root Lua); in an endpoint outside JWT validation (krakend-ce checks bots
# before tokens).
COMPONENTS: tuple[Component[BotConfig], ...] = (
    Component(NAMESPACE, frozenset({Level.SERVICE}), build, parse, SCHEMA, order=10),
    Component(NAMESPACE, frozenset({Level.ROUTER}), build, parse, SCHEMA, order=60),
)
