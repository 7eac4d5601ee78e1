"""What ``ctx.load()``, ``request.load()`` and ``response.load()`` call into.

One object of each class per Lua state, re-pointed at the request (or response) of each run
(a Lua call never awaits, so a state runs one script at a time): the script's object is a Lua
table whose methods call these objects' bound methods, made once, so no Python object is
wrapped for Lua per request. krakend-lua's getters and setters (``router/gin/lua.go``,
``proxy/request.go``, ``proxy/response.go``): one method per field, a getter without argument
and a setter with one. They work on the live request or response, so a script's change is
what the next stage sees. Header keys: the router's are canonicalised by Go's ``http.Header``
(``Get``/``Set``/``Del``), the proxy request's by ``CanonicalMIMEHeaderKey``; the proxy
response's getter looks the key up as written (krakend-lua does not canonicalise it there).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tidegate.components.lua.values import (
    NEED_ARGUMENTS,
    LuaList,
    LuaTable,
    ScriptError,
    go_string,
)
from tidegate.golang.url_values import encode_query
from tidegate.messages import ProxyRequest, ProxyResponse, Request, canonical_header

INVALID_LIST = "invalid header value, must be a luaList"


def _list_strings(value: Any) -> list[str]:
    if not isinstance(value, LuaList):
        raise ScriptError(INVALID_LIST)
    return [go_string(v) if v is not None else "%!s(<nil>)" for v in value.data]


def _string_lists(headers: dict[str, list[str]]) -> LuaTable:
    return LuaTable({k: list(v) for k, v in headers.items()})


class RouterContext:
    """``ctx`` of ``modifier/lua-endpoint``: the incoming HTTP request (gin's context)."""

    __slots__ = ("params_", "req")

    def __init__(self, req: Request, params: dict[str, str]) -> None:
        self.req = req
        self.params_ = params

    def method(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.req.method
        self.req.method = go_string(args[0])
        return None

    def url(self, *args: Any) -> Any:
        req = self.req
        if len(args) == 0:
            return req.raw_target
        target = go_string(args[0])
        parts = urlsplit(target)
        req.raw_target = target
        req.path = unquote(parts.path)
        req.query = parts.query
        return None

    def host(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.req.host
        self.req.host = go_string(args[0])
        return None

    def query(self, *args: Any) -> Any:
        req = self.req
        if len(args) == 0:
            raise ScriptError(NEED_ARGUMENTS)
        key = go_string(args[0])
        pairs = parse_qsl(req.query, keep_blank_values=True)
        if len(args) == 1:
            return next((v for k, v in pairs if k == key), "")
        pairs = [(k, v) for k, v in pairs if k != key] + [(key, go_string(args[1]))]
        req.query = encode_query(pairs)
        req.raw_target = quote(req.path, safe="/:@!$&'()*+,;=-._~") + "?" + req.query
        return None

    def params(self, *args: Any) -> Any:
        if len(args) == 0:
            return LuaTable(dict(self.params_))
        if len(args) == 1:
            return self.params_.get(go_string(args[0]), "")
        self.params_[go_string(args[0])] = go_string(args[1])
        return None

    def headers(self, *args: Any) -> Any:
        req = self.req
        if len(args) == 0:
            out: dict[str, list[str]] = {}
            for k, v in req.headers:
                out.setdefault(canonical_header(k), []).append(v)
            return LuaTable(out)
        name = canonical_header(go_string(args[0])).lower()
        if len(args) == 1:
            return req.header(name) or ""
        self.set_header(name, None if args[1] is None else go_string(args[1]))
        return None

    def set_header(self, name: str, value: str | None) -> None:
        """``headers(k, v)`` with `name` canonical and lower-cased (a nil value deletes)."""
        req = self.req
        headers = req.headers
        for k, _ in headers:
            if k == name:
                headers = req.headers = [(k, v) for k, v in headers if k != name]
                break
        if value is not None:
            headers.append((name, value))
        if name == "host":
            req.host = req.header("host") or ""

    def headerList(self, *args: Any) -> Any:
        req = self.req
        if len(args) == 0:
            raise ScriptError(NEED_ARGUMENTS)
        name = canonical_header(go_string(args[0])).lower()
        if len(args) == 1:
            return LuaList(list(req.header_values(name)))
        values = _list_strings(args[1])
        req.headers = [(k, v) for k, v in req.headers if k != name]
        req.headers.extend((name, v) for v in values)
        return None

    def body(self, *args: Any) -> Any:
        if len(args) >= 1:
            self.req.body = go_string(args[0]).encode()
            return None
        return self.req.body.decode("utf-8", "surrogateescape")


class LuaRequest:
    """``request`` of ``modifier/lua-proxy`` and ``modifier/lua-backend`` (lura's
    proxy.Request). ``url`` is "" at proxy level; at backend level the whole backend URL,
    and setting it changes where the request goes."""

    __slots__ = ("backend", "req")

    def __init__(self, req: ProxyRequest, backend: bool) -> None:
        self.req = req
        self.backend = backend

    def method(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.req.method
        self.req.method = go_string(args[0])
        return None

    def path(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.req.path
        self.req.path = go_string(args[0])
        return None

    def query(self, *args: Any) -> Any:
        if len(args) == 0:
            return encode_query(self.req.query)
        self.req.query = parse_qsl(go_string(args[0]), keep_blank_values=True)
        return None

    def url(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.req.url or ""
        if self.backend:
            self.req.url = go_string(args[0])
        return None

    def params(self, *args: Any) -> Any:
        params = self.req.params
        if len(args) == 0:
            return LuaTable(dict(params))
        if len(args) == 1:
            return params.get(go_string(args[0]), "")
        params[go_string(args[0])] = go_string(args[1])
        return None

    def headers(self, *args: Any) -> Any:
        headers = self.req.headers
        if len(args) == 0:
            return _string_lists(headers)
        key = canonical_header(go_string(args[0]))
        if len(args) == 1:
            values = headers.get(key)
            return values[0] if values else ""
        self.set_header(key, None if args[1] is None else go_string(args[1]))
        return None

    def set_header(self, key: str, value: str | None) -> None:
        """``headers(k, v)`` with `key` canonical (a nil value deletes)."""
        if value is None:
            self.req.headers.pop(key, None)
        else:
            self.req.headers[key] = [value]

    def headerList(self, *args: Any) -> Any:
        return _header_list(self.req.headers, args)

    def body(self, *args: Any) -> Any:
        if len(args) >= 1:
            self.req.body = go_string(args[0]).encode()
            return None
        return self.req.body.decode("utf-8", "surrogateescape")


def _header_list(headers: dict[str, list[str]], args: tuple[Any, ...]) -> Any:
    """``headerList(k)`` / ``headerList(k, list)`` of a request or a response."""
    if len(args) == 0:
        raise ScriptError(NEED_ARGUMENTS)
    key = canonical_header(go_string(args[0]))
    if len(args) == 1:
        return LuaList(list(headers.get(key, ())))
    headers[key] = _list_strings(args[1])
    return None


class LuaResponse:
    """``response`` of ``modifier/lua-proxy`` and ``modifier/lua-backend`` (lura's
    proxy.Response)."""

    __slots__ = ("resp",)

    def __init__(self, resp: ProxyResponse) -> None:
        self.resp = resp

    def bind(self, resp: ProxyResponse) -> None:
        """Point at `resp` (a response without data gets an empty object, as lura's)."""
        if resp.data is None:
            resp.data = {}
        self.resp = resp

    def isComplete(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.resp.complete
        self.resp.complete = bool(args[0]) and args[0] is not None
        return None

    def statusCode(self, *args: Any) -> Any:
        if len(args) == 0:
            return self.resp.status
        value = args[0]
        self.resp.status = int(value) if isinstance(value, int | float) else 0
        return None

    def data(self, *args: Any) -> Any:
        assert self.resp.data is not None
        return LuaTable(self.resp.data)

    def headers(self, *args: Any) -> Any:
        headers = self.resp.headers
        if len(args) == 0:
            return _string_lists(headers)
        if len(args) == 1:
            values = headers.get(go_string(args[0]))
            return values[0] if values else ""
        self.set_header(canonical_header(go_string(args[0])),
                        None if args[1] is None else go_string(args[1]))
        return None

    def set_header(self, key: str, value: str | None) -> None:
        """``headers(k, v)`` with `key` canonical (a nil value deletes)."""
        if value is None:
            self.resp.headers.pop(key, None)
        else:
            self.resp.headers[key] = [value]

    def headerList(self, *args: Any) -> Any:
        return _header_list(self.resp.headers, args)

    def body(self, *args: Any) -> Any:
        if len(args) >= 1:
            self.resp.raw = go_string(args[0]).encode()
            return None
        return (self.resp.raw or b"").decode("utf-8", "surrogateescape")


OBJECT_METHODS: dict[type, frozenset[str]] = {
    RouterContext: frozenset({"method", "url", "host", "query", "params", "headers",
                              "headerList", "body"}),
    LuaRequest: frozenset({"method", "path", "query", "url", "params", "headers",
                           "headerList", "body"}),
    LuaResponse: frozenset({"isComplete", "statusCode", "data", "headers", "headerList",
                            "body"}),
}
# What each object points at between runs (it holds no request then).
IDLE_REQUEST = Request("GET", "/", "/", "", [], b"", "", "1.1")
IDLE_PROXY_REQUEST = ProxyRequest("GET", "", {}, {}, [], b"")
IDLE_RESPONSE = ProxyResponse({}, False, 0)


class Objects:
    """A state's three objects, idle until a run points them at its request."""

    __slots__ = ("ctx", "request", "response")

    def __init__(self) -> None:
        self.ctx = RouterContext(IDLE_REQUEST, {})
        self.request = LuaRequest(IDLE_PROXY_REQUEST, backend=False)
        self.response = LuaResponse(IDLE_RESPONSE)

    def idle(self) -> None:
        """Drop the run's request and response (a held body may be large)."""
        self.ctx.req = IDLE_REQUEST
        self.ctx.params_ = {}
        self.request.req = IDLE_PROXY_REQUEST
        self.response.resp = IDLE_RESPONSE

    def by_name(self) -> dict[str, Any]:
        """The object each name loads (``ctx.load()``, ``request.load()``,
        ``response.load()``)."""
        return {"ctx": self.ctx, "request": self.request, "response": self.response}


# The methods whose setter form a script's run may keep to hand back at its end (the value
# and key checks done in Lua): ``headers(k, v)`` with string arguments.
DEFERRED = {"ctx": "lower", "request": "canonical", "response": "canonical"}
