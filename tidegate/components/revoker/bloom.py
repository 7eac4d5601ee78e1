"""krakend/bloomfilter's filter: its sizing, its hash functions, its three rotating sets.

Sizing and hashing are the Go package's (``M``, ``K``, the ``default`` hashers MD5, CRC64-ECMA,
SHA1, FNV-1 64, FNV-1 128 read as little-endian words, and the ``optimal`` double hashing of
FNV-1 128), so a filter holds the same false-positive rate as KrakenD's for the same N and P.

Rotation (``rotate`` package): an entry is added to the *current* and *next* sets and looked up
in the *previous* and *current* ones; every TTL seconds previous ← current ← next ← empty. So a
revoked entry is rejected for two to three TTLs. Here time is cut into periods of TTL seconds
and the set of period ``q`` lives in slot ``q % 3``: a slot still labelled with an older
period is empty for the period asked, and is cleared by the first add that needs it. No timer
task is needed, and the sets can sit in memory shared by every worker of a node.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HASHERS", "BloomConfig", "k_hashes", "m_bits", "positions"]

MASK64 = (1 << 64) - 1


def m_bits(n: int, p: float) -> int:
    """``bloomfilter.M``: bits for n entries at false-positive rate p."""
    return math.ceil(-(n * math.log(p)) / math.log(math.pow(2.0, math.log(2.0))))


def k_hashes(m: int, n: int) -> int:
    """``bloomfilter.K``: how many hash values per entry."""
    return math.ceil(math.log(2.0) * m / n)


def _words(digest: bytes) -> list[int]:
    """HashWrapper: the digest cut into little-endian 64-bit words (a tail is dropped)."""
    return [int.from_bytes(digest[i:i + 8], "little") for i in range(0, len(digest) - 7, 8)]


def _crc64_table() -> list[int]:
    poly = 0xC96C5795D7870F42  # crc64.ECMA, reversed form as Go uses it
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64_ecma(data: bytes) -> bytes:
    """Go's ``crc64.Checksum(data, MakeTable(ECMA))`` as ``Sum`` writes it (big-endian)."""
    crc = MASK64
    for b in data:
        crc = _CRC64[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return (crc ^ MASK64).to_bytes(8, "big")


def fnv1_64(data: bytes) -> bytes:
    """Go's ``fnv.New64`` (FNV-1) digest."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h * 0x100000001B3) & MASK64) ^ b
    return h.to_bytes(8, "big")


_MASK128 = (1 << 128) - 1


def fnv1_128(data: bytes) -> bytes:
    """Go's ``fnv.New128`` (FNV-1) digest."""
    h = 0x6C62272E07BB014262B821756295C58D
    for b in data:
        h = ((h * 0x0000000001000000000000000000013B) & _MASK128) ^ b
    return h.to_bytes(16, "big")


Hash = Callable[[bytes], list[int]]
DEFAULT_HASHERS: tuple[Hash, ...] = (
    lambda e: _words(hashlib.md5(e).digest()),
    lambda e: _words(crc64_ecma(e)),
    lambda e: _words(hashlib.sha1(e).digest()),
    lambda e: _words(fnv1_64(e)),
    lambda e: _words(fnv1_128(e)),
)


def _optimal(k: int) -> tuple[Hash, ...]:
    def double_hash(e: bytes) -> list[int]:
        h0, h1 = _words(fnv1_128(e))
        return [(h0 + i * h1) & MASK64 for i in range(k)]
    return (double_hash,)


HASHERS: dict[str, Callable[[int], tuple[Hash, ...]]] = {
    "default": lambda k: DEFAULT_HASHERS[:k],
    "optimal": _optimal,
}


@dataclass(frozen=True)
class BloomConfig:
    """N entries, false-positive rate P, hasher name, rotation period TTL (seconds)."""

    n: int
    p: float
    hash_name: str
    ttl: int

    @property
    def m(self) -> int:
        return m_bits(self.n, self.p)

    @property
    def k(self) -> int:
        return k_hashes(self.m, self.n)


def positions(cfg: BloomConfig) -> Callable[[bytes], list[int]]:
    """The bit positions of an entry, as the Go filter computes them."""
    m = cfg.m
    hashers = HASHERS[cfg.hash_name](cfg.k)

    def of(elem: bytes) -> list[int]:
        return [x % m for h in hashers for x in h(elem)]

    return of


HEADER = struct.Struct("<8sdQ3q")  # magic, t0, m, the period each slot holds
MAGIC = b"TGBLOOM1"
