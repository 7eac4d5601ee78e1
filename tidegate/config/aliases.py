"""KrakenD's legacy (v1) namespace names, and the one place they become current names.

KrakenD CE 2.x still accepts the names its components had in KrakenD 1.x
(``github_com/devopsfaith/krakend-cors`` for ``security/cors``, …): krakend-ce registers them
as aliases when it starts, and a config that uses them is applied as if it used the current
name. tidegate does the same when the typed model is built, so every later stage (pipeline,
components, the fail-closed rule) sees only current names, and lint suggests the rename.

When a section holds both spellings, the current name wins, as in lura's
``ExtraConfig.Normalize`` (the value under the current name overwrites the legacy one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Legacy name → current name, as krakend-ce's `cmd/krakend-ce/main.go` lists them (2.13).
LEGACY_NAMESPACES: dict[str, str] = {
    "github_com/devopsfaith/krakend/transport/http/server/handler": "plugin/http-server",
    "github.com/devopsfaith/krakend/transport/http/client/executor": "plugin/http-client",
    "github.com/devopsfaith/krakend/proxy/plugin": "plugin/req-resp-modifier",
    "github.com/devopsfaith/krakend/proxy": "proxy",
    "github_com/luraproject/lura/router/gin": "router",
    "github.com/devopsfaith/krakend-ratelimit/juju/router": "qos/ratelimit/router",
    "github.com/devopsfaith/krakend-ratelimit/juju/proxy": "qos/ratelimit/proxy",
    "github.com/devopsfaith/krakend-httpcache": "qos/http-cache",
    "github.com/devopsfaith/krakend-circuitbreaker/gobreaker": "qos/circuit-breaker",
    "github.com/devopsfaith/krakend-oauth2-clientcredentials": "auth/client-credentials",
    "github.com/devopsfaith/krakend-jose/validator": "auth/validator",
    "github.com/devopsfaith/krakend-jose/signer": "auth/signer",
    "github_com/devopsfaith/bloomfilter": "auth/revoker",
    "github_com/devopsfaith/krakend-botdetector": "security/bot-detector",
    "github_com/devopsfaith/krakend-httpsecure": "security/http",
    "github_com/devopsfaith/krakend-cors": "security/cors",
    "github.com/devopsfaith/krakend-cel": "validation/cel",
    "github.com/devopsfaith/krakend-jsonschema": "validation/json-schema",
    "github.com/devopsfaith/krakend-amqp/agent": "async/amqp",
    "github.com/devopsfaith/krakend-amqp/consume": "backend/amqp/consumer",
    "github.com/devopsfaith/krakend-amqp/produce": "backend/amqp/producer",
    "github.com/devopsfaith/krakend-lambda": "backend/lambda",
    "github.com/devopsfaith/krakend-pubsub/publisher": "backend/pubsub/publisher",
    "github.com/devopsfaith/krakend-pubsub/subscriber": "backend/pubsub/subscriber",
    "github.com/devopsfaith/krakend/transport/http/client/graphql": "backend/graphql",
    "github.com/devopsfaith/krakend/http": "backend/http",
    "github_com/devopsfaith/krakend-gelf": "telemetry/gelf",
    "github_com/devopsfaith/krakend-gologging": "telemetry/logging",
    "github_com/devopsfaith/krakend-logstash": "telemetry/logstash",
    "github_com/devopsfaith/krakend-metrics": "telemetry/metrics",
    "github_com/letgoapp/krakend-influx": "telemetry/influx",
    "github_com/devopsfaith/krakend-influx": "telemetry/influx",
    "github_com/Jozefiel/krakend-influx2": "telemetry/influx2",
    "github_com/devopsfaith/krakend-opencensus": "telemetry/opencensus",
    "github.com/devopsfaith/krakend-lua/router": "modifier/lua-endpoint",
    "github.com/devopsfaith/krakend-lua/proxy": "modifier/lua-proxy",
    "github.com/devopsfaith/krakend-lua/proxy/backend": "modifier/lua-backend",
    "github.com/devopsfaith/krakend-martian": "modifier/martian",
}


def current_name(namespace: str) -> str:
    """The current name of a namespace (itself when it is not a legacy name)."""
    return LEGACY_NAMESPACES.get(namespace, namespace)


def normalize_extra_config(extra: Mapping[str, Any]) -> dict[str, Any]:
    """An ``extra_config`` with every legacy key renamed; the current spelling wins a tie."""
    if not any(key in LEGACY_NAMESPACES for key in extra):
        return dict(extra)
    out = {key: value for key, value in extra.items() if key not in LEGACY_NAMESPACES}
    for key, value in extra.items():
        new = LEGACY_NAMESPACES.get(key)
        if new is not None and new not in out:
            out[new] = value
    return out


def source_key(extra: Mapping[str, Any], namespace: str) -> str:
    """The key a (current) namespace was written under in a raw ``extra_config``: itself, or
    the legacy name it was renamed from. Errors inside the section point there."""
    if namespace in extra:
        return namespace
    for old, new in LEGACY_NAMESPACES.items():
        if new == namespace and old in extra:
            return old
    return namespace
