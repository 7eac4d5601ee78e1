"""plugin/http-server example: only requests carrying one of the configured keys pass.

Settings: {"header": "X-Api-Key", "keys": ["..."], "skip_paths": ["/__health"]}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.messages import Request, Response, ServiceHandler
from tidegate.plugins import HttpServerPlugin


def build(config: Mapping[str, Any], nxt: ServiceHandler) -> ServiceHandler:
    header = str(config.get("header", "X-Api-Key")).lower()
    keys = frozenset(config.get("keys", ()))
    skip = frozenset(config.get("skip_paths", ("/__health",)))
    if not keys:
        raise ValueError("api-key-guard: `keys` must list at least one key")

    async def guarded(req: Request) -> Response:
        if req.path in skip or req.header(header) in keys:
            return await nxt(req)
        return Response(401, [("Content-Type", "text/plain")], b"missing or unknown API key")

    return guarded


plugin = HttpServerPlugin(build)
