"""Endpoint output renderers by ``output_encoding`` (lura ``router/gin/render.go`` + krakend-ce).

A renderer is chosen once per endpoint when the configuration is compiled and called per
request as ``render(data, accept_header) -> (status, body, content_type)``; status is always
None here (the router's status stands). ``data`` is the response data map; None is a
response whose data is nil (a backend that answered ``null``); :data:`NO_RESPONSE` is no
response at all (Go's nil ``*proxy.Response``), which each renderer answers as KrakenD does:
``json`` ``{}``, ``json-collection`` ``[]``, ``yaml`` ``{}``, ``string`` and ``xml`` empty.
``no-op`` is proxied by the caller; its renderer here writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from tidegate.encoding.xmlcodec import XMLError, dumps_xml
from tidegate.encoding.yamlcodec import dumps_yaml
from tidegate.golang.json_wire import dumps

__all__ = [
    "CT_JSON",
    "CT_PLAIN",
    "CT_XML",
    "CT_XML_GIN",
    "CT_YAML",
    "NO_RESPONSE",
    "RENDERERS",
    "Renderer",
    "negotiate_format",
    "renderer_for",
    "select_output_encoding",
]


class _NoResponse:
    """Marker for 'no response at all' (distinct from a response whose data is nil)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_RESPONSE"


NO_RESPONSE: Final = _NoResponse()

CT_JSON = "application/json; charset=utf-8"
CT_PLAIN = "text/plain; charset=utf-8"
CT_YAML = "application/yaml; charset=utf-8"
CT_XML = "application/xml"  # krakend-xml sets gin.MIMEXML itself
CT_XML_GIN = "application/xml; charset=utf-8"  # gin's c.XML, used for a nil response

Result = tuple[int | None, bytes, str]
Renderer = Callable[[Any, "str | None"], Result]

_EMPTY_OBJECT = b"{}"
_EMPTY_ARRAY = b"[]"


def render_json(data: Any, _accept: str | None = None) -> Result:
    if data is NO_RESPONSE:
        return None, _EMPTY_OBJECT, CT_JSON
    return None, dumps(data), CT_JSON


def render_json_collection(data: Any, _accept: str | None = None) -> Result:
    if data is NO_RESPONSE or not isinstance(data, dict) or "collection" not in data:
        return None, _EMPTY_ARRAY, CT_JSON
    return None, dumps(data["collection"]), CT_JSON


def render_string(data: Any, _accept: str | None = None) -> Result:
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, str):
        return None, b"", CT_PLAIN
    return None, content.encode("utf-8", "surrogateescape"), CT_PLAIN


def render_xml(data: Any, _accept: str | None = None) -> Result:
    if data is NO_RESPONSE:
        return None, b"", CT_XML_GIN
    try:
        return None, dumps_xml(data), CT_XML
    except XMLError:  # mxj fails before writing anything: an empty body
        return None, b"", CT_XML


def render_yaml(data: Any, _accept: str | None = None) -> Result:
    if data is NO_RESPONSE:
        data = {}
    return None, dumps_yaml(data), CT_YAML


def render_noop(_data: Any, _accept: str | None = None) -> Result:
    """The caller copies the backend's answer; nothing to render."""
    return None, b"", ""


MIME_JSON = "application/json"
MIME_PLAIN = "text/plain"
MIME_XML = "application/xml"
MIME_YAML = "application/x-yaml"
_OFFERED = (MIME_JSON, MIME_PLAIN, MIME_XML, MIME_YAML)


def negotiate_format(accept: str | None, offered: tuple[str, ...] = _OFFERED) -> str:
    """gin's ``Context.NegotiateFormat``: the first Accept entry (order, not q) that matches.

    An entry matches an offer when either has ``*`` where they differ or the entry is a prefix
    of the offer; parameters are dropped. No Accept picks the first offer; no match gives "".
    """
    accepted = []
    for part in (accept or "").split(","):
        i = part.find(";")
        if i > 0:
            part = part[:i]
        part = part.strip()
        if part:
            accepted.append(part)
    if not accepted:
        return offered[0]
    for entry in accepted:
        for offer in offered:
            n = min(len(entry), len(offer))
            i = 0
            while i < n:
                if entry[i] == "*" or offer[i] == "*":
                    return offer
                if entry[i] != offer[i]:
                    break
                i += 1
            if i == len(entry):
                return offer
    return ""


def render_negotiated(data: Any, accept: str | None = None) -> Result:
    fmt = negotiate_format(accept)
    if fmt == MIME_XML:
        return render_xml(data)
    if fmt in (MIME_PLAIN, MIME_YAML):
        return render_yaml(data)
    return render_json(data)


RENDERERS: dict[str, Renderer] = {
    "json": render_json,
    "json-collection": render_json_collection,
    "string": render_string,
    "xml": render_xml,
    "yaml": render_yaml,
    "negotiate": render_negotiated,
    "no-op": render_noop,
}


def select_output_encoding(output_encoding: str | None, backend_encodings: list[str]) -> str:
    """lura's getRender: which renderer an endpoint really uses.

    With no output_encoding, a single backend's ``encoding`` names the renderer when one has
    that name (``xml``, ``string``, ``no-op``...); otherwise, and for unknown names, ``json``.
    """
    fallback = "json"
    if len(backend_encodings) == 1 and backend_encodings[0] in RENDERERS:
        fallback = backend_encodings[0]
    if not output_encoding:
        return fallback
    return output_encoding if output_encoding in RENDERERS else fallback


def renderer_for(output_encoding: str | None) -> Renderer:
    """The renderer for an endpoint's (already selected) output encoding; unknown -> json."""
    return RENDERERS.get(output_encoding or "json", render_json)
