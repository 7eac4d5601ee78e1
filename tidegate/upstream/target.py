"""A backend base URL, split once when a generation is compiled."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Target:
    """A backend base URL split once at compile time."""

    scheme: str
    host: str
    port: int
    host_header: str
    base_path: str


def parse_target(url: str) -> Target:
    """Split ``http://host:port/base`` once, so requests never parse it again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported backend host {url!r}: expected http://host[:port]")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Target(parts.scheme, parts.hostname, port, host_header, parts.path.rstrip("/"))
