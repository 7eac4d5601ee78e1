"""One endpoint compiled into a request handler (lura's endpoint handler + proxy factory).

Stages, in lura's order: request builder (params, input_headers, input_query_strings,
X-Forwarded-*, User-Agent) → endpoint timeout → static proxy → merge of backends (concurrent or
sequential) → per-backend stacks → the router's rendering (X-KrakenD-Completed, Cache-Control,
output encoding, status code rules).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from tidegate import KRAKEND_COMPAT_VERSION
from tidegate.config.model import PLACEHOLDER, EndpointConfig
from tidegate.encoding.renderers import renderer_for, select_output_encoding
from tidegate.pipeline.backend import BackendCall, param_key
from tidegate.pipeline.merge import merge_parallel, merge_sequential
from tidegate.pipeline.messages import (
    BackendFailure,
    BackendTimeout,
    ProxyRequest,
    ProxyResponse,
    canonical_header,
)
from tidegate.pipeline.static import compile_static
from tidegate.server.messages import Request, Response

Proxy = Callable[[ProxyRequest], Awaitable[tuple[ProxyResponse | None, BaseException | None]]]
EndpointHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]

COMPLETED_HEADER = "X-Krakend-Completed"
# KrakenD stamps every endpoint answer with its version; tidegate states the version it follows.
VERSION_HEADER = ("X-Krakend", f"Version {KRAKEND_COMPAT_VERSION}")
DEFAULT_INPUT_HEADERS = ("Content-Type",)
# Framing headers are recomputed by the server; the rest of a no-op answer passes as is.
_NOT_PASSED = frozenset({"Content-Length", "Transfer-Encoding", "Connection", "Date",
                         "Keep-Alive"})
_SEQ_REF = re.compile(r"^resp(\d+)_(.+)$")


def compile_request_builder(cfg: EndpointConfig, user_agent: str
                            ) -> Callable[[Request, dict[str, str]], ProxyRequest]:
    """lura's ``NewRequest``: what of the client request reaches the backends."""
    names = cfg.input_headers if cfg.input_headers else DEFAULT_INPUT_HEADERS
    all_headers = "*" in names
    wanted = {canonical_header(n).lower(): canonical_header(n) for n in names}
    queries = cfg.input_query_strings or ()
    all_query = "*" in queries
    wanted_query = frozenset(queries)

    def build(req: Request, route_params: dict[str, str]) -> ProxyRequest:
        headers: dict[str, list[str]] = {}
        for lname, value in req.headers:
            if all_headers:
                headers.setdefault(canonical_header(lname), []).append(value)
            else:
                canon = wanted.get(lname)
                if canon is not None:
                    headers.setdefault(canon, []).append(value)
        headers.pop("Host", None)
        headers["X-Forwarded-For"] = [req.client_ip]
        headers["X-Forwarded-Host"] = [req.host]
        if "User-Agent" in headers:
            headers["X-Forwarded-Via"] = [user_agent]
        else:
            headers["User-Agent"] = [user_agent]
        query: list[tuple[str, str]] = []
        if req.query and (all_query or wanted_query):
            pairs = parse_qsl(req.query, keep_blank_values=True)
            query = pairs if all_query else [(k, v) for k, v in pairs if k in wanted_query]
        params = {param_key(k): v for k, v in route_params.items()}
        return ProxyRequest(req.method, req.path, params, headers, query, req.body)

    return build


def compile_proxy(cfg: EndpointConfig, backends: list[BackendCall]) -> Proxy:
    """The endpoint's proxy: merge (or single backend) wrapped by the static middleware."""
    sequential = bool((cfg.extra_config.get("proxy") or {}).get("sequential"))
    if sequential and len(backends) > 1:
        refs = [[_SEQ_REF.match(name).groups()  # type: ignore[union-attr]
                 for name in PLACEHOLDER.findall(b.url_pattern) if _SEQ_REF.match(name)]
                for b in cfg.backend]
        inner = merge_sequential(backends, refs, cfg.timeout)
    elif len(backends) > 1:
        # lura gives the merge 85 % of the endpoint timeout, keeping time to render partials.
        inner = merge_parallel(backends, cfg.timeout * 0.85)
    else:
        inner = _single(backends[0], cfg.timeout)
    return compile_static(cfg.extra_config, inner)


def _single(call: BackendCall, timeout: float) -> Proxy:
    async def proxy(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        try:
            async with asyncio.timeout(timeout):
                return await call(req), None
        except BackendFailure as exc:
            return None, exc
        except TimeoutError:
            return None, BackendTimeout()

    return proxy


def compile_endpoint(cfg: EndpointConfig, backends: list[BackendCall], user_agent: str,
                     return_error_msg: bool) -> EndpointHandler:
    """The whole endpoint as one coroutine function of (client request, route params)."""
    build = compile_request_builder(cfg, user_agent)
    proxy = compile_proxy(cfg, backends)
    output = select_output_encoding(cfg.output_encoding, [b.encoding for b in cfg.backend])
    render = renderer_for(output)
    no_op = output == "no-op"
    cache_header = ("Cache-Control", f"public, max-age={int(cfg.cache_ttl)}") \
        if int(cfg.cache_ttl) else None

    async def handle(req: Request, route_params: dict[str, str]) -> Response:
        resp, err = await proxy(build(req, route_params))
        headers: list[tuple[str, str]] = [VERSION_HEADER]
        complete = "false"
        if resp is not None and resp.data:
            if resp.complete:
                complete = "true"
                if cache_header is not None:
                    headers.append(cache_header)
            for k, vs in resp.headers.items():
                headers.extend((k, v) for v in vs)
        headers.append((COMPLETED_HEADER, complete))
        if resp is None:
            status = getattr(err, "status", 500)
            if return_error_msg and err is not None:
                ctype = getattr(err, "content_type", "") or "text/plain; charset=utf-8"
                headers.append(("Content-Type", ctype))
                return Response(status, headers, getattr(err, "message_bytes", None)
                                or str(err).encode())
            return Response(status, headers)
        if no_op:
            return _render_no_op(resp, headers)
        status, body, content_type = render(resp.data, req.header("accept"))
        headers.append(("Content-Type", content_type))
        return Response(status or 200, headers, body)

    return handle


def _render_no_op(resp: ProxyResponse, headers: list[tuple[str, str]]) -> Response:
    """no-op output: the backend's status, headers and body, untouched."""
    if not resp.data:  # the handler copied nothing: copy the backend's headers here
        for k, vs in resp.headers.items():
            if k in _NOT_PASSED:
                continue
            headers.extend((k, v) for v in vs)
    return Response(resp.status, headers, resp.raw or b"")

