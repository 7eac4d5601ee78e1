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
from tidegate.components.lua.engine import BudgetExceeded, Runtime
from tidegate.components.lua.pool import CustomError
from tidegate.messages import BackendFailure

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
        self._starter: Any = None
        self._live = cfg.live and bool(cfg.sources)  # sources re-read on every request
        self._bound: tuple[Any, ...] = (None, None, None, None)

    def start(self, name: str, obj: Any) -> tuple[Runtime, Any]:
        """A fresh environment with `name` (``ctx`` or ``request``) bound to `obj`, after the
        sources and ``pre`` ran in it. Raises LuaFailure."""
        cfg = self.cfg
        rt = pool.runtime(cfg.allow_open_libs)
        sources = cfg.sources
        bound = self._bound
        if bound[0] is not rt or bound[1] != name or self._live:
            text = self.text
            if self._live:
                sources = self._reread()
                text = joined(sources)
            first = self._compile(rt, "sources", text, sources) if text else None
            second = self._compile(rt, "pre-script", cfg.pre, sources) if cfg.pre else None
            # by identity: a new runtime, or a live source that changed, needs a new starter
            if bound[0] is not rt or bound[1] != name or bound[2] is not first \
                    or bound[3] is not second:
                self._starter = rt.starter(name, cfg.max_instructions, cfg.max_time, first,
                                           second, keep=bool(cfg.post))
                self._bound = (rt, name, first, second)
        try:
            ok, err, env = rt.run(self._starter, obj, bool(cfg.post))
        except BudgetExceeded:
            raise self._stopped() from None
        except lua51.LuaMemoryError:
            raise self._out_of_memory() from None
        if not ok:
            raise _failure(err, sources)
        return rt, env

    def finish(self, rt: Runtime, env: Any, response: Any) -> None:
        """``post`` with ``response`` bound to `response`. Raises LuaFailure."""
        cfg = self.cfg
        if not cfg.post:
            return
        fn = self._compile(rt, "post-script", cfg.post, cfg.sources)
        try:
            ok, err = rt.finish(env, response, cfg.max_instructions, cfg.max_time, fn)
        except BudgetExceeded:
            raise self._stopped() from None
        except lua51.LuaMemoryError:
            raise self._out_of_memory() from None
        if not ok:
            raise _failure(err, cfg.sources)

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
