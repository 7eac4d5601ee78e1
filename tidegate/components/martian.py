"""``modifier/martian``: google/martian modifiers on a backend's HTTP request and response.

KrakenD CE runs martian in its HTTP client: request modifiers change the request just before it
is sent, response modifiers the raw response before it is decoded. The section is one modifier
(groups combine several). Supported, with martian's JSON fields: ``fifo.Group``,
``priority.Group``, ``header.Modifier``, ``header.Append``, ``header.Blacklist``,
``header.Copy``, ``header.Filter``, ``header.RegexFilter``, ``body.Modifier``,
``querystring.Modifier``, ``querystring.Filter``, ``url.Modifier``, ``url.Filter``,
``cookie.Modifier``, ``port.Modifier``, ``status.Modifier``. ``scope`` is martian's (absent:
both). Unknown keys are ignored, as Go's JSON decoder ignores them.

KrakenD logs a martian section it cannot parse and serves without it; tidegate refuses the
configuration with the location (an unknown modifier, a bad regex, bad base64).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.config.component_schemas import schema_of
from tidegate.errors import ConfigValueError
from tidegate.messages import ClientRequest, ClientResponse, Exchange, canonical_header
from tidegate.upstream.client import parse_target

NAMESPACE = "modifier/martian"

ReqMod = Callable[[ClientRequest], None]
ResMod = Callable[[ClientResponse, ClientRequest], None]


@dataclass(frozen=True, slots=True)
class Modifiers:
    """What one martian JSON object parses to: its request and/or response modifier."""

    request: ReqMod | None
    response: ResMod | None


# --- headers as (name, value) lists, case-insensitive as net/http's Header --------------------

def _get(headers: list[tuple[str, str]], name: str) -> str:
    lname = name.lower()
    return next((v for k, v in headers if k.lower() == lname), "")


def _all(headers: list[tuple[str, str]], name: str) -> list[str]:
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


def _without(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    lname = name.lower()
    return [(k, v) for k, v in headers if k.lower() != lname]


def _set(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [*_without(headers, name), (canonical_header(name), value)]


# --- parsing ------------------------------------------------------------------------------------

class _Parser:
    """martian's parse.FromJSON, with errors located in the configuration."""

    def __init__(self) -> None:
        self.kinds: dict[str, Callable[[dict[str, Any], JsonPath], Modifiers]] = {
            "fifo.Group": self.fifo, "priority.Group": self.priority,
            "header.Modifier": self.header_set, "header.Append": self.header_append,
            "header.Blacklist": self.header_blacklist, "header.Copy": self.header_copy,
            "header.Filter": self.header_filter, "header.RegexFilter": self.header_regex,
            "body.Modifier": self.body, "querystring.Modifier": self.query_set,
            "querystring.Filter": self.query_filter, "url.Modifier": self.url_set,
            "url.Filter": self.url_filter, "cookie.Modifier": self.cookie,
            "port.Modifier": self.port, "status.Modifier": self.status,
        }

    def modifier(self, raw: Any, path: JsonPath) -> Modifiers:
        if not isinstance(raw, dict):
            raise ConfigValueError("expected one martian modifier, such as "
                                   '{"header.Modifier": {...}}', path=path)
        keys = [k for k in raw if not k.startswith(("@", "$", "_", "#"))]
        if len(keys) != 1:
            raise ConfigValueError(f"parse: expected one modifier, received {len(keys)}: "
                                   f"{', '.join(keys)}", path=path)
        kind = keys[0]
        parse = self.kinds.get(kind)
        if parse is None:
            raise ConfigValueError(f"parse: unknown modifier: {kind} (tidegate supports "
                                   f"{', '.join(sorted(self.kinds))})", path=(*path, kind))
        body = raw[kind]
        if not isinstance(body, dict):
            raise ConfigValueError("expected an object", path=(*path, kind))
        return parse(body, (*path, kind))

    @staticmethod
    def _scoped(body: dict[str, Any], path: JsonPath, request: ReqMod | None,
                response: ResMod | None) -> Modifiers:
        """parse.NewResult: ``scope`` picks which halves apply (absent: both it has)."""
        scope = body.get("scope")
        if scope is None:
            return Modifiers(request, response)
        if not isinstance(scope, list):
            raise ConfigValueError('scope: expected ["request"] and/or ["response"]',
                                   path=(*path, "scope"))
        req = res = None
        for s in scope:
            if s == "request" and request is not None:
                req = request
            elif s == "response" and response is not None:
                res = response
            elif s in ("request", "response"):
                raise ConfigValueError(f'parse: invalid scope "{s}" for modifier',
                                       path=(*path, "scope"))
            else:
                raise ConfigValueError(f'parse: invalid scope: {s} not in ["request", '
                                       '"response"]', path=(*path, "scope"))
        return Modifiers(req, res)

    @staticmethod
    def _str(body: dict[str, Any], key: str, path: JsonPath) -> str:
        value = body.get(key, "")
        if not isinstance(value, str):
            raise ConfigValueError(f"{key}: expected a string, got {value!r}", path=(*path, key))
        return value

    def _group(self, body: dict[str, Any], path: JsonPath,
               order: Callable[[list[tuple[Modifiers, int]]], list[Modifiers]]) -> Modifiers:
        items = body.get("modifiers", [])
        if not isinstance(items, list):
            raise ConfigValueError("modifiers: expected a list", path=(*path, "modifiers"))
        parsed: list[tuple[Modifiers, int]] = []
        for i, item in enumerate(items):
            priority = 0
            if isinstance(item, dict) and "priority" in item and "modifier" in item:
                priority = int(item.get("priority") or 0)
                item = item["modifier"]
                parsed.append((self.modifier(item, (*path, "modifiers", i, "modifier")),
                               priority))
            else:
                parsed.append((self.modifier(item, (*path, "modifiers", i)), priority))
        mods = order(parsed)
        reqs = [m.request for m in mods if m.request is not None]
        ress = [m.response for m in mods if m.response is not None]

        def request(req: ClientRequest) -> None:
            for mod in reqs:
                mod(req)

        def response(res: ClientResponse, req: ClientRequest) -> None:
            for mod in ress:
                mod(res, req)

        return self._scoped(body, path, request, response)

    def fifo(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        return self._group(body, path, lambda items: [m for m, _ in items])

    def priority(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        return self._group(body, path, lambda items: [
            m for m, _ in sorted(items, key=lambda x: -x[1])])

    def header_set(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)

        def request(req: ClientRequest) -> None:
            req.headers = _set(req.headers, name, value)

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.headers = _set(res.headers, name, value)

        return self._scoped(body, path, request, response)

    def header_append(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)
        canonical = canonical_header(name)

        def request(req: ClientRequest) -> None:
            req.headers = [*req.headers, (canonical, value)]

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.headers = [*res.headers, (canonical, value)]

        return self._scoped(body, path, request, response)

    def header_blacklist(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        names = body.get("names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigValueError("names: expected a list of header names",
                                   path=(*path, "names"))
        drop = frozenset(n.lower() for n in names)

        def request(req: ClientRequest) -> None:
            req.headers = [(k, v) for k, v in req.headers if k.lower() not in drop]

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.headers = [(k, v) for k, v in res.headers if k.lower() not in drop]

        return self._scoped(body, path, request, response)

    def header_copy(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        src, dst = self._str(body, "from", path), self._str(body, "to", path)

        def request(req: ClientRequest) -> None:
            req.headers = _set(req.headers, dst, _get(req.headers, src))

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.headers = _set(res.headers, dst, _get(res.headers, src))

        return self._scoped(body, path, request, response)

    def _filter(self, body: dict[str, Any], path: JsonPath,
                req_test: Callable[[ClientRequest], bool],
                res_test: Callable[[ClientResponse, ClientRequest], bool] | None,
                with_else: bool = True) -> Modifiers:
        then = self.modifier(body.get("modifier"), (*path, "modifier"))
        other = self.modifier(body["else"], (*path, "else")) \
            if with_else and body.get("else") else Modifiers(None, None)

        def request(req: ClientRequest) -> None:
            mod = then.request if req_test(req) else other.request
            if mod is not None:
                mod(req)

        def response(res: ClientResponse, req: ClientRequest) -> None:
            test = res_test or (lambda _res, r: req_test(r))
            mod = then.response if test(res, req) else other.response
            if mod is not None:
                mod(res, req)

        return self._scoped(body, path, request, response)

    def header_filter(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)

        def matches(headers: list[tuple[str, str]]) -> bool:
            found = _all(headers, name)
            return bool(found) and (not value or value in found)

        return self._filter(body, path, lambda req: matches(req.headers),
                            lambda res, req: matches(res.headers))

    def header_regex(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        header = self._str(body, "header", path)
        try:
            regex = re.compile(self._str(body, "regex", path))
        except re.error as exc:
            raise ConfigValueError(f"regex: {exc}", path=(*path, "regex")) from None

        def test(req: ClientRequest) -> bool:
            value = _get(req.headers, header)
            return bool(value) and regex.search(value) is not None

        return self._filter(body, path, test, None, with_else=False)

    def body(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        content_type = self._str(body, "contentType", path)
        try:
            payload = base64.b64decode(self._str(body, "body", path), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigValueError(f"body: expected base64: {exc}", path=(*path, "body")) \
                from None

        def request(req: ClientRequest) -> None:
            if req.stream is not None:
                req.stream.abandon()
                req.stream = None
            req.body = payload
            req.headers = _set(_without(_without(req.headers, "Content-Encoding"),
                                        "Content-Length"), "Content-Type", content_type)

        def response(res: ClientResponse, req: ClientRequest) -> None:
            if res.stream is not None:
                res.stream.abandon()
                res.stream = None
            res.body = payload
            res.headers = _set(_without(_without(res.headers, "Content-Encoding"),
                                        "Content-Length"), "Content-Type", content_type)

        return self._scoped(body, path, request, response)

    def query_set(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)

        def request(req: ClientRequest) -> None:
            base, _, query = req.request_target.partition("?")
            pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != name]
            pairs.append((name, value))
            _retarget(req, f"{base}?{urlencode(pairs)}")

        return self._scoped(body, path, request, None)

    def query_filter(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)

        def test(req: ClientRequest) -> bool:
            query = dict(parse_qsl(urlsplit(req.request_target).query, keep_blank_values=True))
            return name in query and (not value or query[name] == value)

        return self._filter(body, path, test, None)

    def url_set(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        scheme, host = self._str(body, "scheme", path), self._str(body, "host", path)
        new_path, query = self._str(body, "path", path), self._str(body, "query", path)

        def request(req: ClientRequest) -> None:
            if scheme or host:
                t = req.target
                target = parse_target(f"{scheme or t.scheme}://{host or t.host_header}")
                req.target = target
            base, _, old_query = req.request_target.partition("?")
            base = new_path or base
            q = query or old_query
            _retarget(req, f"{base}?{q}" if q else base)

        return self._scoped(body, path, request, None)

    def url_filter(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        want = {k: self._str(body, k, path) for k in ("scheme", "host", "path", "query")}

        def test(req: ClientRequest) -> bool:
            parts = urlsplit(req.url)
            found = {"scheme": parts.scheme, "host": parts.netloc, "path": parts.path,
                     "query": parts.query}
            return all(not v or found[k] == v for k, v in want.items())

        return self._filter(body, path, test, None)

    def cookie(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        name, value = self._str(body, "name", path), self._str(body, "value", path)
        attributes = [f"{name}={value}"]
        for key, label in (("path", "Path"), ("domain", "Domain")):
            if body.get(key):
                attributes.append(f"{label}={body[key]}")
        if body.get("maxAge"):
            attributes.append(f"Max-Age={int(body['maxAge'])}")
        if body.get("httpOnly"):
            attributes.append("HttpOnly")
        if body.get("secure"):
            attributes.append("Secure")
        set_cookie = "; ".join(attributes)

        def request(req: ClientRequest) -> None:
            existing = _get(req.headers, "Cookie")
            pair = f"{name}={value}"
            req.headers = _set(req.headers, "Cookie", f"{existing}; {pair}" if existing else pair)

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.headers = [*res.headers, ("Set-Cookie", set_cookie)]

        return self._scoped(body, path, request, response)

    def port(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        port = body.get("port")
        default = body.get("defaultForScheme") is True
        remove = body.get("remove") is True

        def request(req: ClientRequest) -> None:
            t = req.target
            if isinstance(port, int):
                new = port
            elif default or remove:
                new = 443 if t.scheme == "https" else 80
            else:
                return
            req.target = parse_target(f"{t.scheme}://{t.host}:{new}")
            _retarget(req, req.request_target)

        return self._scoped(body, path, request, None)

    def status(self, body: dict[str, Any], path: JsonPath) -> Modifiers:
        code = body.get("statusCode")
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
            raise ConfigValueError(f"statusCode: expected an HTTP status, got {code!r}",
                                   path=(*path, "statusCode"))

        def response(res: ClientResponse, req: ClientRequest) -> None:
            res.status = code

        return self._scoped(body, path, None, response)


def _retarget(req: ClientRequest, request_target: str) -> None:
    """A new path/query (and maybe target): keep the absolute URL in step."""
    t = req.target
    req.request_target = request_target
    req.url = f"{t.scheme}://{t.host_header}{request_target}"


_PARSER = _Parser()


def parse(raw: Any, path: JsonPath) -> Modifiers:
    return _PARSER.modifier(raw, path)


def build(ctx: Build[Modifiers], nxt: Exchange) -> Exchange:
    request, response = ctx.config.request, ctx.config.response
    if request is None and response is None:
        return nxt

    async def modified(req: ClientRequest) -> ClientResponse:
        if request is not None:
            request(req)
        res = await nxt(req)
        if response is not None:
            response(res, req)
        return res

    return modified


# bounded: its modifiers are plain calls around the exchange.
COMPONENT: Component[Modifiers] = Component(NAMESPACE, frozenset({Level.CLIENT}), build,
                                            parse=parse, schema=schema_of(NAMESPACE),
                                            order=20, bounded=True)
