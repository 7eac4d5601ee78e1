"""Backend body decoders by ``encoding`` (lura ``encoding/``, krakend-xml, krakend-rss).

Each decoder turns a body into the response data map KrakenD works on:

* ``json``: the first JSON value must be an object (``null`` gives no data, None); with
  ``is_collection`` it must be an array, kept under ``"collection"``.
* ``safejson``: object as is, array under ``"collection"``, any other value under ``"content"``.
* ``xml``: mxj conventions (see :mod:`tidegate.encoding.xmlcodec`); with ``is_collection``
  the document goes under ``"collection"``.
* ``rss``: the feed's main fields (best effort, see :mod:`tidegate.encoding.rss`).
* ``string``: the raw body under ``"content"``.
* ``no-op``: nothing is decoded, the caller proxies the body as is.

An unknown name falls back to ``json`` as lura's register does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidegate.encoding.xmlcodec import XMLError, loads_xml
from tidegate.golang.json_wire import JSONError, decode_first

__all__ = [
    "JSON",
    "NOOP",
    "RSS",
    "SAFE_JSON",
    "STRING",
    "XML",
    "DecodeError",
    "Decoder",
    "decoder_for",
]

JSON = "json"
SAFE_JSON = "safejson"
XML = "xml"
RSS = "rss"
STRING = "string"
NOOP = "no-op"

Data = dict[str, Any] | None
Decoder = Callable[[bytes], Data]


class DecodeError(ValueError):
    """The body does not decode with the backend's encoding; the message reads like Go's."""


_GO_TYPES = {dict: "object", list: "array", str: "string", bool: "bool"}


def _go_kind(value: Any) -> str:
    return _GO_TYPES.get(type(value)) or ("bool" if isinstance(value, bool) else "number")


def _first(body: bytes) -> Any:
    try:
        return decode_first(body)
    except JSONError as exc:
        raise DecodeError(str(exc)) from None


def decode_json(body: bytes) -> Data:
    """JSONDecoder: an object, or None for ``null`` (Go leaves the map nil)."""
    value = _first(body)
    if isinstance(value, dict) or value is None:
        return value
    raise DecodeError(f"json: cannot unmarshal {_go_kind(value)} into Go value of type "
                      "map[string]interface {}")


def decode_json_collection(body: bytes) -> Data:
    """JSONCollectionDecoder: an array (or ``null``) under ``"collection"``."""
    value = _first(body)
    if isinstance(value, list) or value is None:
        return {"collection": value}
    raise DecodeError(f"json: cannot unmarshal {_go_kind(value)} into Go value of type "
                      "[]interface {}")


def decode_safejson(body: bytes) -> Data:
    """SafeJSONDecoder: never a type error."""
    value = _first(body)
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"collection": value}
    return {"content": value}


def decode_string(body: bytes) -> Data:
    """StringDecoder. Undecodable bytes survive (surrogateescape) so that the string output
    writes them back untouched and the JSON output turns each into ``\\ufffd`` as Go does."""
    return {"content": body.decode("utf-8", "surrogateescape")}


def decode_xml(body: bytes) -> Data:
    try:
        return loads_xml(body)
    except XMLError as exc:
        raise DecodeError(str(exc)) from None


def decode_xml_collection(body: bytes) -> Data:
    return {"collection": decode_xml(body)}


def decode_rss(body: bytes) -> Data:
    from tidegate.encoding.rss import RSSError, loads_feed

    try:
        return loads_feed(body)
    except RSSError as exc:
        raise DecodeError(str(exc)) from None


def decode_noop(_body: bytes) -> Data:
    """no-op backends are never decoded; this only keeps callers total."""
    return {}


_ENTITY: dict[str, Decoder] = {
    JSON: decode_json,
    SAFE_JSON: decode_safejson,
    XML: decode_xml,
    RSS: decode_rss,
    STRING: decode_string,
    NOOP: decode_noop,
}
_COLLECTION: dict[str, Decoder] = {
    **_ENTITY,
    JSON: decode_json_collection,
    XML: decode_xml_collection,
}


def decoder_for(encoding: str | None, is_collection: bool) -> Decoder:
    """The decoder for a backend, chosen once when the configuration is compiled."""
    table = _COLLECTION if is_collection else _ENTITY
    return table.get(encoding or JSON, table[JSON])
