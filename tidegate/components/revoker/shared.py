"""The rotating filter in memory shared by every worker of a node.

tidegate serves with several worker processes; a token revoked through one of them must be
rejected by all. The three sets therefore live in one memory-mapped file (in ``/dev/shm`` when
there is one) named after the supervisor's pid and the filter's settings, so the workers of
one gateway find the same file and nobody else's. Adds take an ``flock`` (they are rare and
change bytes other workers may change too); checks read without one. Files of gateways that no
longer run are removed by the next one that opens a filter.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tidegate.components.revoker.bloom import HEADER, MAGIC, BloomConfig, positions

__all__ = ["SharedFilter", "filter_dir"]

HEADER_SLOT = struct.Struct("<q")
SLOT_OFFSET = HEADER.size - 3 * 8  # the slots' periods end the header
_NAME = re.compile(r"tidegate-revoker-(\d+)-[0-9a-f]+$")


def filter_dir() -> Path:
    """Where the filter files go: tmpfs when the system has one."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def _sweep(folder: Path) -> None:
    """Remove the filter files of gateways that are gone."""
    for entry in folder.glob("tidegate-revoker-*"):
        m = _NAME.match(entry.name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                entry.unlink()
        except PermissionError:
            pass


class SharedFilter:
    """krakend/bloomfilter's ``rotate.Bloomfilter``, over a file every worker maps."""

    def __init__(self, cfg: BloomConfig, name: str, folder: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self.path = (folder or filter_dir()) / name
        self._positions = positions(cfg)
        self._slot_bytes = (cfg.m + 7) // 8
        self._mm: mmap.mmap | None = None
        self._fd = -1

    @staticmethod
    def name_for(owner_pid: int, fingerprint: str) -> str:
        """The file name shared by the workers of the gateway whose supervisor is owner_pid."""
        return f"tidegate-revoker-{owner_pid}-{fingerprint}"

    def open(self) -> None:
        """Map the file, creating and initialising it under the lock if it is new."""
        if self._mm is not None:
            return
        _sweep(self.path.parent)
        size = HEADER.size + 3 * self._slot_bytes
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size != size:
                    os.ftruncate(fd, 0)
                    os.ftruncate(fd, size)
                    os.pwrite(fd, HEADER.pack(MAGIC, self._clock(), self.cfg.m, 0, 1, -1), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        magic, self._t0, m, *_ = HEADER.unpack_from(self._mm, 0)
        if magic != MAGIC or m != self.cfg.m:
            self.close()
            raise OSError(f"{self.path} is not a filter of these settings")

    def close(self) -> None:
        """Unmap (the file stays for the other workers until the gateway is gone)."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _period(self) -> int:
        return int((self._clock() - self._t0) // self.cfg.ttl)

    def _slot_period(self, mm: mmap.mmap, slot: int) -> int:
        value: int = HEADER.unpack_from(mm, 0)[3 + slot]
        return value

    def check(self, elem: bytes) -> bool:
        """In the previous or the current set (may be a false positive, never a false
        negative)."""
        mm = self._mapped()
        p = self._period()
        bits = self._positions(elem)
        for q in (p - 1, p):
            slot = q % 3
            if self._slot_period(mm, slot) != q:
                continue  # nothing was added to that period's set
            base = HEADER.size + slot * self._slot_bytes
            if all(mm[base + (b >> 3)] >> (b & 7) & 1 for b in bits):
                return True
        return False

    def add(self, elem: bytes) -> None:
        """Into the current and the next set."""
        mm = self._mapped()
        bits = self._positions(elem)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            p = self._period()
            for q in (p, p + 1):
                slot = q % 3
                base = HEADER.size + slot * self._slot_bytes
                if self._slot_period(mm, slot) != q:
                    # Cleared before it is labelled: a reader never sees old bits as new.
                    mm[base:base + self._slot_bytes] = bytes(self._slot_bytes)
                    HEADER_SLOT.pack_into(mm, SLOT_OFFSET + 8 * slot, q)
                for b in bits:
                    mm[base + (b >> 3)] |= 1 << (b & 7)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _mapped(self) -> mmap.mmap:
        if self._mm is None:
            self.open()
        assert self._mm is not None
        return self._mm
