"""Sprig defaults, reflection, env, paths, URLs, regexps and flow control."""

from __future__ import annotations

import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from tidegate.golang.fmt import quote, sprintf
from tidegate.golang.types import MISSING, GoObject, StrList, kind, type_name

from ..funcdef import ANY, BOOL, INT, MAP, STRING, GoError, GoFunc, fn
from .lists import deep_equal

FUNCS: dict[str, GoFunc] = {}


def empty(v: Any) -> bool:
    """Sprig's empty: zero values, empty containers and nil are empty; structs never."""
    if v is None or v is MISSING:
        return True
    t = type(v)
    if t is bool:
        return not v
    if t is str or isinstance(v, (list, dict)):
        return len(v) == 0
    if isinstance(v, (int, float, complex)):
        return v == 0
    return False


@fn(FUNCS, "default", (ANY,), variadic=ANY)
def default(d: Any, *given: Any) -> Any:
    if not given or empty(given[0]):
        return d
    return given[0]


fn(FUNCS, "empty", (ANY,), returns=BOOL)(empty)


@fn(FUNCS, "coalesce", (), variadic=ANY)
def coalesce(*v: Any) -> Any:
    for x in v:
        if not empty(x):
            return x
    return None


fn(FUNCS, "all", (), variadic=ANY, returns=BOOL)(lambda *v: all(not empty(x) for x in v))
fn(FUNCS, "any", (), variadic=ANY, returns=BOOL)(lambda *v: any(not empty(x) for x in v))
fn(FUNCS, "ternary", (ANY, ANY, BOOL))(lambda vt, vf, v: vt if v else vf)
fn(FUNCS, "fail", (STRING,), returns=STRING)(lambda msg: (_ for _ in ()).throw(GoError(msg)))

# ---------------------------------------------------------------- reflection
fn(FUNCS, "typeOf", (ANY,), returns=STRING)(lambda v: sprintf("%T", [v]))
fn(FUNCS, "typeIs", (STRING, ANY), returns=BOOL)(lambda t, v: t == sprintf("%T", [v]))


@fn(FUNCS, "typeIsLike", (STRING, ANY), returns=BOOL)
def type_is_like(target: str, v: Any) -> bool:
    if v is None:
        raise GoError("runtime error: invalid memory address or nil pointer dereference")
    s = type_name(v)
    return target == s or "*" + target == s


fn(FUNCS, "kindOf", (ANY,), returns=STRING)(kind)
fn(FUNCS, "kindIs", (STRING, ANY), returns=BOOL)(lambda t, v: t == kind(v))
fn(FUNCS, "deepEqual", (ANY, ANY), returns=BOOL)(deep_equal)

# ---------------------------------------------------------------- env
fn(FUNCS, "env", (STRING,), returns=STRING)(lambda k: os.environ.get(k, ""))

_ENV_RE = re.compile(r"\$(\{([^}]*)\}|([A-Za-z0-9_]+)|([*#$@!?\-0-9]))")


@fn(FUNCS, "expandenv", (STRING,), returns=STRING)
def expandenv(s: str, env: Any = None) -> str:
    """os.ExpandEnv (against `env` when given)."""
    if env is None:
        env = os.environ
    out = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "$" and i + 1 < n:
            name, w = _get_shell_name(s[i + 1:])
            if name == "" and w > 0:
                pass
            elif name == "":
                out.append("$")
            else:
                out.append(env.get(name, ""))
            i += 1 + w
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _get_shell_name(s: str) -> tuple[str, int]:
    if s[0] == "{":
        if len(s) > 2 and _is_special(s[1]) and s[2] == "}":
            return s[1:2], 3
        for i in range(1, len(s)):
            if s[i] == "}":
                if i == 1:
                    return "", 2
                return s[1:i], i + 1
        return "", 1
    if _is_special(s[0]):
        return s[0:1], 1
    i = 0
    while i < len(s) and (s[i] == "_" or (s[i].isascii() and s[i].isalnum())):
        i += 1
    return s[:i], i


def _is_special(c: str) -> bool:
    return c in "*#$@!?-" or "0" <= c <= "9"


# ---------------------------------------------------------------- paths
def clean(p: str) -> str:
    """path.Clean."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def base(p: str) -> str:
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p.rsplit("/", 1)[-1]


def dir_(p: str) -> str:
    i = p.rfind("/")
    return clean(p[: i + 1])


def ext(p: str) -> str:
    i = len(p) - 1
    while i >= 0 and p[i] != "/":
        if p[i] == ".":
            return p[i:]
        i -= 1
    return ""


def go_join(a: str, b: str) -> str:
    """path.Join(a, b)."""
    parts = [x for x in (a, b) if x]
    return clean("/".join(parts)) if parts else ""


for _prefix in ("", "os"):
    def _n(name: str, prefix: str = _prefix) -> str:
        return prefix + name.capitalize() if prefix else name

    fn(FUNCS, _n("base"), (STRING,), returns=STRING)(base)
    fn(FUNCS, _n("dir"), (STRING,), returns=STRING)(dir_)
    fn(FUNCS, _n("clean"), (STRING,), returns=STRING)(clean)
    fn(FUNCS, _n("ext"), (STRING,), returns=STRING)(ext)
FUNCS["isAbs"] = GoFunc("isAbs", lambda p: p.startswith("/"), (STRING,), returns=BOOL)
FUNCS["osIsAbs"] = GoFunc("osIsAbs", lambda p: p.startswith("/"), (STRING,), returns=BOOL)


# ---------------------------------------------------------------- url
@fn(FUNCS, "urlParse", (STRING,), returns=MAP)
def url_parse(v: str) -> dict:
    if any(c < " " or c == "\x7f" for c in v):
        raise GoError(f"unable to parse url: parse {quote(v)}: net/url: invalid control "
                      "character in URL")
    if v.startswith(" "):  # no scheme nor authority for Go (urlsplit would strip the spaces)
        return _url_path_only(v)
    try:
        u = urlsplit(v)
    except ValueError as e:
        raise GoError(f"unable to parse url: {e}") from None
    userinfo = ""
    host = u.netloc
    if "@" in host:
        userinfo, host = host.rsplit("@", 1)
    hostname = host
    if hostname.startswith("["):
        hostname = hostname[1:].split("]", 1)[0]
    elif ":" in hostname:
        hostname = hostname.rsplit(":", 1)[0]
    return {
        "scheme": u.scheme,
        "host": host,
        "hostname": hostname,
        "path": _unescape(v, u.path),
        "query": u.query,
        "opaque": "",
        "fragment": _unescape(v, u.fragment),
        "userinfo": userinfo,
    }


def _unescape(v: str, s: str) -> str:
    """net/url unescape of a path or fragment; Go rejects malformed %-escapes."""
    from urllib.parse import unquote

    for m in re.finditer("%", s):
        i = m.start()
        if not re.fullmatch("[0-9A-Fa-f]{2}", s[i + 1:i + 3]):
            raise GoError(f"unable to parse url: parse {quote(v)}: invalid URL escape "
                          f"{quote(s[i:i + 3])}")
    return unquote(s, errors="surrogateescape")


def _url_path_only(v: str) -> dict:
    rest, _, fragment = v.partition("#")
    rest, _, query = rest.partition("?")
    if ":" in rest.split("/", 1)[0]:
        raise GoError(f"unable to parse url: parse {quote(v)}: first path segment in URL "
                      "cannot contain colon")
    return {"scheme": "", "host": "", "hostname": "", "path": _unescape(v, rest),
            "query": query, "opaque": "", "fragment": _unescape(v, fragment), "userinfo": ""}


@fn(FUNCS, "urlJoin", (MAP,), returns=STRING)
def url_join(d: dict) -> str:
    def g(k: str) -> str:
        v = d.get(k)
        if v is None or v is MISSING:
            return ""
        if type(v) is not str:
            raise GoError(f"interface conversion: interface {{}} is {type_name(v)}, not string")
        return v

    scheme, host, path = g("scheme"), g("host"), g("path")
    query, fragment, opaque, userinfo = g("query"), g("fragment"), g("opaque"), g("userinfo")
    out = ""
    if scheme:
        out += scheme + ":"
    if opaque:
        out += opaque
    else:
        if scheme or host or userinfo:
            if host or path or userinfo:
                out += "//"
            if userinfo:
                out += _esc_userinfo(userinfo) + "@"
            out += host
        if path and not path.startswith("/") and host:
            out += "/"
        out += _esc_path(path)
    if query:
        out += "?" + query
    if fragment:
        out += "#" + _esc_path(fragment)
    return out


def _esc_userinfo(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="!$&'()*+,;=:-._~")


def _esc_path(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="/!$&'()*+,;=:@-._~")


@fn(FUNCS, "getHostByName", (STRING,), returns=STRING)
def get_host_by_name(name: str) -> str:
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return ""
    return infos[0][4][0] if infos else ""


# ---------------------------------------------------------------- regexps
_GO_RE_CACHE: dict[str, re.Pattern[str]] = {}


def compile_go_re(expr: str) -> re.Pattern[str]:
    """Compile a Go (RE2) regexp with Python's re; errors use Go's wording where known."""
    p = _GO_RE_CACHE.get(expr)
    if p is not None:
        return p
    py = expr.replace("\\z", "\\Z")
    try:
        p = re.compile(py)
    except re.error as e:
        msg = str(e.msg)
        if "missing )" in msg:
            raise GoError(f"error parsing regexp: missing closing ): `{expr}`") from None
        if "unbalanced parenthesis" in msg:
            raise GoError(f"error parsing regexp: unexpected ): `{expr}`") from None
        if "unterminated character set" in msg:
            raise GoError(f"error parsing regexp: missing closing ]: `{expr[e.pos or 0:]}`") \
                from None
        if "nothing to repeat" in msg or "multiple repeat" in msg:
            raise GoError(f"error parsing regexp: missing argument to repetition operator: "
                          f"`{expr[e.pos or 0:(e.pos or 0) + 1]}`") from None
        raise GoError(f"error parsing regexp: {msg}: `{expr}`") from None
    _GO_RE_CACHE[expr] = p
    return p


def _find_all(p: re.Pattern[str], s: str, n: int) -> list[re.Match[str]]:
    out: list[re.Match[str]] = []
    prev_end = -1
    for m in p.finditer(s):
        if m.start() == m.end() and m.start() == prev_end:
            continue
        out.append(m)
        prev_end = m.end()
        if 0 <= n <= len(out):
            break
    return out


def _expand(tmpl: str, m: re.Match[str]) -> str:
    """Regexp.Expand: $1, ${1}, $name, ${name}; $$ is a literal $."""
    out = []
    i = 0
    while i < len(tmpl):
        c = tmpl[i]
        if c != "$" or i + 1 >= len(tmpl):
            out.append(c)
            i += 1
            continue
        if tmpl[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if tmpl[i + 1] == "{":
            j = tmpl.find("}", i + 2)
            if j < 0:
                out.append(c)
                i += 1
                continue
            name = tmpl[i + 2:j]
            i = j + 1
        else:
            j = i + 1
            while j < len(tmpl) and (tmpl[j] == "_" or tmpl[j].isalnum()):
                j += 1
            name = tmpl[i + 1:j]
            if not name:
                out.append(c)
                i += 1
                continue
            i = j
        try:
            g = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, error_types):
            g = None
        out.append(g or "")
    return "".join(out)


error_types = (re.error, IndexError)


def _regex_pair(name: str, impl: Any, params: tuple[str, ...], returns: str, soft: Any) -> None:
    def must(*a: Any) -> Any:
        return impl(*a)

    def lenient(*a: Any) -> Any:
        try:
            return impl(*a)
        except GoError:
            return soft

    fn(FUNCS, name, params, returns=returns)(lenient)
    fn(FUNCS, "must" + name[0].upper() + name[1:], params, returns=returns)(must)


_regex_pair("regexMatch", lambda r, s: compile_go_re(r).search(s) is not None,
            (STRING, STRING), BOOL, False)
_regex_pair("regexFindAll",
            lambda r, s, n: StrList(m.group(0) for m in _find_all(compile_go_re(r), s, n)),
            (STRING, STRING, INT), "[]string", StrList())


def _find(r: str, s: str) -> str:
    m = compile_go_re(r).search(s)
    return m.group(0) if m else ""


_regex_pair("regexFind", _find, (STRING, STRING), STRING, "")


def _replace_all(r: str, s: str, repl: str) -> str:
    p = compile_go_re(r)
    return _sub(p, s, lambda m: _expand(repl, m))


def _replace_all_literal(r: str, s: str, repl: str) -> str:
    p = compile_go_re(r)
    return _sub(p, s, lambda m: repl)


def _sub(p: re.Pattern[str], s: str, f: Any) -> str:
    out = []
    last = 0
    for m in _find_all(p, s, -1):
        out.append(s[last:m.start()])
        out.append(f(m))
        last = m.end()
    out.append(s[last:])
    return "".join(out)


_regex_pair("regexReplaceAll", _replace_all, (STRING, STRING, STRING), STRING, "")
_regex_pair("regexReplaceAllLiteral", _replace_all_literal, (STRING, STRING, STRING), STRING,
            "")


def _split(r: str, s: str, n: int) -> StrList:
    p = compile_go_re(r)
    if n == 0:
        return StrList()
    if r and s == "":
        return StrList([""])
    matches = _find_all(p, s, n)
    out = StrList()
    beg = end = 0
    for m in matches:
        if n > 0 and len(out) == n - 1:
            break
        end = m.start()
        if m.end() != 0:
            out.append(s[beg:end])
        beg = m.end()
    if end != len(s):
        out.append(s[beg:])
    return out


_regex_pair("regexSplit", _split, (STRING, STRING, INT), "[]string", StrList())


@fn(FUNCS, "regexQuoteMeta", (STRING,), returns=STRING)
def quote_meta(s: str) -> str:
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in s)


__all__ = ["FUNCS", "GoObject", "clean", "empty", "go_join"]
