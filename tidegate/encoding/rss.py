"""Best-effort RSS 2.0 / Atom decoding in the shape krakend-rss gives (gofeed's universal feed).

The data has the keys krakend-rss sets: ``items`` (gofeed Item fields, JSON names, empty
ones left out), ``author``, ``categories``, ``custom``, ``copyright``, ``description``,
``type`` (``rss`` or ``atom``), ``language``, ``title``, ``published``, ``updated`` and
``img_url`` when the feed has an image. Extensions (iTunes, Dublin Core...) are not mapped.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

__all__ = ["RSSError", "loads_feed"]

_ATOM = "{http://www.w3.org/2005/Atom}"


class RSSError(ValueError):
    """Not a feed gofeed would parse."""


def _text(el: ElementTree.Element | None, name: str) -> str:
    if el is None:
        return ""
    child = el.find(name)
    return (child.text or "").strip() if child is not None else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _person(name: str, email: str = "") -> dict[str, str] | None:
    if not name and not email:
        return None
    out = {}
    if name:
        out["name"] = name
    if email:
        out["email"] = email
    return out


def _rss_item(it: ElementTree.Element) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, tag in (("title", "title"), ("description", "description"), ("link", "link"),
                     ("published", "pubDate"), ("guid", "guid")):
        value = _text(it, tag)
        if value:
            item[key] = value
    if item.get("link"):
        item["links"] = [item["link"]]
    author = _text(it, "author")
    if author:
        item["author"] = _person(author)
    cats = [(c.text or "").strip() for c in it.findall("category") if c.text]
    if cats:
        item["categories"] = cats
    encl = [{k: v for k, v in (("url", e.get("url", "")), ("length", e.get("length", "")),
                               ("type", e.get("type", ""))) if v}
            for e in it.findall("enclosure")]
    if encl:
        item["enclosures"] = encl
    return item


def _atom_item(entry: ElementTree.Element) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, tag in (("title", "title"), ("description", "summary"), ("content", "content"),
                     ("updated", "updated"), ("published", "published"), ("guid", "id")):
        value = _text(entry, _ATOM + tag)
        if value:
            item[key] = value
    links = [ln.get("href", "") for ln in entry.findall(_ATOM + "link") if ln.get("href")]
    if links:
        item["link"] = links[0]
        item["links"] = links
    return item


def loads_feed(body: bytes) -> dict[str, Any]:
    """Parse a feed body into krakend-rss's map."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise RSSError(f"Failed to detect feed type: {exc}") from None
    name = _local(root.tag).lower()
    if name == "rss" or name == "rdf":
        channel = root.find("channel")
        items_parent = channel if name == "rss" else root
        items = [_rss_item(i) for i in (items_parent.findall("item")
                                        if items_parent is not None else [])]
        cats = [(c.text or "").strip() for c in (channel.findall("category")
                                                  if channel is not None else []) if c.text]
        data: dict[str, Any] = {
            "items": items,
            "author": _person(_text(channel, "managingEditor") or _text(channel, "webMaster")),
            "categories": cats or None,
            "custom": None,
            "copyright": _text(channel, "copyright"),
            "description": _text(channel, "description"),
            "type": "rss",
            "language": _text(channel, "language"),
            "title": _text(channel, "title"),
            "published": _text(channel, "pubDate"),
            "updated": _text(channel, "lastBuildDate"),
        }
        image = channel.find("image") if channel is not None else None
        if image is not None:
            data["img_url"] = _text(image, "url")
        return data
    if name == "feed":
        author = root.find(_ATOM + "author")
        data = {
            "items": [_atom_item(e) for e in root.findall(_ATOM + "entry")],
            "author": _person(_text(author, _ATOM + "name"), _text(author, _ATOM + "email")),
            "categories": [c.get("term", "") for c in root.findall(_ATOM + "category")] or None,
            "custom": None,
            "copyright": _text(root, _ATOM + "rights"),
            "description": _text(root, _ATOM + "subtitle"),
            "type": "atom",
            "language": root.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
            "title": _text(root, _ATOM + "title"),
            "published": "",
            "updated": _text(root, _ATOM + "updated"),
        }
        logo = _text(root, _ATOM + "logo")
        if logo:
            data["img_url"] = logo
        return data
    raise RSSError("Failed to detect feed type")
