"""Go's ``net/url.Values`` encoding, shared by the request builder and the Lua objects."""

from __future__ import annotations

from urllib.parse import quote


def encode_query(query: list[tuple[str, str]]) -> str:
    """Go's ``url.Values.Encode``: keys sorted, values in order, query-escaped."""
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}".replace("%20", "+")
                    for k in sorted(grouped) for v in grouped[k])
