"""One backend compiled into an async callable (lura's per-backend stack).

Order, outermost first, as lura's ``newStack``: request builder (url_pattern with params) →
concurrent calls → host round-robin → HTTP exchange (redirects followed as Go's client does) →
status check → decode by ``encoding`` → response manipulation. Everything that depends only on
the configuration is computed here, once per generation.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urljoin, urlsplit

from tidegate.config.model import PLACEHOLDER, BackendConfig
from tidegate.encoding.decoders import DecodeError, decoder_for
from tidegate.pipeline.manipulation import compile_backend_formatter
from tidegate.pipeline.messages import (
    BackendDecodeError,
    BackendFailure,
    BackendStatusError,
    BackendTimeout,
    BackendUnavailable,
    ProxyRequest,
    ProxyResponse,
    canonical_header,
)
from tidegate.upstream.client import Target, UpstreamClient, UpstreamError, parse_target

BackendCall = Callable[[ProxyRequest], Awaitable[ProxyResponse]]

_MAX_REDIRECTS = 10
_SENSITIVE = frozenset({"Authorization", "Www-Authenticate", "Cookie", "Cookie2"})
_HOP_BY_HOP = frozenset({"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                         "Upgrade", "Te", "Trailer", "Host", "Content-Length"})


def param_key(name: str) -> str:
    """lura's parameter key: ``foo`` → ``Foo`` (only the first letter changes)."""
    return name[:1].upper() + name[1:]


def compile_path(url_pattern: str) -> Callable[[dict[str, str]], str]:
    """``/users/{id}?x={y}`` → a function of the params, split at compile time."""
    pieces: list[tuple[bool, str]] = []
    pos = 0
    for m in PLACEHOLDER.finditer(url_pattern):
        if m.start() > pos:
            pieces.append((False, url_pattern[pos:m.start()]))
        pieces.append((True, param_key(m.group(1))))
        pos = m.end()
    if pos < len(url_pattern):
        pieces.append((False, url_pattern[pos:]))
    if not any(is_param for is_param, _ in pieces):
        return lambda params: url_pattern

    def render(params: dict[str, str]) -> str:
        return "".join(params.get(text, "") if is_param else text for is_param, text in pieces)

    return render


def encode_query(query: list[tuple[str, str]]) -> str:
    """Go's ``url.Values.Encode``: keys sorted, values in order, query-escaped."""
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}".replace("%20", "+")
                    for k in sorted(grouped) for v in grouped[k])


def filter_names(allowed: tuple[str, ...] | None) -> Callable[[str], bool] | None:
    """A predicate for an input_headers / input_query_strings list; None means 'keep all'."""
    if allowed is None or "*" in allowed:
        return None
    wanted = frozenset(allowed)
    return wanted.__contains__


class CompiledBackend:
    """A backend ready to serve: call it with a ProxyRequest."""

    def __init__(self, cfg: BackendConfig, client: UpstreamClient, user_agent: str) -> None:
        self.cfg = cfg
        self.client = client
        self.user_agent = user_agent
        self.targets = [parse_target(h) for h in cfg.host]
        self._next_target = itertools.cycle(self.targets).__next__
        self.path = compile_path(cfg.url_pattern)
        self.no_op = cfg.encoding == "no-op"
        self.decode = None if self.no_op else decoder_for(cfg.encoding, cfg.is_collection)
        self.format = compile_backend_formatter(dict(cfg.raw))
        http_cfg = cfg.extra_config.get("backend/http")
        self.error_details: str | None = None
        if isinstance(http_cfg, dict) and isinstance(http_cfg.get("return_error_details"), str):
            self.error_details = http_cfg["return_error_details"]
        self.header_filter = filter_names(
            tuple(canonical_header(h) for h in cfg.input_headers)
            if cfg.input_headers is not None else None)
        self.query_filter = filter_names(cfg.input_query_strings)
        self.timeout = cfg.timeout
        self.concurrent = cfg.concurrent_calls

    async def __call__(self, req: ProxyRequest) -> ProxyResponse:
        if self.concurrent <= 1:
            return await self._call_once(req)
        return await self._first_good(req)

    async def _first_good(self, req: ProxyRequest) -> ProxyResponse:
        """``concurrent_calls``: the same request N times, the first good answer wins."""
        tasks = [asyncio.ensure_future(self._call_once(req)) for _ in range(self.concurrent)]
        error: BaseException | None = None
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    return await next_done
                except BackendFailure as exc:
                    error = exc
            assert error is not None
            raise error
        finally:
            for t in tasks:
                t.cancel()

    async def _call_once(self, req: ProxyRequest) -> ProxyResponse:
        target = self._next_target()
        path = self.path(req.params)
        query = req.query if self.query_filter is None else [
            (k, v) for k, v in req.query if self.query_filter(k)]
        if query:
            extra = encode_query(query)
            path = f"{path}&{extra}" if "?" in path else f"{path}?{extra}"
        headers = [(k, v) for k, vs in req.headers.items()
                   if k not in _HOP_BY_HOP and (self.header_filter is None or self.header_filter(k))
                   for v in vs]
        try:
            async with asyncio.timeout(self.timeout):
                status, resp_headers, body, url = await self._exchange(
                    target, self.cfg.method, target.base_path + path, headers, req.body)
        except TimeoutError:
            raise BackendTimeout() from None
        except UpstreamError as exc:
            raise BackendUnavailable(
                f'{self.cfg.method.title()} "{target.scheme}://{target.host_header}'
                f'{target.base_path}{path}": {exc}') from None
        if self.no_op:
            return ProxyResponse({}, True, status, _header_map(resp_headers), body)
        if status not in (200, 201):
            ctype = next((v for k, v in resp_headers if k.lower() == "content-type"), "")
            err = BackendStatusError(status, self.cfg.method, self.cfg.url_pattern, url, body,
                                     ctype)
            if self.error_details is not None:
                data = {f"error_{self.error_details}": {
                    "http_status_code": status, "http_body": body.decode("utf-8", "replace"),
                    "http_body_encoding": ctype}}
                return ProxyResponse(data, False, status)
            raise err
        assert self.decode is not None
        try:
            data = self.decode(body)
        except DecodeError as exc:
            raise BackendDecodeError(str(exc)) from None
        return ProxyResponse(self.format(data), True)

    async def _exchange(self, target: Target, method: str, request_target: str,
                        headers: list[tuple[str, str]], body: bytes
                        ) -> tuple[int, list[tuple[str, str]], bytes, str]:
        """Send, following redirects as Go's http.Client does (at most 10)."""
        url = f"{target.scheme}://{target.host_header}{request_target}"
        for _ in range(_MAX_REDIRECTS + 1):
            resp = await self.client.send(target, method, request_target, headers, body)
            if resp.status not in (301, 302, 303, 307, 308):
                return resp.status, resp.headers, resp.body, url
            location = resp.header("Location")
            if not location:
                return resp.status, resp.headers, resp.body, url
            previous, url = url, urljoin(url, location)
            parts = urlsplit(url)
            new_target = parse_target(f"{parts.scheme}://{parts.netloc}")
            # Go's client: Referer is the previous URL; credentials stay on the same host.
            headers = [(k, v) for k, v in headers if k != "Referer" and (
                new_target.host_header == target.host_header or k not in _SENSITIVE)]
            if not (previous.startswith("https:") and url.startswith("http:")):
                headers.append(("Referer", previous))
            target = new_target
            request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if resp.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, body = "GET", b""
        raise UpstreamError("stopped after 10 redirects")


def _header_map(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in headers:
        out.setdefault(canonical_header(k), []).append(v)
    return out

