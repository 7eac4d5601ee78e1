"""XML as KrakenD CE reads and writes it: ``clbanning/mxj`` conventions (via krakend-xml).

Reading (backend ``"encoding": "xml"``): the root element becomes the single top-level key;
attributes are ``-name`` keys, an element's own text is ``#text`` when it also has attributes
or children, repeated children become lists, every value stays a string (no casting), empty
elements are ``""``, namespace prefixes are dropped, and anything after the root is ignored.

Writing (``"output_encoding": "xml"``): the inverse, keys sorted, ``& < > " '`` escaped, a map
with one key is written with that key as root, anything else under ``<doc>``.
"""

from __future__ import annotations

import codecs
import re
from typing import Any
from xml.parsers import expat

from tidegate.golang.sprint import sprint

__all__ = ["XMLError", "dumps_xml", "loads_xml"]

_TRIM = "\t\r\b\n "  # mxj's trimRunes (Go's "\b" is a backspace)
_TEXT = "#text"


class XMLError(ValueError):
    """A body that Go's xml.Decoder rejects."""


def _local(name: str) -> str:
    """Go's xml.Name.Local: the part after a single ``prefix:``."""
    if name.count(":") == 1:
        space, _, local = name.partition(":")
        if space and local:
            return local
    return name


class _Builder:
    """Rebuilds mxj's xmlToMapParser from expat events."""

    def __init__(self) -> None:
        # Each frame: [key, n (element map), na (attributes and children)]
        self.stack: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.result: dict[str, Any] | None = None

    def start(self, name: str, attrs: list[str]) -> None:
        if self.result is not None:
            raise _Done
        na: dict[str, Any] = {}
        for i in range(0, len(attrs), 2):
            na["-" + _local(attrs[i])] = attrs[i + 1]
        self.stack.append((_local(name), {}, na))

    def end(self, _name: str) -> None:
        key, n, na = self.stack.pop()
        if not n:
            n[key] = na if na else ""
        elif len(n) == 1 and na:
            na[_TEXT] = n[key]
            n[key] = na
        if not self.stack:
            self.result = n
            return
        val = n[key]
        parent_na = self.stack[-1][2]
        if key in parent_na:
            prev = parent_na[key]
            if isinstance(prev, list):
                prev.append(val)
            else:
                parent_na[key] = [prev, val]
        else:
            parent_na[key] = val

    def text(self, data: str) -> None:
        if not self.stack:
            return
        text = data.strip(_TRIM)
        if not text:
            return
        key, n, na = self.stack[-1]
        if na:
            na[_TEXT] = text
        else:
            n[key] = text


class _Done(Exception):
    """The root element is closed: Go stops reading there."""


_NO_ELEMENTS = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _parse(body: bytes, encoding: str | None) -> dict[str, Any]:
    builder = _Builder()
    parser = expat.ParserCreate(encoding)
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    parser.ordered_attributes = True
    # Go hands CDATA sections, comments and processing instructions as separate tokens, which
    # split the surrounding text: registering them makes expat flush its text buffer there.
    parser.StartCdataSectionHandler = lambda: None
    parser.EndCdataSectionHandler = lambda: None
    parser.CommentHandler = lambda _data: None
    parser.ProcessingInstructionHandler = lambda _t, _d: None
    try:
        parser.Parse(body, True)
    except _Done:
        pass
    except expat.ExpatError as exc:
        if builder.result is None:
            if not builder.stack and exc.code == _NO_ELEMENTS:
                raise XMLError("EOF") from None
            raise XMLError(f"xml.Decoder.Token() - XML syntax error: {exc}") from None
    if builder.result is None:
        if builder.stack:
            raise XMLError("xml.Decoder.Token() - XML syntax error: unexpected EOF")
        raise XMLError("EOF")
    return builder.result


def loads_xml(body: bytes) -> dict[str, Any]:
    """mxj.NewMapXmlReader(body): the document as ``{root: ...}`` (all values strings)."""
    start = body.find(b"<")
    if start > 0 and body[:start].strip():  # Go skips stray text before the root; expat won't
        body = body[start:]
    try:
        return _parse(body, None)
    except XMLError as exc:
        m = _DECL_ENCODING.match(body)
        if m is None or "unknown encoding" not in str(exc):
            raise
        label = m.group(1).decode()
        try:
            text = codecs.decode(body, label, "replace")
        except LookupError:
            raise exc from None
        return _parse(text.encode("utf-8"), "UTF-8")


# ---------------------------------------------------------------------------------------------
# Writing


def _escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "'" in text:
        text = text.replace("'", "&apos;")
    return text


def _scalar(value: Any) -> str | None:
    """fmt's %v for the scalar types mxj writes as text; None for anything else."""
    if isinstance(value, bool | int | float):
        return sprint(value)
    return None


def _is_attr(key: str) -> bool:
    return len(key) > 1 and key[0] == "-"


def _write(out: list[str], key: str, value: Any) -> None:
    if value is None:
        value = ""
    if isinstance(value, list):
        if not value:
            out.append(f"<{key}/>")
        for item in value:
            _write(out, key, item)
        return
    if isinstance(value, dict):
        out.append("<" + key)
        attrs = []
        for k, v in value.items():
            if _is_attr(k):
                text = _escape(v) if isinstance(v, str) else _scalar(v)
                if text is None:
                    raise XMLError(f"invalid attribute value for: {k}")
                attrs.append((k[1:], text))
        for name, text in sorted(attrs):
            out.append(f' {name}="{text}"')
        if len(attrs) == len(value):
            out.append("/>")
            return
        if _TEXT in value:
            t = value[_TEXT]
            t = _escape(t) if isinstance(t, str) else _scalar(t)
            out.append(">" + (t if t is not None else "<nil>"))
        else:
            out.append(">")
        for k in sorted(k for k in value if k != _TEXT and not _is_attr(k)):
            _write(out, k, value[k])
        out.append(f"</{key}>")
        return
    text = _escape(value) if isinstance(value, str) else _scalar(value)
    if text is None:
        text = str(value)
    out.append(f"<{key}>{text}</{key}>" if text else f"<{key}/>")


def dumps_xml(data: dict[str, Any] | None) -> bytes:
    """mxj ``Map.Xml()`` with XMLEscapeChars(true). Raises XMLError where mxj fails."""
    out: list[str] = []
    data = data or {}
    if len(data) == 1:
        ((key, value),) = data.items()
        if isinstance(value, list) and any(not isinstance(v, dict) for v in value):
            _write(out, "doc", data)
        else:
            _write(out, key, value)
    else:
        _write(out, "doc", data)
    return "".join(out).encode("utf-8", "surrogateescape")
