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

from tidegate.components.lua.objects import LOADED, OBJECT_METHODS
from tidegate.components.lua.values import METHODS, NIL, RENAMED

STEP = 1000          # instructions between two budget checks
CACHE_LIMIT = 512    # compiled chunks kept per state
MEMORY_LIMIT = 256 << 20

_SETUP = r"""
local setfenv, xpcall, getinfo = setfenv, xpcall, debug.getinfo
local sethook, clock = debug.sethook, os.clock
local type, pairs, error, setmetatable, loadstring = type, pairs, error, setmetatable, loadstring
local rawget, rawset = rawget, rawset
local state, api = ...
local STEP = state.step

-- the budget: `active` only while a script runs (the hook stays installed between runs).
-- The CPU-time deadline is set at a run's first hook (its first STEP instructions): a clock
-- read costs a system call, which most runs, far shorter than STEP, never need.
local used, budget, deadline, max_time, active, stopped = 0, 0, nil, 0, false, false
local function hook()
  if not active then return end
  used = used + STEP
  if deadline == nil then deadline = clock() + max_time end
  if stopped or used > budget or clock() > deadline then
    stopped = true
    state.stopped = true
    sethook(hook, "", 1)
    error(state, 0)
  end
end
state.hook = hook

-- errors that are not strings (Python exceptions from the helpers): where they were raised,
-- the script's line (not this chunk's, whose functions stand between scripts and Python)
local SETUP = getinfo(1, "S").source
local function handler(e)
  if type(e) == "string" then return e end
  local level = 3
  local info = getinfo(level, "Sl")
  while info ~= nil and info.source == SETUP do
    level = level + 1
    info = getinfo(level, "Sl")
  end
  if info == nil then return {err = e} end
  return {err = e, src = info.short_src, line = info.currentline}
end

local function run(env, budget_, max_time_, a, b)
  used, budget, stopped, active = 0, budget_, false, true
  deadline, max_time = nil, max_time_
  local ok, err = true, nil
  if a then
    setfenv(a, env)
    ok, err = xpcall(a, handler)
  end
  if ok and b then
    setfenv(b, env)
    ok, err = xpcall(b, handler)
  end
  active = false
  return ok, err
end

function state.reset()
  active, stopped = false, false
  state.stopped = false
end

function state.compile(src, name)
  return loadstring(src, "=" .. name)
end

-- ctx, request and response as Lua tables whose methods call the Python methods directly: a
-- method looked up on a Python object costs the attribute filter and a new bound-method
-- wrapper (~2 µs); here the first lookup of a name binds a closure, kept in the table. As with
-- lupa's bound methods, a call passing the object first (colon syntax) drops it. Names that are
-- not methods are refused by Python, with the attribute filter's error.
local OBJ = {}   -- the key of a table's Python object: no script can name it
local classes = {}
for name, methods in pairs(api.classes) do
  local meta = {}
  meta.__index = function(t, key)
    local f = methods[key]
    local obj = rawget(t, OBJ)
    if f == nil then return api.refuse(key) end
    local bound = function(first, ...)
      local r
      if first == t then r = f(obj, ...) else r = f(obj, first, ...) end
      return r
    end
    rawset(t, key, bound)
    return bound
  end
  meta.__newindex = function(t, key) api.refuse(key) end
  meta.__metatable = false
  classes[name] = meta
end

local function loader(name, obj)
  local t = setmetatable({[OBJ] = obj}, classes[name])
  return {load = function() return t end}
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
  env[name] = loader(name, obj)
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
  env[name] = loader(name, obj)
  return env
end

function state.configure(open_libs)
  local make_env = state.bare_env
  if open_libs then
    make_env = state.open_env
  else
    debug.setmetatable("", nil)
    string_meta = nil
  end
  -- a fresh environment, then the chunks in it (one call from Python per request)
  function state.start(name, obj, budget_, max_time, a, b, keep)
    local env = make_env(name, obj)
    local ok, err = run(env, budget_, max_time, a, b)
    if keep then return ok, err, env end
    return ok, err   -- no post to run: the environment is not handed to Python
  end
  -- the same with everything but the object bound once (fewer values cross per request)
  function state.starter(name, budget_, max_time, a, b, keep)
    return function(obj)
      local env = make_env(name, obj)
      local ok, err = run(env, budget_, max_time, a, b)
      if keep then return ok, err, env end
      return ok, err
    end
  end
end

-- `response` bound, then `post` in the request's environment
function state.finish(env, obj, budget_, max_time_, fn)
  env.response = loader("response", obj)
  return run(env, budget_, max_time_, fn, nil)
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


def _refuse(name: Any) -> None:
    """What a script gets for a name of ctx/request/response that is not a method (the
    attribute filter's error)."""
    raise AttributeError(f"'{name}' is not accessible")


class BudgetExceeded(Exception):
    """The script ran past its instruction or time budget."""


class Runtime:
    """One Lua 5.1 state: compiled chunks, fresh environments, budgeted runs."""

    def __init__(self, open_libs: bool, api: dict[str, Callable[..., Any]]) -> None:
        self.open_libs = open_libs
        self.lua = lua51.LuaRuntime(register_eval=False, register_builtins=False,
                                    attribute_filter=_attribute_filter,
                                    unpack_returned_tuples=True, max_memory=MEMORY_LIMIT)
        g = self.lua.globals()
        g.python = None
        self.state = self.lua.table(step=STEP, stopped=False)
        helpers = self.lua.table_from(api)
        helpers.refuse = _refuse
        helpers.classes = self.lua.table_from({
            name: self.lua.table_from({m: getattr(cls, m) for m in OBJECT_METHODS[cls]})
            for name, cls in LOADED.items()})
        self.lua.execute(_SETUP, self.state, helpers)
        self.state.configure(open_libs)
        self._sethook = g.debug.sethook
        self._hook = self.state.hook
        self._sethook(self._hook, "", STEP)  # installed for good; it counts only during runs
        self._start = self.state.start
        self._finish = self.state.finish
        self._compile = self.state.compile
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

    def start(self, name: str, obj: Any, budget: int, max_time: float, first: Any = None,
              second: Any = None, keep: bool = True) -> tuple[bool, Any, Any]:
        """A fresh environment with ``name`` (``ctx``/``request``) loading `obj`, then the
        chunks in it: (ok, error value, environment if `keep`). Raises BudgetExceeded."""
        try:
            result = self._start(name, obj, budget, max_time, first, second, keep)
        except lua51.LuaError as exc:
            self._after_error()
            return False, str(exc), None
        return bool(result[0]), result[1], result[2] if keep else None

    def starter(self, name: str, budget: int, max_time: float, first: Any = None,
                second: Any = None, keep: bool = True) -> Any:
        """`start` with everything but the object bound: call it with `run`."""
        return self.state.starter(name, budget, max_time, first, second, keep)

    def run(self, starter: Any, obj: Any, keep: bool) -> tuple[bool, Any, Any]:
        """``start`` through a `starter` of this runtime. Raises BudgetExceeded."""
        try:
            result = starter(obj)
        except lua51.LuaError as exc:
            self._after_error()
            return False, str(exc), None
        return bool(result[0]), result[1], result[2] if keep else None

    def finish(self, env: Any, obj: Any, budget: int, max_time: float, fn: Any
               ) -> tuple[bool, Any]:
        """``response`` loading `obj` in `env`, then `fn`: (ok, error value)."""
        try:
            ok, err = self._finish(env, obj, budget, max_time, fn)
        except lua51.LuaError as exc:
            self._after_error()
            return False, str(exc)
        return bool(ok), err

    def _after_error(self) -> None:
        """A run that ended outside its ``xpcall``: the budget's stop (it raises at every
        instruction until the script is gone) or an error in the error handler."""
        stopped = self.state.stopped
        self._sethook(self._hook, "", STEP)
        self.state.reset()
        if stopped:
            raise BudgetExceeded()


__all__ = ["NIL", "BudgetExceeded", "Runtime"]
