"""The collector paused while a generation is built (the supervisor's trial build and each
worker's build share it; a module of its own, so that a worker does not import the builder and,
through it, the linter)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic GC while a generation is built.

    A build allocates hundreds of thousands of objects that all survive; with the collector
    on, it scans the growing heap again and again (for 1,000 endpoints that was a third of
    the build time). Nothing built here is garbage until the build is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
