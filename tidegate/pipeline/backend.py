"""One backend compiled into an async callable (lura's per-backend stack).

Order, outermost first, as lura's ``newStack``: concurrent calls → request builder (url_pattern
with params, input_query_strings, input_headers) → backend components (see
:mod:`tidegate.components`) → HTTP exchange on the next host (redirects followed as Go's client
does) → status check (``backend/http``) → decode by ``encoding`` → response manipulation.
Everything that depends only on the configuration is computed here, once per generation.

Whatever goes wrong on the wire or in the body becomes a ``BackendFailure``: a backend can make
a request fail, never the worker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Final
from urllib.parse import quote, unquote, urljoin, urlsplit

from tidegate.bodies import BodyStream, BodyTooLarge
from tidegate.components import Assembly, Level
from tidegate.config.model import PLACEHOLDER, BackendConfig
from tidegate.encoding.decoders import DecodeError, decoder_for
from tidegate.golang.url_values import encode_query
from tidegate.messages import (
    BackendDecodeError,
    BackendDone,
    BackendFailed,
    BackendFailure,
    BackendHTTPError,
    BackendProxy,
    BackendStatusError,
    BackendTimeout,
    BackendTrace,
    BackendUnavailable,
    ClientRequest,
    ClientResponse,
    Exchange,
    Memo,
    PayloadTooLarge,
    ProxyRequest,
    ProxyResponse,
    TapDone,
    TapFailed,
    TapTrace,
    backend_tap_of,
    canonical_header,
    tap_of,
)
from tidegate.pipeline.manipulation import compile_backend_formatter
from tidegate.upstream.client import (
    HeadLines,
    Pending,
    Pool,
    Target,
    UpstreamClient,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    parse_target,
)

# A compiled backend is a coroutine function: a merge hands its calls to loop.create_task().
BackendCall = Callable[[ProxyRequest], Coroutine[Any, Any, ProxyResponse]]

log = logging.getLogger("tidegate.backend")

_MAX_REDIRECTS = 10
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# What an exchange tap (`messages.TapDone`) is told of a 200/201 answer read whole and decoded:
# its headers are not decoded for it, since a tap reads them only for a streamed answer's
# length (the metrics' `http.client.response.size`). Never written to.
_UNREAD_HEADERS: Final[list[tuple[str, str]]] = []
_KNOWN_TARGETS: Final = 256
# The clock a tap's start is read from, as a C static (a module global read from the
# module's dict costs ~130 instructions a call).
_CLOCK: Final = perf_counter
_SENSITIVE = frozenset({"Authorization", "Www-Authenticate", "Cookie", "Cookie2"})
_HOP_BY_HOP: Final = frozenset({"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                         "Upgrade", "Te", "Trailer", "Host", "Content-Length"})
# lura gives concurrent calls 75 % of the backend timeout, keeping time to answer.
CONCURRENT_SHARE = 0.75

# Go's url.Parse rejects control bytes; a path of pchars only is sent as written, anything else
# is unescaped and escaped again (URL.EscapedPath).
_CTL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_PCHAR = re.compile(r"[^A-Za-z0-9\-_.~!$&'()*+,;=:@\[\]%/]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_GO_PATH_SAFE = "/$&+,:;=@"


def param_key(name: str) -> str:
    """lura's parameter key: ``foo`` → ``Foo`` (only the first letter changes)."""
    return name[:1].upper() + name[1:]


def lura_pattern(url_pattern: str) -> str:
    """The url_pattern as lura stores it (``{id}`` → ``{{.Id}}``): error messages show it."""
    return PLACEHOLDER.sub(lambda m: "{{." + param_key(m.group(1)) + "}}", url_pattern)


def compile_path(url_pattern: str) -> Callable[[dict[str, str]], str]:
    """``/users/{id}?x={y}`` → a function of the params, split at compile time.

    A placeholder without a value stays as lura leaves it (``{{.Id}}``), as GeneratePath does.
    """
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
    parts: list[tuple[str, str, Callable[[str], str] | None]] = []
    in_query = False
    for is_param, text in pieces:
        if is_param:
            parts.append((text, "{{." + text + "}}", _query_safe if in_query else _path_safe))
        else:
            parts.append((text, "", None))
            in_query = in_query or "?" in text
    frozen = tuple(parts)

    def render(params: dict[str, str]) -> str:
        out = []
        for text, missing, escape in frozen:
            if escape is None:
                out.append(text)
            else:
                value = params.get(text)
                out.append(missing if value is None else escape(value))
        return "".join(out)

    return render


# A route parameter arrives percent-decoded (as in KrakenD). Put back verbatim, `%2F`, `%3F`,
# `%23`, `%2e%2e` or `%25` would turn into a path separator, a query, a fragment, a parent
# segment or a second decoding at the backend: those few characters are encoded again, so the
# backend URL means what the client's did (nginx and Envoy forward them encoded). Everything
# else is inserted as KrakenD inserts it.
_PATH_SPECIAL = re.compile(r"[/?#%]")
_QUERY_SPECIAL = re.compile(r"[&#%]")
_DOT_SEGMENTS = frozenset({".", ".."})


def _path_safe(value: str) -> str:
    if _PATH_SPECIAL.search(value) is None:
        return value if value not in _DOT_SEGMENTS else value.replace(".", "%2E")
    return (value.replace("%", "%25").replace("/", "%2F").replace("?", "%3F")
            .replace("#", "%23"))


def _query_safe(value: str) -> str:
    if _QUERY_SPECIAL.search(value) is None:
        return value
    return value.replace("%", "%25").replace("&", "%26").replace("#", "%23")


def request_target(raw: str, base: str) -> str:
    """Go's ``url.Parse(host + path).RequestURI()``: the request line's target, or
    ``BackendFailure`` for what Go refuses (control bytes, bad escapes)."""
    path, sep, query = raw.partition("?")
    if _NOT_PCHAR.search(path) is None and query.isascii() and _CTL.search(query) is None \
            and ("%" not in path or _BAD_ESCAPE.search(path) is None):
        return raw
    if _CTL.search(raw) is not None:
        raise BackendFailure(f'parse "{base}{raw}": net/url: invalid control character in URL')
    bad = _BAD_ESCAPE.search(path)
    if bad is not None:
        raise BackendFailure(f'parse "{base}{raw}": invalid URL escape '
                             f'"{path[bad.start():bad.start() + 3]}"')
    if _NOT_PCHAR.search(path) is not None:
        path = quote(unquote(path), safe=_GO_PATH_SAFE)
    target = path + sep + query
    # Go writes the UTF-8 bytes of a raw query; the client encodes the head as latin-1.
    return target if target.isascii() else target.encode().decode("latin-1")


def filter_names(allowed: tuple[str, ...] | None) -> Callable[[str], bool] | None:
    """A predicate for an input_headers / input_query_strings list; None means 'keep all'."""
    if allowed is None or "*" in allowed:
        return None
    wanted = frozenset(allowed)
    return wanted.__contains__


@dataclass(frozen=True, slots=True)
class Unusable:
    """A host Go's HTTP client refuses at request time, with the error it gives."""

    host: str | None  # None: the backend has no host at all

    def error(self, method: str, path: str) -> str:
        if self.host is None:
            return "no hosts available"  # lura's sd.ErrNoHosts
        url = self.host + path
        scheme = _SCHEME.match(url)  # url.Parse lower-cases it
        return (f'{method.title()} "{url}": unsupported protocol scheme '
                f'"{scheme.group(1).lower() if scheme else ""}"')


_NO_HOSTS = Unusable(None)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _target(host: str) -> Target | Unusable:
    try:
        return parse_target(host)
    except ValueError:
        return Unusable(host)


class FanOut:
    """What the backends a parallel merge starts at once read of the endpoint's request
    (one `ProxyRequest`, which none of them changes): read once for all of them, with the
    loop's time their deadlines count from and the header lines they share."""

    __slots__ = ("body", "headers", "lines", "now", "params", "plain", "query")

    def __init__(self, req: ProxyRequest, now: float) -> None:
        self.plain = req.url is None and req.stream is None  # else no backend starts so
        self.params = req.params
        self.query = req.query
        self.headers = req.headers
        self.body = req.body
        self.now = now
        self.lines: HeadLines | None = None  # made by the first backend without a filter


class CompiledBackend:
    """A backend ready to serve: call it with the endpoint's ProxyRequest."""

    def __init__(self, cfg: BackendConfig, client: UpstreamClient, user_agent: str,
                 registry: Assembly | None = None, *, stream_answer: bool = False
                 ) -> None:
        self.cfg = cfg
        self.client = client
        self.user_agent = user_agent
        # A host KrakenD's HTTP client cannot use (no host at all, a `ws://` one kept verbatim
        # by disable_host_sanitize) is accepted as KrakenD accepts it: its requests fail.
        self.targets = [_target(h) for h in cfg.host]
        self._next_target = itertools.cycle(self.targets or [_NO_HOSTS]).__next__
        self._origins = {f"{t.scheme}://{t.host_header}": t for t in self.targets
                         if isinstance(t, Target) and not t.base_path}
        self.path = compile_path(cfg.url_pattern)
        # Request targets already checked and escaped as Go's URL does (`request_target`
        # depends on the path alone): the same path is not scanned again on every request.
        self._request_targets: dict[str, str] = {}
        self.method = cfg.method  # read per request (the config's object is interpreted)
        self.error_prefix = f"[{cfg.method} {lura_pattern(cfg.url_pattern)}]"
        self.no_op = cfg.encoding == "no-op"
        # A no-op answer that alone makes the endpoint's answer is copied out as it arrives.
        self.stream_answer = self.no_op and stream_answer and cfg.concurrent_calls <= 1
        self.decode = None if self.no_op else decoder_for(cfg.encoding, cfg.is_collection)
        self.format = compile_backend_formatter(cfg)
        # lura's GetHTTPStatusHandler (the model applies its precedence).
        details = cfg.http.error_details
        self.error_details = f"error_{details}" if details is not None else None
        self.error_code = cfg.http.error_code
        self.header_filter = filter_names(
            tuple(canonical_header(h) for h in cfg.input_headers)
            if cfg.input_headers is not None else None)
        self.query_filter = filter_names(cfg.input_query_strings)
        self.timeout = cfg.timeout
        self.concurrent = cfg.concurrent_calls
        self.concurrent_timeout = cfg.timeout * CONCURRENT_SHARE
        # The request executor's components (HTTP cache...): None when none applies, so the
        # plain exchange allocates nothing for them.
        executor: Exchange | None = None if registry is None else registry.wrap(
            Level.CLIENT, self._client_exchange, cfg.extra_config, backend=cfg)
        self.executor = None if executor == self._client_exchange else executor
        # Executor components that only watch the exchange are called inline around it.
        tap = None if self.executor is None else tap_of(self.executor)
        self.tap = tap if tap is not None and tap.below == self._client_exchange else None
        # ...its hooks, read from here (an attribute of this compiled class) per request.
        self.tap_done: TapDone | None = None if self.tap is None else self.tap.done
        self.tap_failed: TapFailed | None = None if self.tap is None else self.tap.failed
        self.tap_trace: TapTrace | None = None if self.tap is None else self.tap.trace
        send: BackendProxy = self._send if registry is None else registry.wrap(
            Level.BACKEND, self._send, cfg.extra_config, backend=cfg)
        # A BACKEND stage that only watches the call (the metrics') and wraps nothing but
        # `_send` is not called: the entry points report to its tap around `_send` instead.
        watch = backend_tap_of(send)
        if watch is not None and watch.below == self._send:
            send = self._send
        else:
            watch = None
        self.watched = watch is not None
        self.watch_done: BackendDone | None = None if watch is None else watch.done
        self.watch_failed: BackendFailed | None = None if watch is None else watch.failed
        self.watch_trace: BackendTrace | None = None if watch is None else watch.trace
        self.send = send
        # No backend component may change the request on its way to the wire: a merge can
        # hand this backend the endpoint's request itself instead of a copy.
        self.keeps_request = self.send == self._send
        # The one pooled target of a backend a merge may start without a task (`start`): no
        # component around the exchange, one call, one host.
        only = self.targets[0] if len(self.targets) == 1 else None
        self.fan_target = only if isinstance(only, Target) and self.keeps_request \
            and self.executor is None and self.concurrent <= 1 and not self.stream_answer \
            and not self.watched else None
        self.origin = f"{only.scheme}://{only.host_header}" if isinstance(only, Target) else ""
        # The one target `_send` may reach without the client's coroutine (see there).
        # A tapped chain (metrics; traces when not sampled) is sent from here as well.
        self.lone_target = only if isinstance(only, Target) and (
            self.executor is None or self.tap is not None) and not self.stream_answer else None
        self.lone_base = "" if self.lone_target is None else \
            f"{self.origin}{self.lone_target.base_path}"
        self._running: asyncio.AbstractEventLoop | None = None
        self._fan_pool: Pool | None = None  # fan_target's (lone_target's), once asked for
        # A cache hit's rendering may be remembered (`messages.Memo`) when the answer reaches
        # the endpoint as the cache served it: the cache is the only executor component and
        # no backend component sees the answer. The endpoint decides whether it renders the
        # same bytes for every such hit (`memo_slot` is the key it keeps them under).
        self.memo_slot: object | None = None
        # Whether anything runs outside this backend's own deadline (then the endpoint puts
        # its timeout around the call): a backend or executor component that is not
        # `bounded`. Without a registry, whatever the extra_config holds.
        self.outside_deadline = bool(cfg.extra_config)
        if registry is not None:
            executors = registry.applied(Level.CLIENT, cfg.extra_config)
            backend_level = registry.applied(Level.BACKEND, cfg.extra_config)
            self.outside_deadline = not all(c.bounded for c in (*executors, *backend_level))
            if not self.no_op and self.executor is not None and len(executors) == 1 \
                    and not backend_level:
                self.memo_slot = object()

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, kept: asyncio.get_running_loop() makes a getpid() system call on
        every call (CPython 3.11). A generation serves on its worker's one loop; a loop that
        stopped (tests run several in turn) is replaced."""
        loop = self._running
        if loop is None or not loop.is_running():
            loop = self._running = asyncio.get_running_loop()
        return loop

    async def __call__(self, req: ProxyRequest) -> ProxyResponse:
        if self.concurrent > 1:
            return await self._first_complete(req)
        if not self.watched:
            return await self._call_once(req)
        # The backend tap reported to here (as `_watched` does): a coroutine frame fewer.
        request = self._request(req)
        trace = self.watch_trace
        span = None if trace is None else trace(request)
        call = self.send(request)
        started = _CLOCK()
        try:
            resp = await call
        except BaseException as exc:
            failed = self.watch_failed
            if failed is not None:
                failed(exc, started)
            if span is not None:
                span.failed(exc)
            raise
        done = self.watch_done
        if done is not None:
            done(resp, started)
        if span is not None:
            span.done(resp)
        return resp

    def direct(self, watched: bool = True) -> BackendProxy | None:
        """What an endpoint with this backend alone may await in place of calling it: the
        same call one coroutine frame shorter (None with ``concurrent_calls``). With a
        backend tap the call reports to it, unless `watched` is False: then the caller
        reports to `watch_done` / `watch_failed` and begins `watch_trace`'s span around its
        own await of the call."""
        if self.concurrent > 1:
            return None
        return self._call_alone if not self.watched or not watched \
            else self._call_alone_watched

    def once(self) -> BackendProxy | None:
        """`__call__` as a plain function handing back the exchange's awaitable (the request
        copied as usual), for a proxy stage that awaits it itself: one coroutine frame
        shorter (None with ``concurrent_calls``)."""
        return self._call_once if self.concurrent <= 1 else None

    def _call_alone(self, req: ProxyRequest) -> Awaitable[ProxyResponse]:
        """`_call_once` for an endpoint's only backend: the endpoint built `req` for this one
        call, so it becomes the backend's request in place instead of being copied."""
        if self.query_filter is not None and req.query:
            req.query = [(k, v) for k, v in req.query if self.query_filter(k)]
        if self.header_filter is not None:
            req.headers = {k: vs for k, vs in req.headers.items() if self.header_filter(k)}
        req.method = self.method
        req.path = self.path(req.params)
        return self.send(req)

    def _call_alone_watched(self, req: ProxyRequest) -> Awaitable[ProxyResponse]:
        """`_call_alone` reported to the backend tap."""
        return self._watched(self._call_alone(req), req)

    async def _watched(self, call: Awaitable[ProxyResponse], req: ProxyRequest
                       ) -> ProxyResponse:
        """`call` (`_send`'s coroutine of `req`) reported to the backend tap: its answer or
        what it raised, a cancellation included, as the tapped stage would report them (the
        span begun here, in the task that awaits the call)."""
        trace = self.watch_trace
        span = None if trace is None else trace(req)
        started = _CLOCK()
        try:
            resp = await call
        except BaseException as exc:
            failed = self.watch_failed
            if failed is not None:
                failed(exc, started)
            if span is not None:
                span.failed(exc)
            raise
        done = self.watch_done
        if done is not None:
            done(resp, started)
        if span is not None:
            span.done(resp)
        return resp

    async def _first_complete(self, req: ProxyRequest) -> ProxyResponse:
        """``concurrent_calls``: N identical calls sharing 75 % of the backend timeout; the
        first complete answer wins, else the last incomplete one, else the last error."""
        n = self.concurrent
        tasks = [asyncio.ensure_future(self._call_once(req.clone() if i < n - 1 else req))
                 for i in range(n)]
        response: ProxyResponse | None = None
        error: BaseException | None = None
        try:
            async with asyncio.timeout(self.concurrent_timeout):
                for next_done in asyncio.as_completed(tasks):
                    try:
                        resp = await next_done
                    except BackendFailure as exc:
                        error = exc
                        continue
                    if resp.complete:
                        return resp
                    response = resp
        except TimeoutError:
            error = BackendTimeout()
        finally:
            for t in tasks:
                t.cancel()
        if response is not None:
            return response
        raise error or BackendTimeout()

    def _call_once(self, req: ProxyRequest) -> Awaitable[ProxyResponse]:
        """One call of this backend with its own request (reported to the backend tap)."""
        request = self._request(req)
        call = self.send(request)
        return call if not self.watched else self._watched(call, request)

    def _request(self, req: ProxyRequest) -> ProxyRequest:
        """lura's request builder: the backend's method, path and filtered query/headers."""
        query = req.query if self.query_filter is None or not req.query else [
            (k, v) for k, v in req.query if self.query_filter(k)]
        headers = req.headers if self.header_filter is None else {
            k: vs for k, vs in req.headers.items() if self.header_filter(k)}
        return ProxyRequest(self.method, self.path(req.params), req.params, headers, query,
                            req.body, req.stream)

    # Without a task (a merge's fan-out) ---------------------------------------------------
    def start(self, req: ProxyRequest, loop: asyncio.AbstractEventLoop,
              fan: FanOut | None = None) -> Pending | None:
        """`_call_once` begun without a coroutine, for a merge that awaits several backends
        at once: the request goes out now on an idle pooled connection and the exchange is
        returned, to be finished by `answer` (and `rest`). None when it cannot start so (no
        idle connection, a backend with components or several hosts, a component's URL, a
        path Go refuses): then the backend is called as usual, nothing of it having run.
        `fan`: what the merge's backends read of `req`, read once for all of them."""
        target = self.fan_target
        if fan is None:
            fan = FanOut(req, loop.time())
        if target is None or not fan.plain:
            return None
        path = self.path(fan.params)
        query = fan.query
        if query:
            if self.query_filter is not None:
                query = [(k, v) for k, v in query if self.query_filter(k)]
            if query:
                extra = encode_query(query)
                path = f"{path}&{extra}" if "?" in path else f"{path}?{extra}"
        known = self._request_targets.get(path)
        if known is None:
            try:
                known = request_target(path, self.origin + target.base_path)
            except BackendFailure:
                return None  # `_send` fails as Go does
            if len(self._request_targets) < _KNOWN_TARGETS:
                self._request_targets[path] = known
        hf = self.header_filter
        lines = None
        if hf is None:
            # Every backend of the merge without a filter sends the same header lines.
            lines = fan.lines
            if lines is None:
                lines = fan.lines = HeadLines([(k, v) for k, vs in fan.headers.items()
                                               if k not in _HOP_BY_HOP for v in vs])
            headers = lines.headers
        else:
            headers = [(k, v) for k, vs in fan.headers.items()
                       if k not in _HOP_BY_HOP and hf(k) for v in vs]
        pool = self._fan_pool
        if pool is None:
            pool = self._fan_pool = self.client.pool(target)
        return self.client.start(pool, target, self.method, target.base_path + known,
                                 headers, fan.body, fan.now + self.timeout, lines)

    def answer(self, pending: Pending) -> tuple[Any, bool] | None:
        """A started exchange's answer, as the (data, complete) a merge takes, once its
        future is done (or its failure, raised); None when `rest` has more to await (a
        redirect, a retry, gzip). No ProxyResponse is made for it."""
        try:
            resp = pending.ready()
        except Exception as exc:
            raise _wire_failure(exc, self.method, self.origin,
                                pending.request_target) from None
        if resp is None:
            return None
        status = resp.status
        if (status == 200 or status == 201) and not self.no_op:
            return self._decoded(resp.body), True
        if status in _REDIRECTS:
            return None
        out = self._respond(status, resp.headers, resp.body, "", None, None, self.origin,
                            pending.request_target)
        return out.data, out.complete

    async def rest(self, pending: Pending) -> ProxyResponse:
        """The part of `_send` a started exchange still needs (in a task of its own)."""
        method = self.method
        path = pending.request_target
        target = self.fan_target
        assert target is not None
        try:
            first = await pending.rest()
            if first.status in _REDIRECTS:
                status, resp_headers, body, url, stream = await self._follow(
                    first, target, method, path, pending.headers, pending.body,
                    pending.deadline, None)
            else:
                status, resp_headers, body, url, stream = (
                    first.status, first.headers, first.body, "", first.stream)
        except Exception as exc:
            raise _wire_failure(exc, method, self.origin, path) from None
        return self._respond(status, resp_headers, body, url, stream, None, self.origin, path)

    async def _send(self, req: ProxyRequest) -> ProxyResponse:
        """The innermost stage: one HTTP exchange, status check, decode, manipulation."""
        target: Target | Unusable
        if req.url is None:
            target = self._next_target()
            path = req.path
            if req.query:
                extra = encode_query(req.query)
                path = f"{path}&{extra}" if "?" in path else f"{path}?{extra}"
        else:  # a component set the whole URL: it carries host, path and query
            target, path = self._url_target(req.url)
        if isinstance(target, Unusable):
            raise BackendUnavailable(target.error(req.method, path))
        base = self.lone_base if target is self.lone_target else \
            f"{target.scheme}://{target.host_header}{target.base_path}"
        known = self._request_targets.get(path)
        if known is None:
            known = request_target(path, base)
            if len(self._request_targets) < _KNOWN_TARGETS:
                self._request_targets[path] = known
        path = known
        headers = [(k, v) for k, vs in req.headers.items() if k not in _HOP_BY_HOP for v in vs]
        deadline = self._loop().time() + self.timeout
        memo = None
        ok_body: bytes | None = None
        # The round trip's metrics and trace in line (the tap) where the chained client
        # stages only watch it: no component needs the exchange's request and response
        # objects.
        tapped = self.tap is not None
        try:
            if self.executor is None or tapped:
                started = 0.0
                span = None
                done = self.tap_done
                if tapped:
                    trace = self.tap_trace
                    if trace is not None:  # a sampled request's span, its headers
                        span = trace(base, path, req, headers)
                    started = _CLOCK()
                request_path = target.base_path + path
                try:  # the first exchange awaited here, not through `_exchange`: a frame fewer
                    pending = None
                    if target is self.lone_target and req.stream is None:
                        # On an idle pooled connection the request goes out now and its
                        # answer's future is awaited here: no coroutine of the client's.
                        pool = self._fan_pool
                        if pool is None:
                            pool = self._fan_pool = self.client.pool(target)
                        pending = UpstreamClient.start(pool, target, req.method, request_path,
                                                       headers, req.body, deadline)
                    if pending is not None:
                        try:
                            await pending.answer
                        except Exception:  # the exchange's error: `ready` raises it
                            pass
                        except BaseException:  # cancelled: as `send`, close the connection
                            pending.cancel()
                            raise
                        answered = pending.ready()
                        first = answered if answered is not None else await pending.rest()
                    else:
                        first = await self.client.send(target, req.method, request_path,
                                                       headers, req.body, deadline,
                                                       req.stream, self.stream_answer)
                    if first.status in _REDIRECTS:
                        status, resp_headers, body, url, stream = await self._follow(
                            first, target, req.method, request_path, headers, req.body,
                            deadline, req.stream)
                    elif not self.no_op and (first.status == 200 or first.status == 201):
                        ok_body = first.body  # decoded below; its headers are never read
                        # A buffered answer: a tap reads headers only of a streamed one (a
                        # span: if it reports them, or a HEAD's Content-Length).
                        if done is not None:
                            done(target, req.method, req.body, first.status, _UNREAD_HEADERS,
                                 ok_body, None, started)
                        if span is not None:
                            span.done(first.status,
                                      first.headers if span.headers_read else None,
                                      ok_body, None, started)
                    else:  # the URL (for an error's text) is written only if it is needed
                        status, resp_headers, body, url, stream = (
                            first.status, first.headers, first.body, "", first.stream)
                except BaseException as failure:
                    failed = self.tap_failed
                    if failed is not None:
                        failed(target, req.method, req.body, failure, started)
                    if span is not None:
                        span.failed(failure, started)
                    raise
                if ok_body is None:
                    if done is not None:
                        done(target, req.method, req.body, status, resp_headers, body, stream,
                             started)
                    if span is not None:
                        span.done(status, resp_headers, body, stream, started)
            else:
                answer = await self.executor(ClientRequest(
                    target, req.method, target.base_path + path, base + path, headers,
                    req.body, deadline, req.stream))
                status, resp_headers, body, url, stream = (
                    answer.status, answer.headers, answer.body, answer.url, answer.stream)
                memo = answer.memo
        except Exception as exc:  # whatever the wire does, it is this backend's failure
            raise _wire_failure(exc, req.method, base, path) from None
        if ok_body is not None:  # what `_respond` makes of it, without its headers
            return ProxyResponse(self._decoded(ok_body), True)
        return self._respond(status, resp_headers, body, url, stream, memo, base, path)

    def _respond(self, status: int, resp_headers: list[tuple[str, str]], body: bytes, url: str,
                 stream: Any, memo: Memo | None, base: str, path: str) -> ProxyResponse:
        """The exchange's answer checked, decoded and manipulated (`url`, or else `base` and
        `path`, names it in a status error)."""
        if self.no_op:
            if stream is not None:
                return ProxyResponse({}, True, status, _header_map(resp_headers),
                                     stream=stream)
            return ProxyResponse({}, True, status, _header_map(resp_headers), body)
        if status != 200 and status != 201:
            return self._bad_status(status, resp_headers, body, url or base + path)
        assert self.decode is not None
        if memo is not None and self.memo_slot is not None:
            rendered = memo.recall(self.memo_slot)
            if rendered is not None:  # this answer's rendering, remembered by the endpoint
                return ProxyResponse(None, True, rendered=rendered)
        else:
            memo = None
        if memo is None:
            return ProxyResponse(self._decoded(body), True)
        return ProxyResponse(self._decoded(body), True, memo=memo)

    def _decoded(self, body: bytes) -> Any:
        """A 200/201 answer's body decoded by `encoding`, then manipulated."""
        assert self.decode is not None
        try:
            data = self.decode(body)
        except DecodeError as decode_error:
            raise BackendDecodeError(str(decode_error)) from None
        except (RecursionError, MemoryError, ValueError) as too_deep:
            # Nesting Python cannot follow (Go's limit is deeper): a failed decode, not a crash.
            raise BackendDecodeError(f"json: {type(too_deep).__name__}: {too_deep}") from None
        return self.format(data)

    def _url_target(self, url: str) -> tuple[Target, str]:
        """(target, request target) of a URL a component set; a host of the backend keeps
        its pooled target."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = self._origins.get(origin)
        if target is None:
            try:
                target = parse_target(origin)
            except ValueError as exc:
                raise BackendFailure(f'parse "{url}": {exc}') from None
            if len(self._origins) < 64:
                self._origins[origin] = target
        path = parts.path or "/"
        return target, f"{path}?{parts.query}" if parts.query else path

    def _bad_status(self, status: int, resp_headers: list[tuple[str, str]], body: bytes,
                    url: str) -> ProxyResponse:
        """lura's HTTP status handlers: default, return_error_details, return_error_code."""
        details = self.error_details
        if details is None and not self.error_code:
            raise BackendStatusError(status, self.error_prefix, url)
        ctype = next((v for k, v in resp_headers if k.lower() == "content-type"), "")
        if self.error_code:
            raise BackendHTTPError(status, body, ctype)
        assert details is not None  # one of the two handlers is set when this runs
        detail: dict[str, Any] = {"http_status_code": status}
        if body:
            detail["http_body"] = body.decode("utf-8", "replace")
        if ctype:
            detail["http_body_encoding"] = ctype
        return ProxyResponse({details: detail}, False, status)

    async def _client_exchange(self, req: ClientRequest) -> ClientResponse:
        """The executor as a stage of the CLIENT level (what its components wrap)."""
        status, headers, body, url, stream = await self._exchange(
            req.target, req.method, req.request_target, req.headers, req.body, req.deadline,
            req.stream)
        return ClientResponse(status, headers, body, url, stream)

    async def _exchange(self, target: Target, method: str, request_target: str,
                        headers: list[tuple[str, str]], body: bytes, deadline: float,
                        body_stream: BodyStream | None
                        ) -> tuple[int, list[tuple[str, str]], bytes, str, Any]:
        """Send, following redirects as Go's http.Client does (at most 10), all before
        `deadline` (a timer on the connection: cheaper than a timeout scope per request).
        A streamed body cannot be sent twice: a 307/308 to it is the answer, as in Go."""
        resp = await self.client.send(target, method, request_target, headers, body,
                                      deadline, body_stream, self.stream_answer)
        return await self._follow(resp, target, method, request_target, headers, body,
                                  deadline, body_stream)

    async def _follow(self, resp: UpstreamResponse, target: Target, method: str,
                      request_target: str, headers: list[tuple[str, str]], body: bytes,
                      deadline: float, body_stream: BodyStream | None
                      ) -> tuple[int, list[tuple[str, str]], bytes, str, Any]:
        """`_exchange` from its first answer on: the redirects it asks for, if any."""
        url = f"{target.scheme}://{target.host_header}{request_target}"
        for hop in range(_MAX_REDIRECTS + 1):
            if hop:
                resp = await self.client.send(target, method, request_target, headers, body,
                                              deadline, body_stream, self.stream_answer)
            if resp.status not in _REDIRECTS or (
                    body_stream is not None and resp.status in (307, 308)):
                return resp.status, resp.headers, resp.body, url, resp.stream
            location = resp.header("Location")
            if not location:
                return resp.status, resp.headers, resp.body, url, resp.stream
            if resp.stream is not None:
                resp.stream.abandon()
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
                method, body, body_stream = "GET", b"", None
        raise UpstreamError("stopped after 10 redirects")


def _wire_failure(exc: Exception, method: str, base: str, path: str) -> BackendFailure:
    """What went wrong on the wire, as this backend's failure (Go's words where it has some)."""
    if isinstance(exc, UpstreamTimeout):
        return BackendTimeout()
    if isinstance(exc, BodyTooLarge):
        return PayloadTooLarge()
    if not isinstance(exc, UpstreamError):
        log.debug("backend %s%s failed", base, path, exc_info=exc)
    return BackendUnavailable(f'{method.title()} "{base}{path}": {exc}')


def _header_map(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in headers:
        out.setdefault(canonical_header(k), []).append(v)
    return out

