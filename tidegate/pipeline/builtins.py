"""Built-in endpoints: `/__health`, `/__debug/*`, `/__echo/*` (KrakenD's, plus reload facts)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tidegate.encoding.gojson import dumps
from tidegate.server.messages import Request, Response

if TYPE_CHECKING:
    from tidegate.pipeline.generation import Generation
    from tidegate.pipeline.router import Router

JSON = "application/json; charset=utf-8"


def _now() -> str:
    """The time as Go prints ``time.Now()`` (without the monotonic part)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")


def register(router: Router, gen: Generation, *, debug: bool, echo: bool) -> None:
    """Add the built-in routes of this generation to its router."""

    async def health(req: Request, params: dict[str, str]) -> Response:
        body = {
            "agents": {},
            "now": _now(),
            "status": "ok",
            "generation": gen.describe(),
            "last_reload_error": gen.status.last_reload_error,
        }
        return Response(200, [("Content-Type", JSON)], dumps(body))

    router.add("GET", "/__health", health)

    if debug:
        pong = dumps({"message": "pong"})

        async def debug_handler(req: Request, params: dict[str, str]) -> Response:
            return Response(200, [("Content-Type", JSON)], pong)

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            router.add(method, "/__debug/*", debug_handler)

    if echo:
        async def echo_handler(req: Request, params: dict[str, str]) -> Response:
            headers: dict[str, list[str]] = {}
            for k, v in req.headers:
                if k != "host":
                    headers.setdefault(k.title(), []).append(v)
            query: dict[str, list[str]] = {}
            for pair in req.query.split("&") if req.query else ():
                k, _, v = pair.partition("=")
                query.setdefault(k, []).append(v)
            body = {"uri": req.raw_target, "query": query, "path": req.path,
                    "headers": headers, "body": req.body.decode("utf-8", "replace"),
                    "method": req.method, "host": req.host}
            return Response(200, [("Content-Type", JSON)], dumps(body))

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            router.add(method, "/__echo/*", echo_handler)
