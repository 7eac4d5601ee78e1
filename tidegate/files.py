"""Reading a file a configuration is made of, without ever blocking on one that is not a file.

The config file, settings, partials and templates are all read through `read_regular`: a FIFO
would block the open (and a device the read) forever, which would stall a reload and the
shutdown behind it.
"""

from __future__ import annotations

import errno
import os
import stat


def read_regular(path: str) -> bytes:
    """The bytes of a regular file; anything else (a FIFO, a device, a socket) is refused.

    Opened without blocking, then checked on the open descriptor: checking the path before
    opening it would race with a save that replaces the file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file (a {_file_kind(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"
