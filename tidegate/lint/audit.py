"""`tidegate audit`: security recommendations for a configuration, as `krakend audit` gives.

Rules are a table: id (KrakenD's numbering where KrakenD has the rule, so ignore lists carry
over), severity, advice and a check. A check takes the typed service and returns the JSON paths
it objects to (or a bare True for a service-wide finding). Unlike KrakenD's audit, the checks
see values, so section 8 adds rules KrakenD cannot express (CORS wildcard with credentials, JWT
validators without issuer or audience, plain-HTTP backends), and section 9 flags security
components that tidegate accepts but does not enforce yet: a false sense of protection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tidegate.config.model import ServiceConfig
from tidegate.config.namespaces import NAMESPACES
from tidegate.errors import JsonPath, format_path
from tidegate.lint.implemented import implemented, registered_components

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
Where = list[JsonPath] | bool
Check = Callable[[ServiceConfig], Where]


@dataclass(frozen=True)
class Rule:
    """One recommendation and the check that raises it."""

    id: str
    severity: str
    message: str
    check: Check


@dataclass(frozen=True)
class Finding:
    """A rule that applies, with the places it applies to."""

    rule: str
    severity: str
    message: str
    where: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """KrakenD's JSON keys (rule, severity, message) plus where."""
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "where": list(self.where)}


# --- walking the components ------------------------------------------------------------------


def _components(service: ServiceConfig) -> Iterator[tuple[JsonPath, str, Any]]:
    """(path of the namespace, namespace, its config) at every level."""
    for name, cfg in service.extra_config.items():
        yield ("extra_config", name), name, cfg
    for ep in service.endpoints:
        for name, cfg in ep.extra_config.items():
            yield (*ep.path, "extra_config", name), name, cfg
        for b in ep.backend:
            for name, cfg in b.extra_config.items():
                yield (*b.path, "extra_config", name), name, cfg


def _having(*names: str) -> Check:
    def check(service: ServiceConfig) -> Where:
        return [path for path, name, _ in _components(service) if name in names]
    return check


def _lacking(*names: str) -> Check:
    def check(service: ServiceConfig) -> Where:
        return not any(name in names for _, name, _ in _components(service))
    return check


def _flag(key: str) -> Check:
    def check(service: ServiceConfig) -> Where:
        return [(key,)] if service.raw.get(key) is True else []
    return check


def _setting(names: Iterable[str], test: Callable[[Mapping[str, Any]], Iterable[JsonPath]]
             ) -> Check:
    """Paths `test` returns for each config (a mapping) of the given namespaces."""
    wanted = frozenset(names)

    def check(service: ServiceConfig) -> Where:
        out: list[JsonPath] = []
        for path, name, cfg in _components(service):
            if name in wanted and isinstance(cfg, Mapping):
                out.extend((*path, *sub) for sub in test(cfg))
        return out
    return check


# --- the checks ------------------------------------------------------------------------------


def _no_tls(service: ServiceConfig) -> Where:
    tls = service.raw.get("tls")
    return not isinstance(tls, Mapping) or not tls


def _tls_disabled(service: ServiceConfig) -> Where:
    tls = service.raw.get("tls")
    return [("tls", "disabled")] if isinstance(tls, Mapping) and tls.get("disabled") else []


def _insecure_client(service: ServiceConfig) -> Where:
    out: list[JsonPath] = []
    ctls = service.raw.get("client_tls")
    if isinstance(ctls, Mapping) and ctls.get("allow_insecure_connections") is True:
        out.append(("client_tls", "allow_insecure_connections"))
    if service.raw.get("allow_insecure_connections") is True:  # the legacy root name
        out.append(("allow_insecure_connections",))
    return out


def _version_header_shown(service: ServiceConfig) -> Where:
    return not service.router.hide_version_header


def _wildcard_forwarding(key: str) -> Check:
    def check(service: ServiceConfig) -> Where:
        out: list[JsonPath] = []
        for ep in service.endpoints:
            values = ep.input_headers if key == "input_headers" else ep.input_query_strings
            if values and "*" in values:
                out.append((*ep.path, key))
        return out
    return check


def _timeout_above(seconds: float) -> Check:
    def check(service: ServiceConfig) -> Where:
        return [(*ep.path, "timeout") for ep in service.endpoints if ep.timeout > seconds]
    return check


def _unlimited_cache(cfg: Mapping[str, Any]) -> list[JsonPath]:
    return [] if cfg.get("max_items") and cfg.get("max_size") else [()]


def _endpoint_shape(test: Callable[[str], bool]) -> Check:
    def check(service: ServiceConfig) -> Where:
        return [(*ep.path, "endpoint") for ep in service.endpoints if test(ep.endpoint)]
    return check


def _sequential(service: ServiceConfig) -> Where:
    out: list[JsonPath] = []
    for ep in service.endpoints:
        proxy = ep.extra_config.get("proxy")
        if isinstance(proxy, Mapping) and proxy.get("sequential") is True:
            out.append((*ep.path, "extra_config", "proxy", "sequential"))
    return out


def _single_backends(service: ServiceConfig) -> Where:
    return bool(service.endpoints) and all(len(ep.backend) <= 1 for ep in service.endpoints)


def _all_no_op(service: ServiceConfig) -> Where:
    return bool(service.endpoints) and all(ep.output_encoding == "no-op"
                                           for ep in service.endpoints)


def _cors_wildcard_credentials(cfg: Mapping[str, Any]) -> list[JsonPath]:
    origins = cfg.get("allow_origins")
    wildcard = not origins or (isinstance(origins, list) and "*" in origins)
    return [("allow_credentials",)] if wildcard and cfg.get("allow_credentials") is True else []


def _missing(key: str) -> Callable[[Mapping[str, Any]], list[JsonPath]]:
    def test(cfg: Mapping[str, Any]) -> list[JsonPath]:
        return [] if cfg.get(key) else [()]
    return test


def _true(key: str) -> Callable[[Mapping[str, Any]], list[JsonPath]]:
    def test(cfg: Mapping[str, Any]) -> list[JsonPath]:
        return [(key,)] if cfg.get(key) is True else []
    return test


def _plain_http_url(key: str) -> Callable[[Mapping[str, Any]], list[JsonPath]]:
    def test(cfg: Mapping[str, Any]) -> list[JsonPath]:
        url = cfg.get(key)
        return [(key,)] if isinstance(url, str) and _plain_remote(url) else []
    return test


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _plain_remote(url: str) -> bool:
    """An http:// URL to anything but this machine (a sidecar on loopback is fine)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "http" and host not in _LOCAL_HOSTS and not host.startswith("127.")


def _plain_http_backends(service: ServiceConfig) -> Where:
    out: list[JsonPath] = []
    for ep in service.endpoints:
        for b in ep.backend:
            for i, host in enumerate(b.host):
                if _plain_remote(host):
                    out.append((*b.path, "host", i) if b.raw.get("host") else ("host",))
    return sorted(set(out), key=format_path)


def _not_enforced(service: ServiceConfig) -> Where:
    """Security components tidegate accepts but ignores: the routes are not protected."""
    security = ("auth/", "security/", "qos/ratelimit/")
    registered = registered_components()
    return [path for path, name, _ in _components(service)
            if name.startswith(security) and name in NAMESPACES
            and not implemented(name, registered)]


_JWT = ("auth/validator",)
_RATE_LIMITS = ("qos/ratelimit/router", "qos/ratelimit/proxy", "qos/ratelimit/service",
                "qos/ratelimit/tiered", "qos/ratelimit/router/redis",
                "qos/ratelimit/service/redis")
_METRICS = ("telemetry/metrics", "telemetry/newrelic", "telemetry/opentelemetry",
            "telemetry/influx", "telemetry/moesif")
_TRACING = ("telemetry/opentelemetry", "telemetry/newrelic", "telemetry/opencensus")
_LOGGING = ("telemetry/logging", "telemetry/gelf", "telemetry/logstash")

RULES: tuple[Rule, ...] = (
    # 1: authentication
    Rule("1.1.1", "HIGH", "Basic authentication is weak: prefer tokens (JWT).",
         _having("auth/basic")),
    Rule("1.1.2", "MEDIUM", "API keys are long-lived secrets: prefer stateless JWT.",
         _having("auth/api-keys")),
    Rule("1.2.1", "HIGH", "No endpoint validates a JWT: protect endpoints with auth/validator.",
         _lacking(*_JWT)),
    # 2: service
    Rule("2.1.1", "HIGH", "Backends' TLS certificates are not verified "
         "(allow_insecure_connections).", _insecure_client),
    Rule("2.1.2", "HIGH", "No TLS: enable it, or put a TLS terminator in front of the gateway.",
         _no_tls),
    Rule("2.1.3", "CRITICAL", "A TLS section is configured but disabled.", _tls_disabled),
    Rule("2.1.7", "HIGH", "No HTTP security headers (security/http).",
         _lacking("security/http")),
    Rule("2.1.8", "HIGH", "HTTP/2 in clear text (use_h2c) is enabled.", _flag("use_h2c")),
    Rule("2.1.9", "LOW", "A backend client skips certificate verification.",
         _setting(["backend/http/client"], _true("allow_insecure_connections"))),
    Rule("2.2.1", "MEDIUM", "The version header is sent: set router.hide_version_header.",
         _version_header_shown),
    Rule("2.2.2", "HIGH", "No CORS policy (security/cors).", _lacking("security/cors")),
    Rule("2.2.3", "HIGH", "An endpoint forwards every client header (input_headers \"*\").",
         _wildcard_forwarding("input_headers")),
    Rule("2.2.4", "HIGH", "An endpoint forwards every query string "
         "(input_query_strings \"*\").", _wildcard_forwarding("input_query_strings")),
    Rule("2.3.1", "MEDIUM", "An HTTP cache has no max_items/max_size limit.",
         _setting(["qos/http-cache"], _unlimited_cache)),
    # 3: traffic management
    Rule("3.1.1", "LOW", "No bot detector (security/bot-detector).",
         _lacking("security/bot-detector")),
    Rule("3.1.2", "HIGH", "No rate limit anywhere: one client can use all the capacity.",
         _lacking(*_RATE_LIMITS)),
    Rule("3.1.3", "HIGH", "No circuit breaker protects the backends.",
         _lacking("qos/circuit-breaker", "qos/circuit-breaker/http")),
    Rule("3.3.1", "LOW", "An endpoint timeout is above 3 seconds.", _timeout_above(3)),
    Rule("3.3.2", "MEDIUM", "An endpoint timeout is above 5 seconds.", _timeout_above(5)),
    Rule("3.3.3", "HIGH", "An endpoint timeout is above 30 seconds.", _timeout_above(30)),
    Rule("3.3.4", "CRITICAL", "An endpoint timeout is above 1 minute.", _timeout_above(60)),
    # 4: telemetry
    Rule("4.1.1", "MEDIUM", "No metrics are collected.", _lacking(*_METRICS)),
    Rule("4.2.1", "MEDIUM", "No tracing is configured.", _lacking(*_TRACING)),
    Rule("4.3.1", "MEDIUM", "No structured logging (telemetry/logging).", _lacking(*_LOGGING)),
    # 5: endpoints
    Rule("5.1.1", "LOW", "Non-RESTful paths are allowed (disable_rest).", _flag("disable_rest")),
    Rule("5.1.2", "LOW", "The /__debug/ endpoint is enabled (debug_endpoint).",
         _flag("debug_endpoint")),
    Rule("5.1.3", "LOW", "The /__echo/ endpoint is enabled (echo_endpoint).",
         _flag("echo_endpoint")),
    Rule("5.1.4", "LOW", "An endpoint uses a wildcard path: declare explicit endpoints.",
         _endpoint_shape(lambda e: e.endswith("/*"))),
    Rule("5.1.5", "MEDIUM", "A /__catchall endpoint is declared.",
         _endpoint_shape(lambda e: e.startswith("/__catchall"))),
    Rule("5.1.7", "MEDIUM", "A sequential proxy chains backends: latency adds up.",
         _sequential),
    Rule("5.2.2", "LOW", "Every endpoint has a single backend: aggregation is not used.",
         _single_backends),
    Rule("5.2.3", "LOW", "Every endpoint uses no-op encoding: clients are coupled to backends.",
         _all_no_op),
    # 8: values (tidegate)
    Rule("8.1.1", "CRITICAL", "CORS allows any origin together with credentials.",
         _setting(["security/cors"], _cors_wildcard_credentials)),
    Rule("8.1.2", "HIGH", "A JWT validator accepts tokens of any issuer (no \"issuer\").",
         _setting(_JWT, _missing("issuer"))),
    Rule("8.1.3", "HIGH", "A JWT validator accepts tokens for any audience (no \"audience\").",
         _setting(_JWT, _missing("audience"))),
    Rule("8.1.4", "CRITICAL", "A JWT validator fetches its keys without TLS verification "
         "(disable_jwk_security).", _setting(_JWT, _true("disable_jwk_security"))),
    Rule("8.1.5", "HIGH", "A JWT validator fetches its keys over plain HTTP (jwk_url).",
         _setting(_JWT, _plain_http_url("jwk_url"))),
    Rule("8.2.1", "LOW", "A backend is reached over plain HTTP outside this machine.",
         _plain_http_backends),
    # 9: tidegate coverage
    Rule("9.1.1", "CRITICAL", "A security component (or TLS) is configured but not enforced "
         "by tidegate yet: traffic is not protected by it.", _not_enforced),
)
RULE_IDS = frozenset(r.id for r in RULES)


def parse_severities(text: str) -> frozenset[str]:
    """``HIGH`` is a threshold (HIGH and CRITICAL); ``CRITICAL,LOW`` lists the levels exactly,
    as KrakenD's --severity does. Raises ValueError on an unknown level."""
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in SEVERITIES]
    if unknown or not names:
        raise ValueError(f"unknown severity {', '.join(unknown) or repr(text)}: "
                         f"use {', '.join(SEVERITIES)}")
    if len(names) == 1:
        return frozenset(SEVERITIES[:SEVERITIES.index(names[0]) + 1])
    return frozenset(names)


def audit(service: ServiceConfig, *, ignore: Iterable[str] = (),
          severities: Iterable[str] = SEVERITIES) -> list[Finding]:
    """The findings of every rule not ignored and of a wanted severity, in rule order."""
    skip = frozenset(ignore)
    wanted = frozenset(severities)
    out: list[Finding] = []
    for rule in RULES:
        if rule.id in skip or rule.severity not in wanted:
            continue
        where = rule.check(service)
        if where is True or (isinstance(where, list) and where):
            paths = tuple(format_path(p) for p in where) if isinstance(where, list) else ()
            out.append(Finding(rule.id, rule.severity, rule.message, paths))
    return out


def format_finding(finding: Finding, max_places: int = 3) -> str:
    """``rule<TAB>[SEVERITY]<TAB>message (at path, path, +N more)``."""
    text = f"{finding.rule}\t[{finding.severity}]\t{finding.message}"
    if finding.where:
        shown = ", ".join(finding.where[:max_places])
        more = len(finding.where) - max_places
        text += f" (at {shown}{f', +{more} more' if more > 0 else ''})"
    return text
