"""``modifier/lua-endpoint`` (service and router), ``modifier/lua-proxy``, ``modifier/lua-backend``.

Where krakend-ce runs them: the endpoint script as gin middleware before the endpoint's
handler (a service-level section as engine middleware, before routing), the proxy script
around the endpoint's proxy (``pre`` before the backends, ``post`` on the merged response), the
backend script around one backend call after lura's load balancer gave the request its URL.

Router errors answer with an empty body (gin's AbortWithError): a ``custom_error`` status (and
its Content-Type) or 500; the service level always answers 500. Proxy and backend errors are
the proxy's errors: their status reaches the client, their text with ``return_error_msg``.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from tidegate.bodies import BodyTooLarge
from tidegate.components.lua.config import LuaConfig, parse
from tidegate.components.lua.script import LuaFailure, Script
from tidegate.components.seam import Build, Component, Level
from tidegate.golang.url_values import encode_query
from tidegate.messages import (
    BackendProxy,
    EndpointHandler,
    PayloadTooLarge,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    Request,
    Response,
    ServiceHandler,
)
from tidegate.upstream.client import parse_target

log = logging.getLogger("tidegate.lua")

ENDPOINT_NS = "modifier/lua-endpoint"
PROXY_NS = "modifier/lua-proxy"
BACKEND_NS = "modifier/lua-backend"
BODY_LIMIT = 32 << 20  # a body a script may read is held whole: bounded as every held body

_CODE = {"type": "string", "description": "Lua code"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Lua scripts (krakend-lua)",
    "properties": {
        "sources": {"type": "array", "items": {"type": "string"},
                    "description": "Lua files, joined into one chunk run before the code"},
        "pre": {**_CODE, "description": "Lua code run before the next stage"},
        "post": {**_CODE, "description": "Lua code run on the response (not at router level)"},
        "live": {"type": "boolean", "default": False,
                 "description": "re-read the sources on every request"},
        "allow_open_libs": {"type": "boolean", "default": False,
                            "description": "give scripts Lua's standard libraries"},
        "skip_next": {"type": "boolean", "default": False,
                      "description": "do not call the next stage; post runs on an empty "
                                     "response"},
        "md5": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "md5 hex digest of each source file"},
        "max_instructions": {"type": "integer", "minimum": 1,
                             "description": "tidegate: instructions one script run may use"},
        "max_time": {"type": "string",
                     "description": "tidegate: CPU time one script run may use (1s)"},
    },
    "additionalProperties": False,
}


def _needs_body(cfg: LuaConfig) -> bool:
    """Whether a script may read the body (then a streamed body is held first)."""
    return "body" in cfg.pre or "body" in cfg.post or any("body" in s.text for s in cfg.sources)


def build_endpoint(ctx: Build[LuaConfig], nxt: Any) -> Any:
    if ctx.level is Level.SERVICE:
        return _service(ctx, nxt)
    return _router(ctx, nxt)


def _service(ctx: Build[LuaConfig], nxt: ServiceHandler) -> ServiceHandler:
    script = Script(ctx.config, "[SERVICE: Gin]")
    body = _needs_body(ctx.config)

    async def service(req: Request) -> Response:
        if body and req.stream is not None:
            try:
                req.body = await req.stream.read_all(BODY_LIMIT)
            except BodyTooLarge:
                return Response(413)
            req.stream = None
        try:
            script.run_ctx(req, {})
        except LuaFailure as exc:
            log.error("[SERVICE: Gin][Lua] %s", exc)
            return Response(500)
        return await nxt(req)

    return service


def _router(ctx: Build[LuaConfig], nxt: EndpointHandler) -> EndpointHandler:
    assert ctx.endpoint is not None
    place = f"[ENDPOINT: {ctx.endpoint.endpoint}]"
    script = Script(ctx.config, place)
    body = _needs_body(ctx.config)

    async def endpoint(req: Request, params: dict[str, str]) -> Response:
        if body and req.stream is not None:
            try:
                req.body = await req.stream.read_all(BODY_LIMIT)
            except BodyTooLarge:
                return Response(413)
            req.stream = None
        try:
            script.run_ctx(req, params)
        except LuaFailure as exc:
            if exc.has_status:
                headers = [("Content-Type", exc.content_type)] if exc.content_type else []
                return Response(exc.status, headers)
            log.error("%s[Lua] %s", place, exc)
            return Response(500)
        return await nxt(req, params)

    return endpoint


def build_proxy(ctx: Build[LuaConfig], nxt: Proxy) -> Proxy:
    assert ctx.endpoint is not None
    cfg = ctx.config
    script = Script(cfg, f"[ENDPOINT: {ctx.endpoint.endpoint}]")
    body = _needs_body(cfg)

    async def proxy(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        if body and req.stream is not None:
            try:
                req.body = await req.stream.read_all(BODY_LIMIT)
            except BodyTooLarge:
                return None, PayloadTooLarge()
            req.stream = None
        try:
            rt, env = script.start(req, backend=False)
        except LuaFailure as exc:
            return None, exc
        if cfg.skip_next:
            resp = ProxyResponse({}, False, 0)
        else:
            got, err = await nxt(req)
            if err is not None:
                return got, err
            resp = got if got is not None else ProxyResponse({}, False, 0)
        try:
            script.finish(rt, env, req, False, resp)
        except LuaFailure as exc:
            return None, exc
        return resp, None

    return proxy


def _base(host: str) -> str:
    """The URL base of a host (a host the client cannot use stays as written: its requests
    fail in the exchange, as without the script)."""
    try:
        t = parse_target(host)
    except ValueError:
        return host
    return f"{t.scheme}://{t.host_header}{t.base_path}"


def build_backend(ctx: Build[LuaConfig], nxt: BackendProxy) -> BackendProxy:
    assert ctx.backend is not None
    cfg = ctx.config
    script = Script(cfg, f"[BACKEND: {ctx.backend.url_pattern}]")
    body = _needs_body(cfg)
    # lura's load balancer gives the request its URL before this stage: the same round robin
    bases = [_base(h) for h in ctx.backend.host] or [""]
    next_base = itertools.cycle(bases).__next__

    async def backend(req: ProxyRequest) -> ProxyResponse:
        if body and req.stream is not None:
            try:
                req.body = await req.stream.read_all(BODY_LIMIT)
            except BodyTooLarge:
                raise PayloadTooLarge() from None
            req.stream = None
        url = next_base() + req.path
        if req.query:
            url += ("&" if "?" in req.path else "?") + encode_query(req.query)
        # lura clones the request per backend: a script's change stays with this backend
        req = ProxyRequest(req.method, req.path, dict(req.params),
                           {k: list(v) for k, v in req.headers.items()}, list(req.query),
                           req.body, req.stream, url)
        rt, env = script.start(req, backend=True)
        resp = ProxyResponse({}, False, 0) if cfg.skip_next else await nxt(req)
        script.finish(rt, env, req, True, resp)
        return resp

    return backend


ENDPOINT: Component[LuaConfig] = Component(
    ENDPOINT_NS, frozenset({Level.SERVICE, Level.ROUTER}), build_endpoint, parse=parse,
    schema=SCHEMA, order=20)
PROXY: Component[LuaConfig] = Component(
    PROXY_NS, frozenset({Level.PROXY}), build_proxy, parse=parse, schema=SCHEMA, order=30)
BACKEND: Component[LuaConfig] = Component(
    BACKEND_NS, frozenset({Level.BACKEND}), build_backend, parse=parse, schema=SCHEMA,
    order=20)
COMPONENTS = [ENDPOINT, PROXY, BACKEND]
