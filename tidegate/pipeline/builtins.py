"""Built-in endpoints: `/__health`, `/__debug/*`, `/__echo/*` (KrakenD's, plus reload facts)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tidegate.bodies import BodyTooLarge
from tidegate.golang.json_wire import dumps
from tidegate.messages import EndpointHandler, Request, Response, canonical_header
from tidegate.pipeline.endpoint import HELD_BODY_LIMIT

if TYPE_CHECKING:
    from tidegate.pipeline.generation import Generation
    from tidegate.pipeline.router import Router

JSON = "application/json; charset=utf-8"


def _now() -> str:
    """The time as Go prints ``time.Now()`` (without the monotonic part)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HIDDEN_DETAILS = "in the gateway's log (shown here in debug mode: run -d or debug_endpoint)"


def builtin_routes(*, debug: bool, echo: bool) -> list[tuple[str, str]]:
    """(method, path) of every built-in route a generation with these switches serves."""
    routes = [("GET", "/__health")]
    if debug:
        routes += [(m, "/__debug/*") for m in _METHODS]
    if echo:
        routes += [(m, "/__echo/*") for m in _METHODS]
    return routes


def builtin_conflict(method: str, path: str, routes: list[tuple[str, str]]) -> str | None:
    """The built-in route a user endpoint would collide with, as gin sees it (KrakenD panics).

    A catch-all must be alone under its prefix in gin, so `/__debug/x` collides with
    `/__debug/*` just as `/__health` collides with `/__health`.
    """
    for b_method, b_path in routes:
        if b_method != method:
            continue
        if b_path.endswith("/*"):
            if path.startswith(b_path[:-1]):
                return b_path
        elif path == b_path:
            return b_path
    return None


def register(router: Router[EndpointHandler], gen: Generation, *, debug: bool, echo: bool) -> None:
    """Add the built-in routes of this generation to its router."""

    async def health(req: Request, params: dict[str, str]) -> Response:
        error = gen.status.last_reload_error
        if error is not None and not debug:
            # Anyone can read /__health: a rejected save's file path and message (which may
            # quote the configuration) are for the log, and here only in debug mode (-d).
            error = {"kind": error.get("kind"), "details": HIDDEN_DETAILS}
        body: dict[str, Any] = {
            "agents": {},
            "now": _now(),
            "status": "ok",
            "generation": gen.describe(),
            "last_reload_error": error,
        }
        for (section, item), describe in gen.resources.reports.items():
            body.setdefault(section, {})[item] = describe()
        if gen.unprotected:  # the fail-closed opt-out: say loudly what is served unprotected
            body["allow_unimplemented"] = list(gen.unprotected)
        return Response(200, [("Content-Type", JSON)], dumps(body))

    router.add("GET", "/__health", health)

    if debug:
        pong = dumps({"message": "pong"})

        async def debug_handler(req: Request, params: dict[str, str]) -> Response:
            return Response(200, [("Content-Type", JSON)], pong)

        for method in _METHODS:
            router.add(method, "/__debug/*", debug_handler)

    if echo:
        async def echo_handler(req: Request, params: dict[str, str]) -> Response:
            if req.stream is not None:  # the echo reads the body: hold it, bounded
                try:
                    req.body = await req.stream.read_all(HELD_BODY_LIMIT)
                except BodyTooLarge:
                    return Response.text(413, "413 Request Entity Too Large")
                req.stream = None
            return Response(200, [("Content-Type", JSON)], dumps(echo_body(req)))

        for method in _METHODS:
            router.add(method, "/__echo/*", echo_handler)


def echo_body(req: Request) -> dict[str, object]:
    """KrakenD's `/__echo/` answer: the request as the gateway received it."""
    headers: dict[str, list[str]] = {}
    for k, v in req.headers:
        if k != "host":
            headers.setdefault(canonical_header(k), []).append(v)
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(req.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)
    uri = req.path + (f"?{req.query}" if req.query else "")
    return {
        "req_uri": uri,
        "req_uri_details": {"fragment": "", "host": req.host, "path": req.path,
                            "query": req.query, "user": ""},
        "req_method": req.method,
        "req_querystring": query,
        "req_body": req.body.decode("utf-8", "replace"),
        "req_headers": headers,
    }
