"""The JWK set of one URL, shared by every endpoint that names it and kept across reloads.

What KrakenD users complain about (krakend-ce#687, krakend-jose#78) and how this differs:

* one download serves every endpoint and every generation (the component leases this object
  from the worker's state store under the URL and TLS settings), instead of one cache per
  endpoint, or a download per request without ``cache``;
* concurrent requests that need a download wait for the same one (single flight), and a
  download is never cancelled because the request that started it went away;
* a token naming an unknown key id triggers one refetch (a rotation is followed at once), and
  then no other such refetch for ``cooldown`` seconds, whatever key ids are sent, so random
  ids cannot make the gateway hammer the key server;
* the answer's ``Cache-Control`` is honoured: ``max-age`` bounds the time the set is trusted
  (``cache_duration`` with ``cache: true``, `DEFAULT_TTL` without), ``no-store``/``no-cache``
  bring it down to `MIN_TTL`;
* a failed download keeps the previous set (logged) and is retried after a delay that starts
  at `FIRST_RETRY` and doubles with each failure up to `MAX_RETRY` (a key server that is not
  up yet is picked up at once, one that is down is not hammered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from joserfc.jwk import Key

from tidegate.components.jwt.fetch import Answer, FetchError, TLSOptions, get
from tidegate.components.jwt.keys import KeyIndex, KeySetError
from tidegate.components.jwt.verify import Verified

log = logging.getLogger("tidegate.jwt")
_monotonic = time.monotonic  # tests move this clock, never the event loop's

MIN_TTL = 5.0  # never trust a set for less: no download per request, whatever the server says
DEFAULT_TTL = 300.0  # without "cache": true and without a Cache-Control max-age
DEFAULT_COOLDOWN = 5.0  # between refetches caused by unknown key ids
FIRST_RETRY = 0.1  # after a failed download: doubled on each failure, up to MAX_RETRY
MAX_RETRY = 10.0
_MAX_AGE = re.compile(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_JSON_TYPES = ("application/json", "application/jwk-set+json")

Getter = Callable[[str, TLSOptions, "ssl.SSLContext | None"], Awaitable[Answer]]


MAX_VERIFIED = 4096  # tokens whose signature is known good, per key source
MAX_VERIFIED_BYTES = 8 << 20  # and their estimated memory
MAX_REMEMBERED_TOKEN = 16 << 10  # a longer token is verified on each of its requests
ENTRY_OVERHEAD = 1024  # bytes an entry costs beyond its token (decoded header, claims, slots)


class VerifiedTokens:
    """Tokens whose signature was checked, so a client reusing its token (the common case: one
    token for its whole lifetime) costs a dict lookup instead of an RSA/EC verification.

    Keyed by the token's exact text. An entry is only used with the key set (``Verified.index``)
    it was verified against, while that set is fresh: a new download empties the memory. Only
    the signature and the decoding are remembered; dates, issuer, audience, roles, scopes and
    the revoker are checked on every request. Only tokens a validator accepted in full are
    added, so forged, expired or refused tokens can neither enter nor push others out; the
    least recently used entry goes first once `limit` entries or `max_bytes` (estimated:
    twice the token plus `ENTRY_OVERHEAD`) are reached, and an expired entry is dropped when it
    is next presented.
    """

    __slots__ = ("_entries", "bytes", "limit", "max_bytes")

    def __init__(self, limit: int = MAX_VERIFIED, max_bytes: int = MAX_VERIFIED_BYTES) -> None:
        self._entries: OrderedDict[str, Verified] = OrderedDict()
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, raw: str) -> Verified | None:
        """A token verified before (now the most recently used), or None."""
        entries = self._entries
        found = entries.get(raw)
        if found is not None:
            entries.move_to_end(raw)
        return found

    def add(self, raw: str, token: Verified) -> None:
        """Remember an accepted token (replacing what was remembered for the same text)."""
        if len(raw) > MAX_REMEMBERED_TOKEN:
            return
        self.discard(raw)
        token.size = 2 * len(raw) + ENTRY_OVERHEAD
        entries = self._entries
        while entries and (len(entries) >= self.limit
                           or self.bytes + token.size > self.max_bytes):
            self.bytes -= entries.popitem(last=False)[1].size
        entries[raw] = token
        self.bytes += token.size

    def discard(self, raw: str) -> None:
        old = self._entries.pop(raw, None)
        if old is not None:
            self.bytes -= old.size

    def clear(self) -> None:
        """Forget everything (the key set changed)."""
        self._entries.clear()
        self.bytes = 0


class KeysUnavailable(Exception):
    """No key for the token: the set could not be had, or it has no such id."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a downloaded set is trusted, and how often unknown ids may refetch it."""

    cache: bool = False
    cache_duration: float = 900.0
    cooldown: float = DEFAULT_COOLDOWN

    def ttl(self, cache_control: str | None) -> float:
        """Seconds to trust a set that came with this Cache-Control header."""
        max_age: float | None = None
        if cache_control:
            m = _MAX_AGE.search(cache_control)
            if m:
                max_age = float(m.group(1))
            if re.search(r"no-store|no-cache", cache_control, re.IGNORECASE):
                max_age = 0.0
        ttl = self.cache_duration if self.cache else DEFAULT_TTL
        if max_age is not None:
            ttl = min(ttl, max_age)
        return max(ttl, MIN_TTL)


def decode_answer(answer: Answer, url: str) -> KeyIndex:
    """go-auth0's downloadKeys checks (status, JSON content type, at least one key)."""
    if answer.status != 200:
        raise KeySetError(f"{url} answered {answer.status}")
    ctype = answer.headers.get("content-type", "")
    if not ctype.startswith(_JSON_TYPES):
        raise KeySetError(f"{url}: should have a JSON content type for JWKS endpoint "
                          f"(got {ctype!r})")
    try:
        doc = orjson.loads(bytes(answer.body))
    except orjson.JSONDecodeError as exc:
        raise KeySetError(f"{url}: not JSON ({exc})") from None
    return KeyIndex.from_document(doc, url)


class JwksCache:
    """The keys of one URL; `key` is what requests call."""

    def __init__(self, url: str, tls: TLSOptions, policy: Policy, *,
                 getter: Getter = get, clock: Callable[[], float] | None = None) -> None:
        self.url = url
        self.tls = tls
        self.policy = policy
        self.fetches = 0  # downloads attempted (for tests and /__debug-style introspection)
        self._getter = getter
        self._clock = clock or _monotonic
        self._ctx: ssl.SSLContext | None = None
        self._index: KeyIndex | None = None
        self._expires = 0.0
        self._retry_at = 0.0  # no download before this (after a failure)
        self._unknown_at = -1e18  # last refetch caused by an unknown id
        self._error = ""
        self._failures = 0
        self._flight: asyncio.Task[None] | None = None
        self.verified = VerifiedTokens(MAX_VERIFIED, MAX_VERIFIED_BYTES)

    def current(self) -> KeyIndex | None:
        """The set in use while it is fresh (what remembered tokens were verified against)."""
        index = self._index
        if index is not None and self._clock() < self._expires:
            return index
        return None

    def cached(self, strategy: str, key_id: str) -> Key | None:
        """The fast path: a key of a set still fresh, without awaiting anything."""
        index = self._index
        if index is not None and self._clock() < self._expires:
            return index.get(strategy, key_id)
        return None

    async def key(self, strategy: str, key_id: str) -> Key:
        """The key a token names; raises KeysUnavailable with the reason."""
        now = self._clock()
        if (self._index is None or now >= self._expires) and now >= self._retry_at:
            await self._refresh()
        index = self._index
        if index is None:
            raise KeysUnavailable(f"no JWK set from {self.url}: {self._error}")
        found = index.get(strategy, key_id)
        if found is not None:
            return found
        now = self._clock()
        if now - self._unknown_at >= self.policy.cooldown and now >= self._retry_at:
            self._unknown_at = now
            log.debug("JWK set %s: unknown key id %r, downloading it again", self.url, key_id)
            await self._refresh()
            found = self._index.get(strategy, key_id) if self._index else None
            if found is not None:
                return found
        raise KeysUnavailable(f"no key {key_id!r} ({strategy}) in the JWK set of {self.url}")

    def prefetch(self) -> None:
        """Start a download now (at provision), so the first request need not wait."""
        if self._index is None and self._flight is None:
            self._flight = asyncio.get_running_loop().create_task(self._download(ahead=True))

    async def _refresh(self) -> None:
        if self._flight is None:
            self._flight = asyncio.get_running_loop().create_task(self._download())
        # Shielded: a client that goes away must not cancel the download others wait for.
        await asyncio.shield(self._flight)

    async def _download(self, ahead: bool = False) -> None:
        """One download. A failed one ``ahead`` of any request (at provision) does not make
        requests wait before they try again."""
        try:
            self.fetches += 1
            if self._ctx is None and self.url.startswith("https://"):
                self._ctx = self.tls.context()
            answer = await self._getter(self.url, self.tls, self._ctx)
            index = decode_answer(answer, self.url)
            ttl = self.policy.ttl(answer.headers.get("cache-control"))
            self._index, self._expires, self._error = index, self._clock() + ttl, ""
            self.verified.clear()  # tokens are verified again, against the new set
            self._failures = 0
            log.debug("JWK set %s: %d keys, trusted for %gs", self.url, index.size, ttl)
        except (FetchError, KeySetError, OSError, ssl.SSLError) as exc:
            self._error = str(exc)
            if not ahead:
                self._failures += 1
                delay = min(FIRST_RETRY * 2 ** (self._failures - 1), MAX_RETRY)
                self._retry_at = self._clock() + delay
            if self._index is not None:
                log.warning("JWK set %s: refresh failed (%s); the previous keys stay in use",
                            self.url, exc)
            else:
                log.warning("JWK set %s: download failed: %s", self.url, exc)
        finally:
            self._flight = None

    async def close(self) -> None:
        """Stop a download in progress (the last generation using this set has drained)."""
        flight, self._flight = self._flight, None
        if flight is not None:
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flight


class StaticKeys:
    """``jwk_local_path``: a set read with the configuration; never downloaded."""

    def __init__(self, index: KeyIndex, origin: str) -> None:
        self.index = index
        self.origin = origin
        self.verified = VerifiedTokens(MAX_VERIFIED, MAX_VERIFIED_BYTES)

    def current(self) -> KeyIndex:
        return self.index

    def cached(self, strategy: str, key_id: str) -> Key | None:
        return self.index.get(strategy, key_id)

    async def key(self, strategy: str, key_id: str) -> Key:
        found = self.index.get(strategy, key_id)
        if found is None:
            raise KeysUnavailable(f"key {key_id!r} ({strategy}) not found in {self.origin}")
        return found
