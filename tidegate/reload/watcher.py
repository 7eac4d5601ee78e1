"""Watch everything a configuration is made of, and say "something changed" once per burst.

watchfiles (Rust notify: inotify on Linux) rather than polling. A burst of writes, an atomic
rename or a delete-then-create arrives as one change set after a short quiet period. Editor
temporaries, `.git/` and the flexible-config output file (``FC_OUT``) never trigger a reload.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import watchfiles

# Quiet time that ends a burst, and the longest a burst may be grouped (milliseconds).
STEP_MS = 30
DEBOUNCE_MS = 400

_IGNORED_NAMES = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913", "*.tmp", ".DS_Store",
                  "*.pyc")
_IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".idea", ".vscode"})


class ConfigFilter(watchfiles.DefaultFilter):
    """Drop editor noise, VCS folders and the files tidegate itself writes."""

    def __init__(self, ignore_paths: Iterable[str]) -> None:
        super().__init__(ignore_dirs=tuple(_IGNORED_DIRS), ignore_entity_patterns=())
        self.ignore_paths = {os.path.realpath(p) for p in ignore_paths}

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatchcase(name, pat) for pat in _IGNORED_NAMES):
            return False
        parts = Path(path).parts
        if any(p in _IGNORED_DIRS for p in parts):
            return False
        return os.path.realpath(path) not in self.ignore_paths


def watch_roots(paths: Iterable[str]) -> list[str]:
    """Existing folders to watch (a missing one is skipped; its parent would be too broad)."""
    roots = []
    for p in sorted(set(paths)):
        path = Path(p)
        if path.is_file():
            path = path.parent
        if path.is_dir() and str(path) not in roots:
            roots.append(str(path))
    return roots


async def watch_changes(paths: Iterable[str], ignore_paths: Iterable[str],
                        stop: asyncio.Event) -> AsyncIterator[set[str]]:
    """Yield the set of changed paths, once per burst, until `stop` is set."""
    roots = watch_roots(paths)
    if not roots:
        await stop.wait()
        return
    async for changes in watchfiles.awatch(
            *roots, watch_filter=ConfigFilter(ignore_paths), debounce=DEBOUNCE_MS, step=STEP_MS,
            stop_event=stop, recursive=True, rust_timeout=1000, yield_on_timeout=False):
        yield {path for _, path in changes}
