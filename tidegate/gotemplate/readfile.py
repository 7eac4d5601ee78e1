"""Reading the files a template needs, without ever blocking on one that is not a file."""

from __future__ import annotations

import errno
import os
import stat


def read_regular(path: str) -> bytes:
    """The bytes of a regular file; a FIFO or a device is refused instead of blocking forever.

    Opened without blocking and checked on the descriptor, so a save that swaps the file for
    something else between a check and the open cannot slip through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise OSError(f"read {path}: not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)
