"""``security/http``: unrolled/secure v1.15.0 as krakend-httpsecure configures it.

At the root, inside CORS and before routing (a gin engine middleware in krakend-ce), so 404s and
405s get the headers too; ``GET /__health`` does not (krakend-ce registers it first). In order:

* ``allowed_hosts`` (unless ``is_development``): the Host (or the first non-empty of
  ``host_proxy_headers``) must equal one of them, case-insensitively, or match one as a Go
  regexp anchored ``^…$`` with ``allowed_hosts_are_regex``; otherwise ``500 Bad Host``
  (secure's default handler, not 400).
* ``ssl_redirect`` (unless ``is_development``): a request that is not HTTPS (TLS listener, an
  ``https`` absolute target, or one of ``ssl_proxy_headers`` with its value) gets ``301`` to
  ``https://`` + (``ssl_host`` or the host) + the target, with Go's ``http.Redirect`` body.
* headers set before the handler runs: ``Strict-Transport-Security`` (``sts_seconds``, only
  over HTTPS unless ``force_sts_header``; not with ``is_development``), ``X-Frame-Options``
  (``custom_frame_options_value`` or ``DENY`` with ``frame_deny``), ``X-Content-Type-Options:
  nosniff``, ``X-XSS-Protection: 1; mode=block``, ``Content-Security-Policy`` (``$NONCE``
  becomes a fresh ``'nonce-…'`` per request), ``Referrer-Policy``.

In an endpoint's ``extra_config`` (KrakenD EE) the same applies to that endpoint's answers,
and its headers replace the root section's.

``hpkp_public_key`` is accepted and not applied, as in KrakenD CE (HPKP is obsolete and secure
removed it).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from tidegate.components import answer_lines
from tidegate.components.botdetector import compile_pattern
from tidegate.components.seam import Build, Component, Level, answered
from tidegate.components.section import Section
from tidegate.errors import JsonPath
from tidegate.messages import EndpointHandler, Request, Response, ServiceHandler, header_block

H = TypeVar("H", list[tuple[str, str]], bytes)  # a section's headers, as a list or wire lines

NAMESPACE = "security/http"
HEALTH_PATH = "/__health"  # not behind security/http, as in krakend-ce

_BAD_HOST = Response(500, [("Content-Type", "text/plain; charset=utf-8"),
                           ("X-Content-Type-Options", "nosniff")], b"Bad Host\n")


@dataclass(frozen=True, slots=True)
class SecureConfig:
    """The section as krakend-httpsecure reads it."""

    allowed_hosts: tuple[str, ...] = ()
    allowed_hosts_are_regex: bool = False
    host_proxy_headers: tuple[str, ...] = ()
    sts_seconds: int = 0
    sts_include_subdomains: bool = False
    force_sts_header: bool = False
    frame_deny: bool = False
    custom_frame_options_value: str = ""
    content_type_nosniff: bool = False
    browser_xss_filter: bool = False
    content_security_policy: str = ""
    referrer_policy: str = ""
    ssl_redirect: bool = False
    ssl_host: str = ""
    ssl_proxy_headers: tuple[tuple[str, str], ...] = ()
    is_development: bool = False
    hpkp_public_key: str = ""


def parse(raw: Any, path: JsonPath) -> SecureConfig:
    """The typed section; an allowed host that is not a valid Go regexp is an error (Go panics
    at start-up)."""
    s = Section(raw, path, NAMESPACE)
    cfg = SecureConfig(
        allowed_hosts=s.strings("allowed_hosts"),
        allowed_hosts_are_regex=s.bool("allowed_hosts_are_regex"),
        host_proxy_headers=s.strings("host_proxy_headers"),
        sts_seconds=s.integer("sts_seconds", 0, minimum=0),
        sts_include_subdomains=s.bool("sts_include_subdomains"),
        force_sts_header=s.bool("force_sts_header"),
        frame_deny=s.bool("frame_deny"),
        custom_frame_options_value=s.string("custom_frame_options_value"),
        content_type_nosniff=s.bool("content_type_nosniff"),
        browser_xss_filter=s.bool("browser_xss_filter"),
        content_security_policy=s.string("content_security_policy"),
        referrer_policy=s.string("referrer_policy"),
        ssl_redirect=s.bool("ssl_redirect"),
        ssl_host=s.string("ssl_host"),
        ssl_proxy_headers=s.string_map("ssl_proxy_headers"),
        is_development=s.bool("is_development"),
        hpkp_public_key=s.string("hpkp_public_key"),
    )
    if cfg.allowed_hosts_are_regex:
        for i, host in enumerate(cfg.allowed_hosts):
            try:
                compile_pattern(f"^{host}$")
            except ValueError as exc:
                raise s.error(f"allowed_hosts[{i}] is not a valid Go (RE2) regular "
                              f"expression: {exc}", "allowed_hosts", i) from None
    return cfg


HOST_VERDICTS = 1024


def _nonce() -> str:
    """secure's cspRandNonce: 16 random bytes, standard base64."""
    return base64.b64encode(os.urandom(16)).decode()


class Secure:
    """One section compiled: ``process(req)`` → an answer that stops the request, or the
    headers its answer gets."""

    def __init__(self, cfg: SecureConfig) -> None:
        dev = cfg.is_development
        self.check_hosts = bool(cfg.allowed_hosts) and not dev
        self.host_patterns = tuple(compile_pattern(f"^{h}$") for h in cfg.allowed_hosts) \
            if cfg.allowed_hosts_are_regex else ()
        self.hosts = frozenset(h.lower() for h in cfg.allowed_hosts)
        self._verdicts: dict[str, bool] = {}
        self.host_headers = tuple(h.lower() for h in cfg.host_proxy_headers)
        self.redirect = cfg.ssl_redirect and not dev
        self.ssl_host = cfg.ssl_host
        self.ssl_headers = tuple((k.lower(), v) for k, v in cfg.ssl_proxy_headers)
        common: list[tuple[str, str]] = []
        if cfg.custom_frame_options_value:
            common.append(("X-Frame-Options", cfg.custom_frame_options_value))
        elif cfg.frame_deny:
            common.append(("X-Frame-Options", "DENY"))
        if cfg.content_type_nosniff:
            common.append(("X-Content-Type-Options", "nosniff"))
        if cfg.browser_xss_filter:
            common.append(("X-XSS-Protection", "1; mode=block"))
        csp = cfg.content_security_policy
        self.csp_nonce = "$NONCE" in csp
        self.csp_parts = csp.split("$NONCE")
        if csp and not self.csp_nonce:
            common.append(("Content-Security-Policy", csp))
        if cfg.referrer_policy:
            common.append(("Referrer-Policy", cfg.referrer_policy))
        sts: list[tuple[str, str]] = []
        if cfg.sts_seconds != 0 and not dev:
            value = f"max-age={cfg.sts_seconds}"
            if cfg.sts_include_subdomains:
                value += "; includeSubDomains"
            sts.append(("Strict-Transport-Security", value))
        # secure's order: STS first, then the others.
        self.headers_https = sts + common
        self.headers_http = self.headers_https if cfg.force_sts_header else common
        self.needs_ssl = self.redirect or (bool(sts) and not cfg.force_sts_header)
        self.needs_request = self.check_hosts or self.needs_ssl or self.csp_nonce
        # The request's verdict as one closure over this section's constants, built once
        # per generation: a request pays only for the checks its section asks for.
        self.process: Callable[[Request], Response | list[tuple[str, str]]] = self._compile(
            self.headers_https, self.headers_http)
        # The same verdict with the header lines already on the wire's form, for an answer
        # whose head the server starts with them (`Request.head_lines`); not with a nonce.
        self.process_lines: Callable[[Request], Response | bytes] = self._compile(
            header_block(self.headers_https), header_block(self.headers_http))

    def _host_allowed(self, host: str) -> bool:
        """secure's isAllowedHost, remembered per Host value (bounded: forgotten wholesale
        when full): a regex match costs microseconds through RE2's binding, and a gateway
        sees few Host values."""
        if self.host_patterns:
            verdict = any(p.search(host) is not None for p in self.host_patterns)
        else:
            verdict = host.lower() in self.hosts
        if len(self._verdicts) >= HOST_VERDICTS:
            self._verdicts.clear()
        self._verdicts[host] = verdict
        return verdict

    def _compile(self, headers_https: H, headers_http: H) -> Callable[[Request], Response | H]:
        """``process``: a refusal or redirect answer, or the headers to add to the request's
        answer, `headers_https` or `headers_http` (this section's very list or bytes: callers
        copy, never extend them); with a CSP nonce, a new list with its header."""
        check_hosts, host_headers = self.check_hosts, self.host_headers
        verdicts, host_allowed = self._verdicts, self._host_allowed
        needs_ssl, redirect, ssl_host = self.needs_ssl, self.redirect, self.ssl_host
        ssl_headers = self.ssl_headers
        csp_nonce, csp_parts = self.csp_nonce, self.csp_parts

        def process(req: Request) -> Response | H:
            host = req.host
            if host_headers:
                for name in host_headers:
                    value = req.header(name)
                    if value:
                        host = value
                        break
            if check_hosts:
                allowed = verdicts.get(host)
                if allowed is None:
                    allowed = host_allowed(host)
                if not allowed:
                    return _BAD_HOST
            https = False
            if needs_ssl:
                # secure's isSSL: a TLS connection, an https target, or a proxy header saying
                # so (``Header.Get`` of an absent header is "", so a configured "" matches it)
                https = req.tls
                if not https:
                    target = req.raw_target
                    https = target[:1] != "/" and target[:8].lower() == "https://"
                if not https and ssl_headers:
                    sent = req.headers
                    for name, value in ssl_headers:
                        found = ""  # Header.Get: the first value
                        for k, v in sent:
                            if k == name:
                                found = v
                                break
                        if found == value:
                            https = True
                            break
            headers: H
            if https:
                headers = headers_https
            elif redirect:
                return _redirect(req, f"https://{ssl_host or host}{_target(req)}")
            else:
                headers = headers_http
            if csp_nonce and isinstance(headers, list):
                nonce = f"'nonce-{_nonce()}'"
                return cast(H, [*headers, ("Content-Security-Policy", nonce.join(csp_parts))])
            return headers

        return process


def _target(req: Request) -> str:
    """The request's path and query as Go's ``URL.String`` writes them after the host."""
    if req.raw_target.startswith("/"):
        return req.raw_target
    return req.path + (f"?{req.query}" if req.query else "")


def _redirect(req: Request, url: str) -> Response:
    """Go's ``http.Redirect`` with 301: an HTML body for GET, the Content-Type for GET/HEAD."""
    headers = [("Location", url)]
    body = b""
    if req.method in ("GET", "HEAD"):
        headers.append(("Content-Type", "text/html; charset=utf-8"))
    if req.method == "GET":
        body = f'<a href="{html.escape(url)}">Moved Permanently</a>.\n\n'.encode()
    return Response(301, headers, body)


def _merge(headers: list[tuple[str, str]], resp: Response, skip_present: bool) -> Response:
    """`resp` with `headers` first (secure sets them before the handler runs); with
    `skip_present`, a header the answer already carries (an endpoint's own section) is kept
    instead (Set semantics)."""
    if skip_present and headers:
        have = {name for name, _ in resp.headers}
        headers = [h for h in headers if h[0] not in have]
    return Response(resp.status, headers + resp.headers, resp.body, resp.stream)


def service_stage(secure: Secure, inner: ServiceHandler, *,
                  endpoints_override: bool = False) -> ServiceHandler:
    """The root section around routing; ``GET /__health`` passes untouched.
    ``endpoints_override``: some endpoint has its own section, whose headers win."""
    if not secure.needs_request:
        static = secure.headers_http

        async def headers_only(req: Request) -> Response:
            resp = await inner(req)
            if req.path == HEALTH_PATH and req.method == "GET":
                return resp
            return _merge(static, resp, endpoints_override)

        return headers_only

    process = secure.process

    async def secured(req: Request) -> Response:
        if req.path == HEALTH_PATH and req.method == "GET":
            return await inner(req)
        verdict = process(req)
        if isinstance(verdict, Response):
            return verdict
        return _merge(verdict, await inner(req), endpoints_override)

    return secured


def endpoint_stage(secure: Secure, inner: EndpointHandler, *, head_lines: bool = False
                   ) -> EndpointHandler:
    """An endpoint's own section (KrakenD EE): the same checks and headers on its answers.

    ``head_lines``: nothing between this stage and the server reads or adds an answer's
    headers (`_lines_reach_the_wire`), so the section's lines, prepared once, are handed to
    the server with the request (`Request.head_lines`, written first in the answer's head)
    and the endpoint's own answer goes out as it is: no coroutine and no new `Response` per
    request. The bytes on the wire are the same."""
    if head_lines and not secure.csp_nonce:
        return _lines_stage(secure, inner)
    if not secure.needs_request:  # the usual policy: the same headers on every answer
        static = secure.headers_http

        async def headers_only(req: Request, params: dict[str, str]) -> Response:
            resp = await inner(req, params)
            return Response(resp.status, static + resp.headers, resp.body, resp.stream)

        return headers_only

    process = secure.process

    async def secured(req: Request, params: dict[str, str]) -> Response:
        verdict = process(req)
        if isinstance(verdict, Response):
            return verdict
        resp = await inner(req, params)
        return Response(resp.status, verdict + resp.headers, resp.body, resp.stream)

    return secured


def _lines_stage(secure: Secure, inner: EndpointHandler) -> EndpointHandler:
    """`endpoint_stage` with the section's header lines written by the server."""
    if not secure.needs_request:
        lines = header_block(secure.headers_http)

        def headers_only(req: Request, params: dict[str, str]) -> Awaitable[Response]:
            req.head_lines += lines  # after the CORS sections' lines, if any
            return inner(req, params)

        return headers_only

    process = secure.process_lines

    def secured(req: Request, params: dict[str, str]) -> Awaitable[Response]:
        verdict = process(req)
        if isinstance(verdict, Response):
            return answered(verdict)
        req.head_lines += verdict
        return inner(req, params)

    return secured


def _lines_reach_the_wire(ctx: Build[SecureConfig]) -> bool:
    """Whether this endpoint's answers reach the server with no other component reading or
    prepending headers after this section added its own (`answer_lines`: the CORS sections
    around it write lines too, before these)."""
    endpoint = ctx.endpoint
    return endpoint is not None and answer_lines.endpoint_secure(ctx.service, endpoint)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "security headers, allowed hosts and HTTPS redirects, as unrolled/secure",
    "properties": {
        "allowed_hosts": {"type": "array", "items": {"type": "string"},
                          "description": "hosts served; others get 500 Bad Host"},
        "allowed_hosts_are_regex": {"type": "boolean"},
        "host_proxy_headers": {"type": "array", "items": {"type": "string"}},
        "sts_seconds": {"type": "integer", "minimum": 0},
        "sts_include_subdomains": {"type": "boolean"},
        "force_sts_header": {"type": "boolean"},
        "frame_deny": {"type": "boolean"},
        "custom_frame_options_value": {"type": "string"},
        "content_type_nosniff": {"type": "boolean"},
        "browser_xss_filter": {"type": "boolean"},
        "content_security_policy": {"type": "string"},
        "referrer_policy": {"type": "string"},
        "ssl_redirect": {"type": "boolean"},
        "ssl_host": {"type": "string"},
        "ssl_proxy_headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "is_development": {"type": "boolean"},
        "hpkp_public_key": {"type": "string", "description": "accepted and not applied, as "
                            "in KrakenD CE (HPKP is obsolete)"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


def build(ctx: Build[SecureConfig], inner: Any) -> Any:
    """The root section around routing, or an endpoint's around its handler."""
    secure = Secure(ctx.config)
    if ctx.level is Level.SERVICE:
        override = any(NAMESPACE in ep.extra_config for ep in ctx.service.endpoints)
        return service_stage(secure, inner, endpoints_override=override)
    return endpoint_stage(secure, inner, head_lines=_lines_reach_the_wire(ctx))


# One registration per level (components/catalog.py): between CORS (outside) and the bot
# detector (inside), as krakend-ce's gin engine; at an endpoint (EE), outside its bot detector.
COMPONENTS: tuple[Component[SecureConfig], ...] = (
    Component(NAMESPACE, frozenset({Level.SERVICE}), build, parse, SCHEMA, order=30),
    Component(NAMESPACE, frozenset({Level.ROUTER}), build, parse, SCHEMA, order=62),
)
