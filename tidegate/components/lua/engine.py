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
SkipOpenLibs; strings have no metatable): an empty table reading through to a frozen table of
them, shared by every run. With it, every library table is a per-request copy. ``ctx``,
``request`` and ``response`` are frozen Lua tables made once per state; the Python values a
script gets (``luaTable``/``luaList``) expose only the listed methods (the attribute filter).

One crossing per run: Python calls the section's run function without arguments (the state's
Python objects already point at the request), and gets back (ok, error, environment) and the
header writes the script kept in Lua, applied in order.

Budget (beyond KrakenD): a count hook runs every 1000 VM instructions; past the instruction
budget or the CPU-time budget it stops the script, and from then on raises at *every*
instruction, so a ``pcall`` in the script cannot swallow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lupa.lua51 as lua51

from tidegate.components.lua.objects import DEFERRED, OBJECT_METHODS, Objects
from tidegate.components.lua.values import METHODS, NIL, RENAMED
from tidegate.messages import canonical_header

STEP = 1000          # instructions between two budget checks
CACHE_LIMIT = 512    # compiled chunks kept per state
MEMORY_LIMIT = 256 << 20

_SETUP = r"""
local setfenv, xpcall, getinfo = setfenv, xpcall, debug.getinfo
local sethook, clock = debug.sethook, os.clock
local type, pairs, error, setmetatable, loadstring = type, pairs, error, setmetatable, loadstring
local rawget, rawset, select = rawget, rawset, select
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

-- Writes a run keeps: (Python setter, key, value) triples, in order. `headers(k, v)` with
-- string arguments is kept here instead of crossing into Python; before any other method
-- crosses, the kept writes are applied (so what Python reads is what the script wrote), and the
-- rest are handed back with the run's result, which crosses anyway.
local P, pn = {}, 0
local function flush()
  local n = pn
  pn = 0
  for i = 1, n, 3 do
    local f, k, v = P[i], P[i + 1], P[i + 2]
    P[i], P[i + 1], P[i + 2] = nil, nil, nil
    f(k, v)
  end
end
local function forget()   -- the last run's writes (kept until then: they were handed back)
  for i = 1, pn do P[i] = nil end
  pn = 0
end

local function run(env, budget_, max_time_, a, b)
  used, budget, stopped, active = 0, budget_, false, true
  if pn > 0 then forget() end
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
  forget()
  state.stopped = false
end

function state.compile(src, name)
  return loadstring(src, "=" .. name)
end

local key_of = {lower = api.lower_key, canonical = api.canonical_key}

-- ctx, request and response: one frozen Lua table each per state, whose methods call the
-- state's Python objects (re-pointed at each run's request) through bound methods made once.
-- No Python object is wrapped per request, and nothing a script can reach is shared and
-- writable: the tables refuse new fields, their metatables are hidden, and a bare environment
-- has no rawset. As with lupa's bound methods, a call passing the object first (colon syntax)
-- drops it. Names that are not methods are refused with the attribute filter's error.
local OBJECTS = {}
for name, methods in pairs(api.classes) do
  local obj, bound = {}, {}
  for key, f in pairs(methods) do
    bound[key] = function(first, ...)
      if pn > 0 then flush() end
      local r
      if first == obj then r = f(...) else r = f(first, ...) end
      return r
    end
  end
  local mode = api.deferred[name]
  if mode then
    local set, generic, compute = methods.set_header, bound.headers, key_of[mode]
    local known, count = {}, 0   -- header names as the setter keys them (bounded)
    bound.set_header = nil
    bound.headers = function(first, ...)
      local k, v = ...
      if first ~= obj then k, v = first, k end
      if type(v) == "string" and type(k) == "string" then
        local key = known[k]
        if key == nil then
          key = compute(k)
          if count >= 1024 then known, count = {}, 0 end
          known[k], count = key, count + 1
        end
        P[pn + 1], P[pn + 2], P[pn + 3] = set, key, v
        pn = pn + 3
        return
      end
      return generic(first, ...)
    end
  end
  -- a name that is not a method is refused (lupa's attribute filter did so)
  setmetatable(bound, {__index = function(_, key) return api.refuse(key) end})
  setmetatable(obj, {
    __index = bound,
    __newindex = function(t, key) api.refuse(key) end,
    __metatable = false})
  OBJECTS[name] = function() return obj end
end

local function loader(name)
  return {load = OBJECTS[name]}
end

-- the helpers: an environment with the standard libraries gets its own copies (a script that
-- changes one, luaTable.x = 1, changes its copy); a bare one reads frozen shared ones
local api_table_new, api_list_new, api_nil_new, api_http_new = api.table_new, api.list_new,
  api.nil_new, api.http_new
local custom_error = api.custom_error
local MAKERS = {
  luaTable = function() return {new = api_table_new} end,
  luaList = function() return {new = api_list_new} end,
  luaNil = function() return {new = api_nil_new} end,
  http_response = function() return {new = api_http_new} end,
  custom_error = function() return custom_error end,
}
local function helpers(env)
  for k, make in pairs(MAKERS) do env[k] = make() end
  return env
end

-- A bare environment (gopher-lua with SkipOpenLibs): an empty table whose metatable reads
-- through to a frozen table of the helpers and the section's object loader, shared by every
-- run. A script's globals land in its own table; the shared tables refuse writes (a bare
-- environment has no rawset or setmetatable to get around that).
local function frozen(t)
  return setmetatable({}, {__index = t, __newindex = function(_, k) api.refuse(k) end,
                           __metatable = false})
end
local shared = {}   -- the tables every run may reach: rawset refuses them
local bare_meta = {}
for _, name in pairs({"ctx", "request"}) do
  local globals = {}
  for k, make in pairs(MAKERS) do
    local v = make()
    if type(v) == "table" then v = frozen(v) shared[v] = true end
    globals[k] = v
  end
  globals[name] = frozen(loader(name))
  shared[globals[name]] = true
  bare_meta[name] = {__index = globals, __metatable = false}
end
local response_loader = frozen(loader("response"))
shared[response_loader] = true
function state.bare_env(name)
  return setmetatable({}, bare_meta[name])
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

-- the shared objects refuse rawset too (the standard libraries give scripts one)
for _, load in pairs(OBJECTS) do shared[load()] = true end
base.rawset = function(t, k, v)
  if shared[t] then return api.refuse(k) end
  return rawset(t, k, v)
end

function state.open_env(name)
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
  env[name] = loader(name)
  return env
end

local response_of = function() return response_loader end
function state.configure(open_libs)
  local make_env = state.bare_env
  if open_libs then
    response_of = function() return loader("response") end
    make_env = state.open_env
  else
    debug.setmetatable("", nil)
    string_meta = nil
  end
  -- a fresh environment, then the chunks in it, bound once per section: one call from Python
  -- per request, without arguments
  function state.starter(name, budget_, max_time, a, b, keep)
    return function()
      local env = make_env(name)
      local ok, err = run(env, budget_, max_time, a, b)
      if keep then return ok, err, env, unpack_(P, 1, pn) end
      return ok, err, nil, unpack_(P, 1, pn)
    end
  end
end

-- `response` bound, then `post` in the request's environment
function state.finish(env, budget_, max_time_, fn)
  env.response = response_of()
  local ok, err = run(env, budget_, max_time_, fn, nil)
  return ok, err, nil, unpack_(P, 1, pn)
end
"""


def _attribute_filter(obj: Any, name: str, is_setting: bool) -> str:
    """Only the methods of the API values are visible to scripts; nothing is writable."""
    if not is_setting:
        allowed = METHODS.get(type(obj))
        if allowed is not None and name in allowed:
            return RENAMED.get(name, name)
    raise AttributeError(f"'{name}' is not accessible")


def _refuse(name: Any) -> None:
    """What a script gets for a name of ctx/request/response that is not a method (the
    attribute filter's error)."""
    raise AttributeError(f"'{name}' is not accessible")


def _lower_key(name: str) -> str:
    return canonical_header(name).lower()


class BudgetExceeded(Exception):
    """The script ran past its instruction or time budget."""


class Runtime:
    """One Lua 5.1 state: compiled chunks, fresh environments, budgeted runs, and the Python
    objects its scripts' ``ctx``/``request``/``response`` call (`objects`, pointed at a run's
    request by the caller before the run, and idle after it)."""

    def __init__(self, open_libs: bool, api: dict[str, Callable[..., Any]]) -> None:
        self.open_libs = open_libs
        self.lua = lua51.LuaRuntime(register_eval=False, register_builtins=False,
                                    attribute_filter=_attribute_filter,
                                    unpack_returned_tuples=True, max_memory=MEMORY_LIMIT)
        g = self.lua.globals()
        g.python = None
        self.objects = Objects()
        self.state = self.lua.table(step=STEP, stopped=False)
        helpers = self.lua.table_from(api)
        helpers.refuse = _refuse
        helpers.lower_key = _lower_key
        helpers.canonical_key = canonical_header
        helpers.deferred = self.lua.table_from(DEFERRED)
        helpers.classes = self.lua.table_from({
            name: self.lua.table_from(
                {m: getattr(obj, m) for m in (*OBJECT_METHODS[type(obj)], "set_header")})
            for name, obj in self.objects.by_name().items()})
        self.lua.execute(_SETUP, self.state, helpers)
        self.state.configure(open_libs)
        self._sethook = g.debug.sethook
        self._hook = self.state.hook
        self._sethook(self._hook, "", STEP)  # installed for good; it counts only during runs
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

    def starter(self, name: str, budget: int, max_time: float, first: Any = None,
                second: Any = None, keep: bool = True) -> Any:
        """A function of no arguments that makes a fresh environment with ``name``
        (``ctx``/``request``) and runs the chunks in it: call it with `run`."""
        return self.state.starter(name, budget, max_time, first, second, keep)

    def finisher(self, env: Any, budget: int, max_time: float, fn: Any) -> Any:
        """A function of no arguments that binds ``response`` in `env` and runs `fn` there
        (a starter's result, without environment)."""
        finish = self._finish
        return lambda: finish(env, budget, max_time, fn)

    def after_error(self) -> None:
        """A run that ended outside its ``xpcall``: the budget's stop (it raises at every
        instruction until the script is gone) or an error in the error handler."""
        stopped = self.state.stopped
        self._sethook(self._hook, "", STEP)
        self.state.reset()
        if stopped:
            raise BudgetExceeded()


def applied(result: tuple[Any, ...]) -> None:
    """The writes a run kept, handed back after its (ok, error, environment): applied in
    order."""
    for i in range(3, len(result), 3):
        result[i](result[i + 1], result[i + 2])


__all__ = ["NIL", "BudgetExceeded", "Runtime", "applied"]
