"""`check` warnings for Lua sections: what parses but cannot work.

Without ``allow_open_libs`` a script has no standard library at all (krakend-lua runs
gopher-lua with SkipOpenLibs): ``string.find``, ``pairs`` or ``tostring`` are nil and the
request fails at run time with "attempt to call a nil value" (krakend-ce#1021: users read it
as a KrakenD bug). A ``post`` at router level is never run (krakend-lua reads only ``pre``
there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tidegate.errors import JsonPath

LIBRARIES = ("string", "table", "math", "os", "io", "coroutine", "debug", "package")
FUNCTIONS = ("assert", "collectgarbage", "dofile", "error", "getfenv", "getmetatable",
             "ipairs", "load", "loadfile", "loadstring", "module", "next", "pairs", "pcall",
             "print", "rawequal", "rawget", "rawset", "require", "select", "setfenv",
             "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall")
_LIB_USE = re.compile(r"(?<![\w.:])(" + "|".join(LIBRARIES) + r")\s*\.\s*(\w+)")
_FN_USE = re.compile(r"(?<![\w.:])(" + "|".join(FUNCTIONS) + r")\s*\(")
_STRING_METHOD = re.compile(r"[\w\)\]\"']\s*:\s*(len|sub|find|gsub|gmatch|match|format|upper|"
                            r"lower|rep|reverse|byte)\s*\(")
_HTTP = re.compile(r"(?<![\w.:])http_response\s*\.\s*new\b")
_COMMENT = re.compile(r"--\[(=*)\[.*?\]\1\]|--[^\n]*", re.S)
_STRING = re.compile(r"\[(=*)\[.*?\]\1\]|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


def _code_only(text: str) -> str:
    """The text without comments and string literals (they mention names harmlessly)."""
    return _STRING.sub('""', _COMMENT.sub(" ", text))


def _defined(code: str, name: str) -> bool:
    return re.search(rf"\b(function|local)\s+{name}\b|\b{name}\s*=[^=]", code) is not None


def first_library_use(text: str) -> str | None:
    """The first standard-library name a script uses (``string.find``, ``pairs``, a string
    method), unless the script defines that name itself."""
    code = _code_only(text)
    uses: list[tuple[int, str]] = []
    for m in _LIB_USE.finditer(code):
        if not _defined(code, m.group(1)):
            uses.append((m.start(), f"{m.group(1)}.{m.group(2)}"))
    for m in _FN_USE.finditer(code):
        if not _defined(code, m.group(1)):
            uses.append((m.start(), m.group(1)))
    for m in _STRING_METHOD.finditer(code):
        uses.append((m.start(1), f":{m.group(1)}()"))
    return min(uses)[1] if uses else None


def warnings(namespace: str, section: Mapping[str, Any], scope: str,
             read: Any = None) -> list[tuple[JsonPath, str]]:
    """(key path within the section, message) of each problem; `read` reads a source file
    (None: sources are not looked at)."""
    out: list[tuple[JsonPath, str]] = []
    places: list[tuple[JsonPath, str]] = []
    for key in ("pre", "post"):
        if isinstance(section.get(key), str):
            places.append(((key,), section[key]))
    sources = section.get("sources")
    for i, name in enumerate(sources if isinstance(sources, list) else ()):
        if isinstance(name, str) and read is not None:
            try:
                places.append((("sources", i), read(name)))
            except (OSError, ValueError):
                continue
    for path, text in places:
        use = None if section.get("allow_open_libs") is True else first_library_use(text)
        if use is not None:
            out.append((path, f"the script uses Lua's standard library (`{use}`) but "
                              "`allow_open_libs` is not true: scripts then have no standard "
                              "library at all (as in KrakenD) and that code fails when it runs; "
                              "set \"allow_open_libs\": true"))
        if _HTTP.search(_code_only(text)):
            out.append((path, "`http_response.new` is not supported by tidegate (a blocking "
                              "HTTP call would stall every request of the worker): the call "
                              "fails with an error"))
    if namespace == "modifier/lua-endpoint" and section.get("post"):
        out.append((("post",), f"`post` of `{namespace}` never runs: at {scope} level only "
                               "`pre` runs (KrakenD ignores it too)"))
    return out
