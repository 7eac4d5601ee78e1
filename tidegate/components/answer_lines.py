"""Whether a section's headers may go to the server as prepared lines, decided in one place.

`security/cors` and `security/http` add headers in front of an answer's own. Instead of a new
`Response` per request, such a section can set its lines, encoded once, on the request
(`Request.head_lines`), and the server writes them right after the status line: the same
bytes in the same place, as long as nothing *around* the section reads an answer's headers
(it would not see the lines) or puts its own in front of them (they would land after the
lines instead of before). Sections that write lines run outermost first, so each appends to
what the ones around it set; an endpoint's own CORS section replaces the root one's (its
answers carry its headers, not the root's).

Around an endpoint's sections: the root's `security/http` (adds its headers to the answer),
`plugin/http-server` and `modifier/lua-endpoint` (see and change the answer), the root
`telemetry/opentelemetry` when its traces report response headers, the root CORS section
unless it writes lines too, and the endpoint's own telemetry. Around the root CORS section,
the only outer section that sees an answer's headers: `plugin/http-server` and the traces
reporting them; and every endpoint with its own CORS section must write lines as well, since
the root section then learns from nothing in the answer that the endpoint applied its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tidegate.errors import ConfigError

if TYPE_CHECKING:
    from tidegate.config.model import EndpointConfig, ServiceConfig

CORS = "security/cors"
SECURE = "security/http"
_TELEMETRY = "telemetry/opentelemetry"
# Root sections that read or change the answers of every endpoint.
_ROOT_AROUND_ENDPOINTS = (SECURE, "plugin/http-server", "modifier/lua-endpoint")
# Root sections outside the root CORS section that see the answer it would add to.
_ROOT_AROUND_CORS = ("plugin/http-server",)


def _traces_read_headers(extra_config: Mapping[str, Any], name: str) -> bool:
    """The root traces report response headers (`layers.global.report_headers`); a section
    that does not parse is taken as reading them (its own component reports the error)."""
    if _TELEMETRY not in extra_config:
        return False
    from tidegate.telemetry.otel_config import from_service

    try:
        root = from_service(extra_config, name)
    except (ConfigError, ValueError, TypeError):
        return True
    return root is not None and root.layers.global_.report_headers


def endpoint_cors(service: ServiceConfig, endpoint: EndpointConfig) -> bool:
    """An endpoint's own CORS section writes lines."""
    root = service.extra_config
    return not any(ns in root for ns in _ROOT_AROUND_ENDPOINTS) \
        and not _traces_read_headers(root, service.name) \
        and _TELEMETRY not in endpoint.extra_config


def root_cors(service: ServiceConfig) -> bool:
    """The root CORS section writes lines."""
    root = service.extra_config
    return not any(ns in root for ns in _ROOT_AROUND_CORS) \
        and not _traces_read_headers(root, service.name) \
        and all(endpoint_cors(service, ep) for ep in service.endpoints
                if CORS in ep.extra_config)


def endpoint_secure(service: ServiceConfig, endpoint: EndpointConfig) -> bool:
    """An endpoint's own `security/http` section writes lines (one without a CSP nonce: that
    header changes per answer)."""
    root = service.extra_config
    return not any(ns in root for ns in _ROOT_AROUND_ENDPOINTS) \
        and not _traces_read_headers(root, service.name) \
        and _TELEMETRY not in endpoint.extra_config \
        and (CORS not in root or root_cors(service)) \
        and (CORS not in endpoint.extra_config or endpoint_cors(service, endpoint))
