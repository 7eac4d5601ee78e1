"""The client's address: the root ``router`` settings ``trusted_proxies``,
``forwarded_by_client_ip`` and ``remote_ip_headers``, with gin's meanings.

``Request.client_ip`` is the one place the rest of tidegate reads the client's address (IP
rate limits, IP rules, ``X-Forwarded-For`` towards backends). The protocol sets it to the peer
of the connection; when the peer is a trusted proxy, the stage built here replaces it, before
anything else of the generation runs, with what gin's ``ClientIP()`` returns: the first of
``remote_ip_headers`` (default ``X-Forwarded-For``, ``X-Real-IP``) that holds a valid list,
read from the right and stopping at the first address that is not a trusted proxy.

The settings are read and checked with the rest of the root ``router`` section in the typed
model (`tidegate.config.sections.RouterOptions`); a malformed entry is a located error.

One deliberate difference from KrakenD: gin trusts every proxy when ``trusted_proxies`` is not
set, so any client could choose its own address with ``X-Forwarded-For`` (and walk around IP
rate limits and IP rules). tidegate trusts none unless told: the peer is the client, and
towards backends the peer is appended to the ``X-Forwarded-For`` the client sent, as nginx
(``$proxy_add_x_forwarded_for``) and Envoy do. With ``trusted_proxies`` set, the backends get
``X-Forwarded-For: <client_ip>`` as from KrakenD (both written by the endpoint's request
builder, `tidegate.pipeline.endpoint.compile_request_builder`, in its one pass over the headers).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tidegate.config.sections import Network, RouterOptions, ip_address
from tidegate.messages import Request, Response, ServiceHandler

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class ClientIPRules:
    """What a trusted proxy may tell about the client."""

    trusted: tuple[Network, ...]
    headers: tuple[str, ...]  # lower-case header names, in order


def client_ip_rules(router: RouterOptions) -> ClientIPRules | None:
    """The rules of the typed root ``router`` section; None when the peer is always the client
    (no ``trusted_proxies``, or ``forwarded_by_client_ip: false``)."""
    if not router.trusted_proxies or not router.forwarded_by_client_ip:
        return None
    return ClientIPRules(router.trusted_proxies,
                         tuple(h.lower() for h in router.remote_ip_headers))


def _is_trusted(rules: ClientIPRules, ip: Address) -> bool:
    return any(ip.version == net.version and ip in net for net in rules.trusted)


def _from_header(rules: ClientIPRules, value: str | None) -> str | None:
    """gin's validateHeader: from the right, the first address not a trusted proxy (or the
    leftmost); None if the list holds something that is not an address."""
    if not value:
        return None
    items = value.split(",")
    for i in range(len(items) - 1, -1, -1):
        text = items[i].strip()
        ip = ip_address(text)
        if ip is None:
            return None
        if i == 0 or not _is_trusted(rules, ip):
            return text
    return None


def resolve(rules: ClientIPRules, req: Request) -> str:
    """gin's ClientIP() for a request whose ``client_ip`` is still the peer."""
    peer = ip_address(req.client_ip)
    if peer is None:
        return ""
    if _is_trusted(rules, peer):
        for name in rules.headers:
            found = _from_header(rules, req.header(name))
            if found is not None:
                return found
    return str(peer)


def client_ip_stage(rules: ClientIPRules | None, inner: ServiceHandler) -> ServiceHandler:
    """The generation's outermost stage: the client's address, before anything reads it."""
    if rules is None:
        return inner

    async def with_client_ip(req: Request) -> Response:
        req.client_ip = resolve(rules, req)
        return await inner(req)

    return with_client_ip
