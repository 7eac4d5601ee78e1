"""plugin/http-client example: every backend request gets a header, then tidegate's client.

Settings: {"header": "X-Gateway", "value": "tidegate"}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.messages import ClientRequest, ClientResponse, Exchange
from tidegate.plugins import HttpClientPlugin


def build(config: Mapping[str, Any], nxt: Exchange) -> Exchange:
    header = (str(config.get("header", "X-Gateway")), str(config.get("value", "tidegate")))

    async def stamped(req: ClientRequest) -> ClientResponse:
        req.headers = [*req.headers, header]
        return await nxt(req)

    return stamped


plugin = HttpClientPlugin(build)
