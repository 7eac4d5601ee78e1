"""Lua runtimes: compiled chunks, a fresh environment per request, an instruction budget.

krakend-lua builds a new gopher-lua VM per request (Lua 5.1). A new C Lua state costs ~50 µs,
so tidegate keeps one long-lived state per worker and flavour (with or without the standard
libraries) and gives every request what a new VM gives: a fresh global table. Chunks are
compiled once per state (``compile`` caches them by source); each run re-binds the chunk to the
request's environment with ``setfenv``, and every function a script defines captures that
environment, so nothing a script stores survives its request. A Lua call never awaits, so one
state per flavour serves the whole event loop (the "pool" is one state per flavour per worker).

Sandbox: scripts see only their environment. Without ``allow_open_libs`` it holds krakend-lua's
helpers and nothing else (no ``string``, ``pairs`` or ``tostring``, as gopher-lua with
SkipOpenLibs; strings have no metatable). With it, every library table is a per-request copy.
Python objects expose only the listed methods (the attribute filter refuses the rest).

Budget (beyond KrakenD): a count hook runs every 1000 VM instructions; past the instruction
budget or the CPU-time budget it stops the script, and from then on raises at *every*
instruction, so a ``pcall`` in the script cannot swallow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lupa.lua51 as lua51

from tidegate.components.lua.objects import OBJECT_METHODS
from tidegate.components.lua.values import METHODS, NIL, RENAMED

STEP = 1000          # instructions between two budget checks
CACHE_LIMIT = 512    # compiled chunks kept per state
MEMORY_LIMIT = 256 << 20

_SETUP = r"""
local setfenv, xpcall, getinfo = setfenv, xpcall, debug.getinfo
local sethook, clock = debug.sethook, os.clock
local type, pairs, error, setmetatable, loadstring = type, pairs, error, setmetatable, loadstring
local state, api = ...
local STEP = state.step

local function hook()
  state.used = state.used + STEP
  if state.stopped or state.used > state.budget or clock() > state.deadline then
    state.stopped = true
    sethook(hook, "", 1)
    error(state, 0)
  end
end
state.hook = hook

-- errors that are not strings (Python exceptions from the helpers): where they were raised
local function handler(e)
  if type(e) == "string" then return e end
  local info = getinfo(3, "Sl")
  if info == nil then return {err = e} end
  return {err = e, src = info.short_src, line = info.currentline}
end

function state.run(fn, env)
  state.deadline = clock() + state.max_time
  setfenv(fn, env)
  return xpcall(fn, handler)
end

function state.compile(src, name)
  return loadstring(src, "=" .. name)
end

local function loader(obj)
  return {load = function() return obj end}
end
state.loader = loader

local function helpers(env)
  env.luaTable = {new = api.table_new}
  env.luaList = {new = api.list_new}
  env.luaNil = {new = api.nil_new}
  env.custom_error = api.custom_error
  env.http_response = {new = api.http_new}
  return env
end

function state.bare_env(name, obj)
  local env = helpers({})
  env[name] = loader(obj)
  return env
end

local libs = {}
for _, name in pairs({"string", "table", "math", "os", "io", "coroutine", "debug", "package"}) do
  libs[name] = _G[name]
end
local base = {}
for k, v in pairs(_G) do
  if type(v) == "function" or k == "_VERSION" then base[k] = v end
end
local tostring_, number_text = tostring, api.number_text
base.tostring = function(v)   -- gopher-lua prints numbers as Go does
  if type(v) == "number" then return number_text(v) end
  return tostring_(v)
end
local string_meta = getmetatable("")

-- Lua 5.1 keeps a hook function per thread: a script's coroutines get the budget's hook too
local create, resume, unpack_ = coroutine.create, coroutine.resume, unpack
local function co_create(f)
  local co = create(f)
  sethook(co, hook, "", STEP)
  return co
end
local function co_wrap(f)
  local co = co_create(f)
  local function pass(ok, ...)
    if ok then return ... end
    error((...), 0)
  end
  return function(...) return pass(resume(co, ...)) end
end

function state.open_env(name, obj)
  local env = {}
  for k, v in pairs(base) do env[k] = v end
  for lib, t in pairs(libs) do
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    env[lib] = c
  end
  env.debug.sethook = nil   -- the budget's hook is tidegate's
  env.coroutine.create, env.coroutine.wrap = co_create, co_wrap
  env._G = env
  if string_meta then string_meta.__index = env.string end
  helpers(env)
  env[name] = loader(obj)
  return env
end

function state.no_string_meta()
  debug.setmetatable("", nil)
  string_meta = nil
end
"""


def _attribute_filter(obj: Any, name: str, is_setting: bool) -> str:
    """Only the methods of the API objects are visible to scripts; nothing is writable."""
    if not is_setting:
        allowed = _ALLOWED.get(type(obj))
        if allowed is not None and name in allowed:
            return RENAMED.get(name, name)
    raise AttributeError(f"'{name}' is not accessible")


_ALLOWED = {**METHODS, **OBJECT_METHODS}


class BudgetExceeded(Exception):
    """The script ran past its instruction or time budget."""


class Runtime:
    """One Lua 5.1 state: compiled chunks, fresh environments, a budgeted ``run``."""

    def __init__(self, open_libs: bool, api: dict[str, Callable[..., Any]]) -> None:
        self.open_libs = open_libs
        self.lua = lua51.LuaRuntime(register_eval=False, register_builtins=False,
                                    attribute_filter=_attribute_filter,
                                    unpack_returned_tuples=True, max_memory=MEMORY_LIMIT)
        g = self.lua.globals()
        g.python = None
        self.state = self.lua.table(step=STEP, used=0, budget=0, deadline=0, max_time=1.0,
                                    stopped=False)
        self.lua.execute(_SETUP, self.state, self.lua.table_from(api))
        if not open_libs:
            self.state.no_string_meta()
        self._sethook = g.debug.sethook
        self._hook = self.state.hook
        self._run = self.state.run
        self._compile = self.state.compile
        self.bare_env = self.state.bare_env
        self.open_env = self.state.open_env
        self.loader = self.state.loader
        self._chunks: dict[tuple[str, str], Any] = {}

    def compile(self, name: str, source: str) -> Any:
        """The chunk as a function (cached); raises SyntaxError with Lua's message."""
        key = (name, source)
        fn = self._chunks.get(key)
        if fn is None:
            result = self._compile(source, name)
            if isinstance(result, tuple):
                raise SyntaxError(str(result[1]))
            fn = result
            if len(self._chunks) >= CACHE_LIMIT:
                self._chunks.clear()
            self._chunks[key] = fn
        return fn

    def env(self, name: str, obj: Any) -> Any:
        """A fresh global table holding the helpers and ``name`` (``ctx``/``request``)."""
        return self.open_env(name, obj) if self.open_libs else self.bare_env(name, obj)

    def run(self, fn: Any, env: Any, budget: int, max_time: float) -> tuple[bool, Any]:
        """Call the chunk in `env`: (True, None) or (False, error value). Raises
        BudgetExceeded when the budget stopped it."""
        state = self.state
        state.used = 0
        state.budget = budget
        state.max_time = max_time
        state.stopped = False
        self._sethook(self._hook, "", STEP)  # a C call: no VM instruction runs before it
        try:
            result = self._run(fn, env)
        except lua51.LuaError as exc:
            if state.stopped:
                raise BudgetExceeded() from None
            return False, str(exc)
        finally:
            if state.stopped:
                self._sethook()
        if state.stopped:
            raise BudgetExceeded()
        if isinstance(result, tuple):
            if result[0]:
                return True, None
            return False, result[1] if len(result) > 1 else None
        return bool(result), None


__all__ = ["NIL", "BudgetExceeded", "Runtime"]
