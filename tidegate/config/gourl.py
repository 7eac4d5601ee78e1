"""What Go's ``url.Parse`` refuses in a backend host, in its words.

KrakenD joins each host with the url_pattern and parses the result for every request, so a
host Go cannot parse fails every request. Python's ``urlsplit`` is more forgiving (it drops
control characters and keeps spaces), so the model asks this module instead, and says so
where the host is written.
"""

from __future__ import annotations

import re

from tidegate.golang.strconv import quote

# Bytes Go accepts unescaped in a host name, besides letters and digits (shouldEscape with
# encodeHost); any other ASCII byte is an "invalid character ... in host name".
_HOST_PUNCTUATION = frozenset("-_.~!$&'()*+,;=:[]<>\"")
_HEX = frozenset("0123456789abcdefABCDEF")


def host_error(url: str) -> str | None:
    """Go's error for ``url.Parse(url)`` as far as the host goes (None if it parses), plus a
    port beyond 65535, which parses but can never be dialled."""
    problem = _parse(url.split("#", 1)[0])
    if problem is None:
        return None
    if problem.startswith("dial tcp"):
        return problem
    return f"parse {quote(url.split('#', 1)[0])}: {problem}"


def pattern_error(host: str, url_pattern: str) -> str | None:
    """Go's error for the backend URL KrakenD builds from `host` and `url_pattern` (every
    ``{param}`` stands for a plain value), as far as the url_pattern goes; None if it parses."""
    path = re.sub(r"\{[^{}]*\}", "x", url_pattern)
    url = host + url_pattern
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return f"parse {quote(url)}: net/url: invalid control character in URL"
    m = _BAD_ESCAPE.search(path.split("#", 1)[0].split("?", 1)[0])
    if m:
        return f"parse {quote(url)}: invalid URL escape {quote(m.group())}"
    return None


_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2}).{0,2}", re.S)


def _parse(url: str) -> str | None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "net/url: invalid control character in URL"
    scheme, rest = "", url
    for i, c in enumerate(url):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-.") and i > 0:
            continue
        if c == ":":
            if i == 0:
                return "missing protocol scheme"
            scheme, rest = url[:i], url[i + 1:]
        break
    rest = rest.split("?", 1)[0]
    if not scheme and not rest.startswith("/") and ":" in rest.split("/", 1)[0]:
        return "first path segment in URL cannot contain colon"
    if not rest.startswith("//"):
        return None  # no authority: nothing of a host to refuse here
    authority = rest[2:].split("/", 1)[0]
    host = authority.rsplit("@", 1)[-1]
    return _parse_host(host)


def _parse_host(host: str) -> str | None:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            return "missing ']' in host"
        colon_port = host[end + 1:]
        name = host[:end + 1]
    else:
        colon = host.rfind(":")
        colon_port = host[colon:] if colon >= 0 else ""
        name = host[:colon] if colon >= 0 else host
    if colon_port and (not colon_port.startswith(":")
                       or not all(c.isascii() and c.isdigit() for c in colon_port[1:])):
        return f"invalid port {quote(colon_port)} after host"
    if "%25" not in host:  # an IPv6 zone may escape anything: left to the dialer
        escape = _escape_error(name)
        if escape:
            return escape
    if not host.startswith("[") and host.count(":") > 1:
        return f"dial tcp: address {host}: too many colons in address"
    if len(colon_port) > 1 and int(colon_port[1:]) > 65535:
        return f"dial tcp: address {host}: invalid port"
    return None


def _escape_error(host: str) -> str | None:
    i = 0
    while i < len(host):
        c = host[i]
        if c == "%":
            code = host[i + 1:i + 3]
            if len(code) < 2 or not set(code) <= _HEX:
                return f"invalid URL escape {quote(host[i:i + 3])}"
            if int(code[0], 16) < 8:  # only non-ASCII bytes may be %-encoded in a host
                return f"invalid URL escape {quote(host[i:i + 3])}"
            i += 3
            continue
        if c.isascii() and not c.isalnum() and c not in _HOST_PUNCTUATION:
            return f"invalid character {quote(c)} in host name"
        i += 1
    return None
