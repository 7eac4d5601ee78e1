"""One configured Lua section at run time: sources, ``pre`` and ``post`` in one environment.

krakend-lua's order per request: a fresh VM, the helpers, every source joined into one chunk,
``pre``, the next stage, then (proxy and backend levels) ``post`` in the same VM. Errors become
krakend-lua's (``errors.go`` ToError): ``custom_error(msg, status[, type])`` an HTTP error with
that status; ``custom_error(msg)`` a plain one; any other error ``msg (file:Lline)``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from lupa import lua51

from tidegate.components.lua import pool
from tidegate.components.lua.config import LuaConfig, SourceFile, joined, locate_line, read_source
from tidegate.components.lua.engine import BudgetExceeded, Runtime, applied
from tidegate.components.lua.objects import IDLE_PROXY_REQUEST, IDLE_REQUEST
from tidegate.components.lua.pool import CustomError
from tidegate.messages import BackendFailure, ProxyRequest, ProxyResponse, Request

IDLE_PARAMS: dict[str, str] = {}

log = logging.getLogger("tidegate.lua")

_POSITION = re.compile(r"^([\w-]+):(\d+): (.*)$", re.S)


class LuaFailure(BackendFailure):
    """A script's error as the pipeline answers it (500 unless custom_error gave a status)."""

    def __init__(self, message: str, status: int = 500, content_type: str = "",
                 *, has_status: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.content_type = content_type
        self.has_status = has_status


class Script:
    """A compiled section bound to the place it serves (for its log lines)."""

    def __init__(self, cfg: LuaConfig, place: str) -> None:
        self.cfg = cfg
        self.place = place
        self.text = joined(cfg.sources)
        # the runtime's function that starts this section's runs, and what it was bound to
        self._starter_fn: Any = None
        self._live = cfg.live and bool(cfg.sources)  # sources re-read on every request
        self._live_sources = cfg.sources  # what the last run of a live section read
        self._bound: tuple[Any, ...] = (None, None, None, None)

    def run_ctx(self, req: Request, params: dict[str, str]) -> None:
        """The sources and ``pre`` in a fresh environment whose ``ctx`` is `req` (router and
        service level). Raises LuaFailure."""
        rt = pool.runtime(self.cfg.allow_open_libs)
        bound = self._bound
        if bound[0] is rt and bound[1] == "ctx" and not self._live:
            starter = self._starter_fn
        else:
            starter = self._starter(rt, "ctx")
        ctx = rt.objects.ctx
        ctx.req, ctx.params_ = req, params
        try:
            self._run(rt, starter)
        finally:
            ctx.req, ctx.params_ = IDLE_REQUEST, IDLE_PARAMS

    def start(self, req: ProxyRequest, backend: bool) -> tuple[Runtime, Any]:
        """The sources and ``pre`` in a fresh environment whose ``request`` is `req`: the
        state and the environment for `finish`. Raises LuaFailure."""
        rt = pool.runtime(self.cfg.allow_open_libs)
        starter = self._starter(rt, "request")
        request = rt.objects.request
        request.req, request.backend = req, backend
        try:
            return rt, self._run(rt, starter)
        finally:
            request.req = IDLE_PROXY_REQUEST

    def finish(self, rt: Runtime, env: Any, req: ProxyRequest, backend: bool,
               resp: ProxyResponse) -> None:
        """``post`` in `env`, with ``response`` bound to `resp` (and ``request`` to `req`
        again: other requests ran in between). Raises LuaFailure."""
        cfg = self.cfg
        if not cfg.post:
            return
        fn = self._compile(rt, "post-script", cfg.post, cfg.sources)
        objects = rt.objects
        objects.request.req, objects.request.backend = req, backend
        objects.response.bind(resp)
        try:
            self._run(rt, rt.finisher(env, cfg.max_instructions, cfg.max_time, fn))
        finally:
            objects.idle()

    def _starter(self, rt: Runtime, name: str) -> Any:
        """This section's run function in `rt` for `name` (made again when the state, or a
        live source, changed). Raises LuaFailure."""
        bound = self._bound
        if bound[0] is rt and bound[1] == name and not self._live:
            return self._starter_fn
        cfg = self.cfg
        sources = cfg.sources
        text = self.text
        if self._live:
            sources = self._live_sources = self._reread()
            text = joined(sources)
        first = self._compile(rt, "sources", text, sources) if text else None
        second = self._compile(rt, "pre-script", cfg.pre, sources) if cfg.pre else None
        # by identity: a new runtime, or a live source that changed, needs a new starter
        if bound[0] is not rt or bound[1] != name or bound[2] is not first \
                or bound[3] is not second:
            self._starter_fn = rt.starter(name, cfg.max_instructions, cfg.max_time, first,
                                          second, keep=bool(cfg.post))
            self._bound = (rt, name, first, second)
        return self._starter_fn

    def _run(self, rt: Runtime, starter: Any) -> Any:
        """One run of `starter` (the writes it kept applied): the environment if kept.
        Raises LuaFailure."""
        try:
            result = starter()
        except lua51.LuaError as exc:
            result = self._escaped(rt, exc)
        if len(result) > 3:
            applied(result)
        if not result[0]:
            raise _failure(result[1], self._live_sources if self._live else self.cfg.sources)
        return result[2]

    def _escaped(self, rt: Runtime, exc: lua51.LuaError) -> tuple[Any, ...]:
        """A run that ended outside its ``xpcall`` (the budget's stop, or an error in the
        error handler), as a failed run's result. Raises LuaFailure."""
        try:
            rt.after_error()
        except BudgetExceeded:
            raise self._stopped() from None
        except lua51.LuaMemoryError:
            raise self._out_of_memory() from None
        return False, str(exc), None

    def _reread(self) -> tuple[SourceFile, ...]:
        out = []
        for src in self.cfg.sources:
            try:
                out.append(SourceFile(src.name, read_source(src.name)))
            except (OSError, ValueError):
                raise LuaFailure(f"lua: unable to load required source {src.name}") from None
        return tuple(out)

    @staticmethod
    def _compile(rt: Runtime, name: str, code: str, sources: tuple[SourceFile, ...]) -> Any:
        try:
            return rt.compile(name, code)
        except SyntaxError as exc:  # only a live source can change after the check
            raise LuaFailure(_locate(str(exc), sources)) from None

    def _stopped(self) -> LuaFailure:
        log.error("%s[Lua] script stopped: it ran past its budget (%d instructions, %gs of CPU)",
                  self.place, self.cfg.max_instructions, self.cfg.max_time)
        return LuaFailure("lua: script stopped: budget exceeded")

    def _out_of_memory(self) -> LuaFailure:
        pool.discard(self.cfg.allow_open_libs)
        return LuaFailure("lua: script stopped: not enough memory")


def _failure(err: Any, sources: tuple[SourceFile, ...]) -> LuaFailure:
    """krakend-lua's ToError of what the script raised."""
    if isinstance(err, str):
        return LuaFailure(_locate(err, sources))
    if err is None or type(err).__name__ != "_LuaTable":
        return LuaFailure(str(err))
    exc = err["err"]
    if isinstance(exc, CustomError):
        if exc.status is None:
            return LuaFailure(exc.message)
        return LuaFailure(exc.message, exc.status, exc.content_type, has_status=True)
    message = str(exc)
    src, line = err["src"], err["line"]
    if isinstance(src, str) and isinstance(line, int) and line > 0:
        return LuaFailure(_with_place(message, src, line, sources))
    return LuaFailure(message)


def _locate(message: str, sources: tuple[SourceFile, ...]) -> str:
    """``pre-script:2: msg`` → ``msg (pre-script:L2)``; a line of the joined sources names
    its file."""
    m = _POSITION.match(message)
    if m is None:
        return message
    return _with_place(m.group(3), m.group(1), int(m.group(2)), sources)


def _with_place(message: str, chunk: str, line: int, sources: tuple[SourceFile, ...]) -> str:
    if chunk == "sources" and sources:
        index, line = locate_line(sources, line)
        chunk = os.path.basename(sources[index].name)
    return f"{message} ({chunk}:L{line})"
